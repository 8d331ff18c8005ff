// The web console's HTTP door: the page and its assets, a JSON API over ConsoleApi, and one live
// stream per page (server-sent events). Served by the registry on INFERMESH_CONSOLE_PORT, over TLS
// with the registry's files when TLS is on. Who calls is said by `authorization: Bearer`, as on
// every other door (with authentication on, a page without a token sees nothing and may do
// nothing). Reads need `read` on the model, actions the scope of their RPC. Actions are JSON POSTs
// only, which a page on another origin cannot send without a CORS preflight this door never
// answers, and the token is a header the browser never adds by itself: no cross-site request acts.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { errors, toGrpcStatus } from '../../../lib/errors';
import { authorizationOfRawHeaders } from '../../../lib/auth';
import { errorBody, httpStatusOf } from '../../../lib/rest/http-status';
import { parseJsonBody } from '../../../lib/rest/infer-codec';
import { continueBody, createHttpDoorServer, type HttpConnectionLimits } from '../../../lib/rest/http-server';
import type { LingeringClose } from '../../../lib/rest/lingering-close';
import { listenOn } from '../../../lib/h2/server';
import type { Logger } from '../../../lib/log';
import type { TlsFiles } from '../../../lib/tls';
import type { Caller, RegistryAccess } from '../access';
import { MODEL_NAME } from '../records';
import { parseAction, type ConsoleApi, type LiveClient, type LiveMessage } from './console-api';

/** The limits of the console's door (INFERMESH_CONSOLE_* and the REST door's INFERMESH_HTTP_*). */
export interface ConsoleLimits extends HttpConnectionLimits {
  maxBodyBytes: number;
  maxStreams: number;
  maxStreamsPerCaller: number;
  maxStreamBufferBytes: number;
}

/** What the door is built from. */
export interface ConsoleServerDeps {
  api: ConsoleApi;
  access: RegistryAccess;
  limits: ConsoleLimits;
  log: Logger;
  tls?: TlsFiles;
  /**
   * How often a live stream's token is checked again (INFERMESH_WATCH_RECHECK_MS); a comment line
   * goes with each check, so proxies keep the stream open.
   */
  recheckMs: number;
  /**
   * The host names requests may be addressed to besides IP addresses and localhost (`*`: any):
   * with authentication off, a page of another site whose name is made to resolve here (DNS
   * rebinding) must not reach the console from a browser inside.
   */
  allowedHosts: readonly string[];
}

/** The page's files: the built console (dist/console) with uPlot beside it. */
const ASSETS: Readonly<Record<string, { file: string; type: string }>> = Object.freeze({
  '/assets/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/assets/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
  '/assets/uPlot.iife.min.js': { file: 'uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' },
  '/assets/uPlot.min.css': { file: 'uPlot.min.css', type: 'text/css; charset=utf-8' },
});
const PAGE = { file: 'index.html', type: 'text/html; charset=utf-8' };

/** The live stream's topics. */
const TOPICS: ReadonlySet<string> = new Set(['event', 'window', 'pods']);

/** Whether `host` (a Host header: name or address, with or without a port) may be served. */
export function hostAllowed(host: string | undefined, allowed: readonly string[]): boolean {
  if (allowed.includes('*')) return true;
  if (!host) return false;
  const name = (host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '')).toLowerCase();
  if (name === 'localhost' || /^\[[0-9a-f:.]+\]$/.test(name) || /^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return true;
  return allowed.includes(name);
}

/** Paths the page answers itself (client-side routes): each gets index.html. */
const PAGE_ROUTE = /^\/(?:|models|pods|events|models\/[^/]+)$/;

/**
 * Where the built page is: dist/console beside dist/services (the service runs from dist/), or,
 * when the service runs from its sources (tests), dist/console under the project root.
 */
export function consoleAssetsDir(): string {
  const candidates = [path.resolve(__dirname, '../../../console'), path.resolve(__dirname, '../../../dist/console')];
  return candidates.find((d) => fs.existsSync(path.join(d, 'app.js'))) ?? candidates[1]!;
}

