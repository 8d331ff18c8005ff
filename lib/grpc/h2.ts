// gRPC over node:http2 directly, for data paths that only move bytes (the router's ModelInfer):
// grpc-js costs about twice the CPU per call of a bare HTTP/2 stream. Like lib/grpc/server.ts and
// client.ts this is the one place such servers and connections are made, so limits, keepalive and
// later TLS live here once.
import http2 from 'node:http2';
import { context, propagation, type Context, type TextMapGetter } from '@opentelemetry/api';
import type net from 'node:net';

/** HTTP/2 flow-control windows: large enough that one connection is not the limit for big tensors. */
const STREAM_WINDOW_BYTES = 1 << 20;
const CONNECTION_WINDOW_BYTES = 16 << 20;
/** Keepalive of upstream connections: a ping this often, dropped when unanswered this long. */
const KEEPALIVE_INTERVAL_MS = 30_000;
const KEEPALIVE_TIMEOUT_MS = 10_000;
/**
 * Node counts data queued to send against a session's memory and refuses new streams past 10 MB,
 * then closes the connection: a few large tensors in flight would do it. grpc-js lifts the limit
 * the same way; flow control is what bounds memory here.
 */
const MAX_SESSION_MEMORY_MB = Number.MAX_SAFE_INTEGER;
/** The longest delay setTimeout keeps (longer ones fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** gRPC status codes used here (as numbers: this module does not load grpc-js). */
const UNAVAILABLE = 14;
const RESOURCE_EXHAUSTED = 8;
const INTERNAL = 13;

const headerGetter: TextMapGetter<http2.IncomingHttpHeaders> = {
  keys: (h) => Object.keys(h),
  get: (h, k) => h[k],
};

/** The trace context a request's headers carry (W3C traceparent), for the span a front door makes. */
export function traceContextOf(headers: http2.IncomingHttpHeaders): Context {
  return propagation.extract(context.active(), headers, headerGetter);
}

/** Response headers to relay: the upstream's minus pseudo-headers other than :status. */
export function relayedHeaders(headers: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = { ':status': 200 };
  for (const k in headers) if (k.charCodeAt(0) !== 58) out[k] = headers[k];
  return out;
}

const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/** The epoch-ms deadline of a `grpc-timeout` header (undefined: none, or malformed). */
export function deadlineOf(header: string | string[] | undefined, now = Date.now()): number | undefined {
  if (typeof header !== 'string' || header.length < 2 || header.length > 9) return undefined;
  const unit = TIMEOUT_UNITS[header[header.length - 1]!];
  const value = Number(header.slice(0, -1));
  if (unit === undefined || !Number.isInteger(value) || value < 0) return undefined;
  return now + value * unit;
}

/** Calls `fn` at epoch ms `deadline` (setTimeout, with the delay capped so it cannot overflow). */
export function atDeadline(deadline: number, fn: () => void): NodeJS.Timeout {
  return setTimeout(fn, Math.min(MAX_TIMER_MS, Math.max(0, deadline - Date.now())));
}

/** A `grpc-timeout` header for the time left until `deadline` (at least 1 ms). */
export function timeoutHeader(deadline: number, now = Date.now()): string {
  return `${Math.max(1, Math.ceil(deadline - now))}m`;
}

/** Answers a stream with a status and no message (a gRPC "trailers-only" response). */
export function respondStatus(stream: http2.ServerHttp2Stream, code: number, message: string): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': grpcMessage(message) }, { endStream: true });
}

/**
 * A status message as gRPC carries it: bytes outside printable ASCII, and '%', percent-encoded (the
 * spec's rule, which clients decode; encodeURIComponent would also encode ':' and '/', which they
 * leave as they are).
 */