const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  // Only the console's own scripts, styles and API: no inline script, no other origin, no framing.
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
});

export class ConsoleServer {
  private readonly server: http.Server;
  private readonly files = new Map<string, Buffer>();
  private readonly streams = new Set<http.ServerResponse>();
  /** Live streams open per caller name. */
  private readonly streamsOf = new Map<string, number>();
  private readonly stopTls: () => void;
  private readonly lingering: LingeringClose;

  constructor(private readonly deps: ConsoleServerDeps, private readonly assetsDir = consoleAssetsDir()) {
    const door = createHttpDoorServer(deps.limits, (req, res) => this.handle(req, res), deps.tls);
    this.server = door.server;
    this.stopTls = door.stopTls;
    this.lingering = door.lingering;
  }

  listen(host: string, port: number): Promise<number> {
    return listenOn(this.server, host, port);
  }

  /** Ends the live streams, stops taking connections and closes the rest after `budgetMs`. */
  async close(budgetMs: number): Promise<void> {
    this.stopTls();
    for (const s of this.streams) s.end();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    // Connections lingering after a refusal carry no request: closed at once, not after their lingering.
    this.lingering.stop();
    const timer = setTimeout(() => this.server.closeAllConnections(), budgetMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    if (!hostAllowed(req.headers.host, this.deps.allowedHosts)) {
      req.resume();
      return this.sendJson(res, 403, { error: 'this console answers only requests addressed to an IP address, localhost or INFERMESH_CONSOLE_ALLOWED_HOSTS' });
    }
    // The path and the query as they are: a request line is no URL to resolve (`//[`, `http://a:99999/`).
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const p = q < 0 ? target : target.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
    const method = req.method ?? 'GET';
    if (!p.startsWith('/')) {
      req.resume();
      return this.sendJson(res, 400, { error: 'the request target must be a path' });
    }
    if (method === 'GET' || method === 'HEAD') {
      if (p === '/favicon.ico') {
        res.writeHead(204);
        return void res.end();
      }
      const asset = ASSETS[p] ?? (PAGE_ROUTE.test(p) ? PAGE : undefined);
      if (asset) return this.sendFile(res, asset);
    }
    if (!p.startsWith('/api/')) return this.sendJson(res, 404, { error: `no such page: ${p.slice(0, 200)}` });
    this.api(req, res, method, p, query).catch((err: unknown) => {
      const { code, details } = toGrpcStatus(err, this.deps.log);
      if (!res.headersSent) this.sendJson(res, httpStatusOf(code), JSON.parse(errorBody(details)));
      else res.destroy();
    });
  }

  private async api(req: http.IncomingMessage, res: http.ServerResponse, method: string, p: string, query: URLSearchParams): Promise<void> {
    const caller = await this.deps.access.callerOfToken(authorizationOfRawHeaders(req.rawHeaders));
    const api = this.deps.api;
    const model = /^\/api\/models\/([^/]+)(\/rollout)?$/.exec(p);
    if (method === 'GET' && p === '/api/session') {
      req.resume();
      return this.sendJson(res, 200, { principal: caller.name });
    }
    if (method === 'GET' && p === '/api/models') {
      req.resume();
      return this.sendJson(res, 200, { models: await api.models(caller) });
    }
    if (method === 'GET' && p === '/api/pods') {
      req.resume();
      return this.sendJson(res, 200, api.podList(caller));
    }
    if (method === 'GET' && p === '/api/events') {
      req.resume();
      const m = modelFilter(query);
      if (m !== undefined) caller.check('WatchEvents', m);
      return this.sendJson(res, 200, { events: api.recentEvents(caller, m) });
    }
    if (method === 'GET' && p === '/api/live') {
      req.resume();
      return this.live(req, res, caller, query);
    }
    if (model) {
      const name = decodeModel(model[1]!);
      if (method === 'GET' && !model[2]) {
        req.resume();
        return this.sendJson(res, 200, await api.model(caller, name));
      }
      if (method === 'POST' && model[2]) {
        // A browser names the page's origin on a POST: one that is not this console's is another site's page.
        const origin = req.headers.origin;
        if (origin !== undefined && !sameOrigin(origin, req.headers.host)) {
          req.resume();
          return this.sendJson(res, 403, { error: 'actions are taken only from the console\'s own pages (the Origin is another site)' });
        }
        const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        if (type !== 'application/json') {
          req.resume();
          return this.sendJson(res, 415, { error: 'actions are JSON: send content-type: application/json' });
        }
        const body = await this.readBody(req, res);
        if (body === undefined) return;
        // Read as the REST door reads a body: bytes that are not UTF-8 are refused, never read as
        // U+FFFD into a rollout's recorded reason.
        return this.sendJson(res, 200, await api.act(caller, name, parseAction(parseJsonBody(body))));
      }
    }
    req.resume();
    const known = p === '/api/session' || p === '/api/models' || p === '/api/pods' || p === '/api/events' || p === '/api/live' || model;
    if (!known) return this.sendJson(res, 404, { error: `no such API: ${p.slice(0, 200)}` });
    // A 405 names the method the path takes (RFC 9110, 15.5.6): actions are POSTed, the rest read.
    this.sendJson(res, 405, { error: `${method} is not allowed here` }, { allow: model?.[2] ? 'POST' : 'GET' });
  }

  /**
   * A page's live stream (server-sent events): `event` (an event the caller may read), `window` (a
   * closed analysis window of a model it may read), `pods` (the pods, at most once a second).
   * `topics` picks among them (default all), `model` keeps one model's. A page that does not read
   * is dropped once INFERMESH_CONSOLE_MAX_STREAM_BUFFER_BYTES wait for it.
   */
  private live(req: http.IncomingMessage, res: http.ServerResponse, caller: Caller, query: URLSearchParams): void {
    const l = this.deps.limits;
    // A page that left while its token was checked has nothing to stream to.
    if (req.socket.destroyed || res.destroyed) return;
    caller.checkReadsSome('a live stream');
    const topics = new Set((query.get('topics') ?? 'event,window,pods').split(','));
    if (topics.size === 0 || [...topics].some((t) => !TOPICS.has(t))) {
      throw errors.invalidArgument(`"topics" takes one or more of ${[...TOPICS].join(', ')}, separated by commas`);
    }
    const only = modelFilter(query);
    if (only !== undefined) caller.check('WatchEvents', only);
    if (this.streams.size >= l.maxStreams) {
      return this.sendJson(res, 503, { error: `the console serves ${l.maxStreams} live pages at once (INFERMESH_CONSOLE_MAX_STREAMS); try again later` });
    }
    const mine = this.streamsOf.get(caller.name) ?? 0;
    if (mine >= l.maxStreamsPerCaller) {
      return this.sendJson(res, 429, { error: `this caller has ${mine} live pages open, the most it may (INFERMESH_CONSOLE_MAX_STREAMS_PER_CALLER): close one` });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'x-accel-buffering': 'no' });
    res.write(': live\n\n');
    this.streams.add(res);
    this.streamsOf.set(caller.name, mine + 1);
    const api = this.deps.api;
    // Every write of the stream: none once it is ended (over TLS its last bytes leave after the
    // timers phase that ended it, where a write would emit 'error' and end the process); past the
    // limit of what the page has not taken, it is not reading.
    const write = (text: string) => {
      if (res.writableEnded || res.destroyed) return;
      if (res.writableLength > l.maxStreamBufferBytes) res.destroy();
      else res.write(text);
    };
    // A socket that fails (a reset mid-write) is closed, never thrown.
    res.on('error', () => res.destroy());
    const client: LiveClient = {
      wants: (m: LiveMessage) => topics.has(m.kind) && (m.kind === 'pods'
        || ((only === undefined || m.model === only) && (m.kind === 'event' ? caller.mayReadEvent(m.data.event) : caller.may('GetModel', m.model)))),
      send: (m: LiveMessage) => {
        if (res.writableEnded || res.destroyed) return;
        write(`event: ${m.kind}\ndata: ${JSON.stringify(m.kind === 'pods' ? api.podList(caller) : m.data)}\n\n`);
      },
    };
    const detach = api.attach(client);
    const keepAlive = setInterval(() => write(': keep-alive\n\n'), this.deps.recheckMs);
    keepAlive.unref();
    // A key revoked (or a JWT expired) while the page is open ends its stream, as it refuses new calls.
    const stopChecking = this.deps.access.recheck(authorizationOfRawHeaders(req.rawHeaders), caller, this.deps.recheckMs, () => {
      clearInterval(keepAlive);
      res.end();
    });
    res.once('close', () => {
      clearInterval(keepAlive);
      stopChecking();
      detach();
      this.streams.delete(res);
      const left = (this.streamsOf.get(caller.name) ?? 1) - 1;
      if (left > 0) this.streamsOf.set(caller.name, left);
      else this.streamsOf.delete(caller.name);
    });
  }

  /** Reads a body within INFERMESH_CONSOLE_MAX_BODY_BYTES; undefined when it was refused (413 sent). */
  private readBody(req: http.IncomingMessage, res: http.ServerResponse): Promise<Buffer | undefined> {
    const max = this.deps.limits.maxBodyBytes;
    // Answered at once and the connection closed after; the rest of the body is read and dropped
    // meanwhile (as nginx's lingering close), so the client sees the answer rather than a reset.
    const tooLarge = () => {
      res.setHeader('connection', 'close');
      this.sendJson(res, 413, { error: `the action is larger than ${max} bytes (INFERMESH_CONSOLE_MAX_BODY_BYTES)` });
      req.removeAllListeners('data');
      req.resume();
    };
    if (Number(req.headers['content-length'] ?? 0) > max) {
      tooLarge();
      return Promise.resolve(undefined);
    }
    continueBody(res);
    return new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > max) {
          tooLarge();
          resolve(undefined);
          return;
        }
        parts.push(c);
      });
      req.once('end', () => resolve(Buffer.concat(parts)));
      req.once('error', reject);
    });
  }

  private sendFile(res: http.ServerResponse, asset: { file: string; type: string }): void {
    let body = this.files.get(asset.file);
    if (!body) {
      try {
        body = fs.readFileSync(path.join(this.assetsDir, asset.file));
      } catch {
        return this.sendJson(res, 503, { error: 'the console is not built: run npm run build' });
      }
      this.files.set(asset.file, body);
    }
    res.writeHead(200, { 'content-type': asset.type, 'content-length': body.length });
    res.end(body);
  }

  private sendJson(res: http.ServerResponse, status: number, json: unknown, headers: http.OutgoingHttpHeaders = {}): void {
    const body = Buffer.from(JSON.stringify(json));
    res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  }
}

/** A model name from its URL segment; INVALID_ARGUMENT (without echoing it) unless it is one. */
function decodeModel(segment: string): string {
  let name: string;
  try {
    name = decodeURIComponent(segment);
  } catch {
    throw errors.invalidArgument('the model name in the path is not valid percent-encoding');
  }
  if (!MODEL_NAME.test(name)) throw errors.invalidArgument('the model name in the path is not a model name');
  return name;
}

/** A `model` query parameter (undefined: none); INVALID_ARGUMENT (without echoing it) unless it is a model name. */
function modelFilter(query: URLSearchParams): string | undefined {
  const name = query.get('model') || undefined;
  if (name !== undefined && !MODEL_NAME.test(name)) throw errors.invalidArgument('the "model" parameter is not a model name');
  return name;
}

/** Whether an Origin header names the same scheme-less host and port as the Host header. */
function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host.toLowerCase() === host.toLowerCase();
  } catch {
    return false;
  }
}