export function grpcMessage(message: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let out = '';
  for (const b of Buffer.from(message, 'utf8')) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** Options of an H2Server. */
export interface H2ServerOptions {
  /**
   * Close each client connection after about this long (±10%, so clients do not all reconnect at
   * once): GOAWAY, then the connection ends when its calls in flight have finished, however long
   * (a stream included). Behind a Kubernetes Service this is what spreads long-lived gRPC clients
   * over replicas added later. 0: never.
   */
  maxConnectionAgeMs?: number;
}

/** An HTTP/2 server for gRPC clients, tracking its sessions so that it can drain them. */
class H2Server {
  readonly server: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void, opts: H2ServerOptions = {}) {
    this.server = http2.createServer({ settings: { initialWindowSize: STREAM_WINDOW_BYTES }, maxSessionMemory: MAX_SESSION_MEMORY_MB });
    this.server.on('session', (session) => {
      this.sessions.add(session);
      let aged: NodeJS.Timeout | undefined;
      // A client that vanished without closing its connection is found by a ping it does not answer.
      const keepalive = setInterval(() => ping(session), KEEPALIVE_INTERVAL_MS).unref();
      session.on('close', () => {
        this.sessions.delete(session);
        clearTimeout(aged);
        clearInterval(keepalive);
      });
      session.on('error', () => undefined);
      session.once('connect', () => session.setLocalWindowSize(CONNECTION_WINDOW_BYTES));
      // Clients that never close streams must not hold memory: sessions idle for 10 min are closed.
      session.setTimeout(600_000, () => session.close());
      const age = opts.maxConnectionAgeMs ?? 0;
      if (age > 0) aged = setTimeout(() => session.close(), age * (0.9 + Math.random() * 0.2)).unref();
    });
    this.server.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      onStream(stream, headers);
    });
  }

  /** Listens on `host:port` (0: any free port) and resolves to the bound port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  /**
   * Stops taking connections and streams (GOAWAY to every client), waits for the streams in
   * flight up to `timeoutMs`, then closes what is left. Resolves true when all finished in time.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.server.close();
    for (const s of this.sessions) s.close();
    const until = Date.now() + timeoutMs;
    while (this.sessions.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const clean = this.sessions.size === 0;
    for (const s of this.sessions) s.destroy();
    return clean;
  }
}

/** Pings `s`; destroys it when the ping fails or is not answered within the keepalive timeout. */
function ping(s: http2.Http2Session): void {
  if (!s.socket || s.closed || s.destroyed) return;
  const timer = setTimeout(() => s.destroy(), KEEPALIVE_TIMEOUT_MS);
  const sent = s.ping((err) => {
    clearTimeout(timer);
    if (err) s.destroy();
  });
  if (!sent) clearTimeout(timer);
}

/** A few HTTP/2 connections to one upstream, used in turn, reconnected when they fail. */
export class H2Upstream {
  private readonly sessions: (http2.ClientHttp2Session | undefined)[];
  private next = 0;
  private readonly keepalive: NodeJS.Timeout;
  private closed = false;

  constructor(readonly address: string, connections: number) {
    this.sessions = new Array(Math.max(1, connections)).fill(undefined);
    this.keepalive = setInterval(() => this.ping(), KEEPALIVE_INTERVAL_MS);
    this.keepalive.unref();
  }

  private connect(i: number): http2.ClientHttp2Session {
    const s = http2.connect(`http://${this.address}`, { settings: { initialWindowSize: STREAM_WINDOW_BYTES }, maxSessionMemory: MAX_SESSION_MEMORY_MB });
    s.on('error', () => undefined);
    s.once('connect', () => s.setLocalWindowSize(CONNECTION_WINDOW_BYTES));
    s.once('close', () => {
      if (this.sessions[i] === s) this.sessions[i] = undefined;
    });
    s.once('goaway', () => {
      if (this.sessions[i] === s) this.sessions[i] = undefined;
    });
    s.unref();
    this.sessions[i] = s;
    return s;
  }

  /** Opens a stream on the next connection. Throws when the connection cannot take one. */
  request(headers: http2.OutgoingHttpHeaders): http2.ClientHttp2Stream {
    if (this.closed) throw new Error(`connections to ${this.address} are closed`);
    const i = this.next++ % this.sessions.length;
    let s = this.sessions[i];
    if (!s || s.closed || s.destroyed) s = this.connect(i);
    return s.request(headers);
  }

  private ping(): void {
    for (const s of this.sessions) if (s) ping(s);
  }

  /** Closes every connection; streams in flight on them fail. */
  close(): void {
    this.closed = true;
    clearInterval(this.keepalive);
    for (const s of this.sessions) s?.destroy();
  }
}

/**
 * Pipes a call both ways to `upstream` (a loopback grpc-js server), flow control included: how a
 * node:http2 front door serves every call it does not handle itself. `body`, when given, is a
 * request already read whole, sent instead of piping the stream.
 */
export function pipeCall(upstream: H2Upstream, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, body?: Buffer): void {
  let up: http2.ClientHttp2Stream;
  try {
    up = upstream.request({ ...headers, ':authority': upstream.address });
  } catch (err) {
    respondStatus(stream, UNAVAILABLE, `internal: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  let trailers: http2.IncomingHttpHeaders | undefined;
  let ended = false;
  up.on('response', (h) => {
    ended = h['grpc-status'] !== undefined;
    if (!stream.destroyed) stream.respond(relayedHeaders(h), ended ? { endStream: true } : { waitForTrailers: true });
  });
  up.on('data', (c: Buffer) => {
    if (!stream.destroyed && !stream.write(c)) up.pause();
  });
  stream.on('drain', () => up.resume());
  up.on('trailers', (t) => (trailers = t));
  stream.on('wantTrailers', () => stream.sendTrailers(relayedTrailers(trailers)));
  up.on('end', () => {
    if (!ended && !stream.destroyed && stream.headersSent) stream.end();
  });
  // Once a request read whole has been handed over it may have run: a failure then is INTERNAL, not
  // UNAVAILABLE, which callers read as "did not run" and retry elsewhere.
  const failed = body ? INTERNAL : UNAVAILABLE;
  up.on('error', (err) => respondStatus(stream, failed, `internal: ${err.message}`));
  up.on('close', () => {
    if (!stream.headersSent) respondStatus(stream, failed, 'internal stream closed');
  });
  stream.on('close', () => {
    if (!up.closed) up.close(http2.constants.NGHTTP2_CANCEL);
  });
  if (body) up.end(body);
  else stream.pipe(up);
}

/** Trailers to relay: the upstream's minus pseudo-headers; a missing status is UNAVAILABLE. */
export function relayedTrailers(t: http2.IncomingHttpHeaders | undefined): http2.OutgoingHttpHeaders {
  if (!t) return { 'grpc-status': String(UNAVAILABLE), 'grpc-message': 'upstream sent no status' };
  const out: http2.OutgoingHttpHeaders = {};
  for (const k in t) if (k.charCodeAt(0) !== 58) out[k] = t[k];
  return out;
}

/**
 * Reads a unary call's request whole, up to `maxMessageBytes` (plus its 5-byte frame header); a
 * larger one is answered RESOURCE_EXHAUSTED naming `who`'s limit, and `onBody` is never called.
 */
function readUnary(stream: http2.ServerHttp2Stream, maxMessageBytes: number, who: string, onBody: (body: Buffer) => void): void {
  const limit = maxMessageBytes + 5;
  const chunks: Buffer[] = [];
  let length = 0;
  const onData = (c: Buffer) => {
    length += c.length;
    if (length > limit) {
      stream.off('data', onData);
      stream.off('end', onEnd);
      respondStatus(stream, RESOURCE_EXHAUSTED, `request is larger than ${who}'s limit of ${maxMessageBytes} bytes`);
      // The answer is complete: stop the rest of the upload (RST_STREAM NO_ERROR, as HTTP/2 allows).
      stream.close(http2.constants.NGHTTP2_NO_ERROR);
      return;
    }
    chunks.push(c);
  };
  const onEnd = () => onBody(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length));
  stream.on('data', onData);
  stream.on('end', onEnd);
}

/** A unary request body as gRPC frames it: one message, or why it is not one. */
export type UnaryFrame = { message: Buffer; compressed: boolean } | { error: string };

/** Splits a unary request body into its one message (and whether it is compressed). */
export function unaryFrame(body: Buffer): UnaryFrame {
  if (body.length < 5 || body.length !== 5 + body.readUInt32BE(1)) return { error: 'a unary call takes exactly one request message' };
  return { message: body.subarray(5), compressed: body[0] !== 0 };
}

/** Answers a unary call with `message` (serialized) and status OK, unless it exceeds `maxMessageBytes`. */
export function respondMessage(stream: http2.ServerHttp2Stream, message: Buffer, maxMessageBytes: number): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  if (message.length > maxMessageBytes) {
    respondStatus(stream, RESOURCE_EXHAUSTED, `response of ${message.length} bytes is larger than the limit of ${maxMessageBytes} bytes`);
    return;
  }
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(frame);
}

/** Options of an H2FrontDoor. */
export interface H2FrontDoorOptions extends H2ServerOptions {
  /** The unary method the door answers itself, e.g. /inference.GRPCInferenceService/ModelInfer. */
  path: string;
  /**
   * Called with each request to `path`, read whole (its 5-byte frame header included); `deadline`
   * is the epoch ms its grpc-timeout ends, counted from when its headers arrived (undefined: none).
   */
  onUnary: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, body: Buffer, deadline: number | undefined) => void;
  maxMessageBytes: number;
  /** Named in the RESOURCE_EXHAUSTED message of a request over the limit ("the router"). */
  who: string;
  /** host:port of the service's own grpc-js server (loopback), which answers every other call. */
  fallbackAddress: string;
}

/**
 * A service's port on node:http2: one hot unary method answered by the service itself, every other
 * call piped as it is to the service's grpc-js server on loopback, where its typed handlers live.
 */
export class H2FrontDoor {
  private readonly h2: H2Server;
  /** The service's grpc-js server, for calls the door hands over (a compressed request). */
  readonly fallback: H2Upstream;

  constructor(opts: H2FrontDoorOptions) {
    this.fallback = new H2Upstream(opts.fallbackAddress, 1);
    this.h2 = new H2Server((stream, headers) => {
      if (headers[':path'] === opts.path && headers[':method'] === 'POST') {
        if (!String(headers['content-type'] ?? '').startsWith('application/grpc')) {
          stream.respond({ ':status': 415 }, { endStream: true });
          return;
        }
        const deadline = deadlineOf(headers['grpc-timeout']);
        readUnary(stream, opts.maxMessageBytes, opts.who, (body) => opts.onUnary(stream, headers, body, deadline));
      } else {
        pipeCall(this.fallback, stream, headers);
      }
    }, opts);
  }

  listen(host: string, port: number): Promise<number> {
    return this.h2.listen(host, port);
  }

  /** Stops taking calls (GOAWAY) and waits up to `budgetMs` for those in flight. */
  async drain(budgetMs: number): Promise<boolean> {
    const clean = await this.h2.drain(budgetMs);
    this.fallback.close();
    return clean;
  }
}
