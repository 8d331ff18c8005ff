// The router's HTTP/REST door: the Open Inference Protocol's HTTP form (KServe v2 with Triton's
// extensions: model config and statistics, the repository index, binary tensor data) on node:http,
// so curl, tritonclient.http and KServe's REST clients reach the same mesh as gRPC clients do.
//
// It holds no policy of its own. An inference is routed by the routing policy (routed-call.ts) as
// a gRPC call to a pod, its JSON turned into a ModelInferRequest with raw tensors first
// (lib/rest/infer-codec.ts): the pod never sees JSON. Every other endpoint calls the router's typed
// handlers (grpc-handlers.ts, guarded by access.ts when authentication is on) as a gRPC call would,
// token and all; errors are the spec's {"error": "..."} with the status lib/rest/http-status.ts maps
// from the gRPC code. Every request is checked (admit) before a byte of its body is read: a caller
// without a valid token holds nothing. Bodies are bounded on their own, per connection and together
// (INFERMESH_HTTP_*).
import http from 'node:http';
import type net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { errors, ErrorCode, MeshError, toGrpcStatus } from '../../lib/errors';
import { AUTHORIZATION_HEADER, authorizationOfRawHeaders } from '../../lib/auth';
import { protos } from '../../lib/grpc/proto';
import type { ModelInferResponseOut } from '../../lib/grpc/types';
import type { InfoHandlers } from '../../lib/grpc/stream-infer';
import type { ModelInferRequest } from '../../lib/grpc/generated/inference/ModelInferRequest';
import { ByteBudget } from '../../lib/h2/budget';
import { listenOn } from '../../lib/h2/server';
import { READY_REASON_KEY } from '../../lib/grpc/ready-reason';
import { deadlineOf, timeoutProblem } from '../../lib/h2/grpc';
import { encodeInferResponse, INFERENCE_HEADER_LENGTH, MessageTooLarge, parseInferRequest, parseJsonBody, type RestInferLimits, type RestInferRequest } from '../../lib/rest/infer-codec';
import { errorBody, httpStatusOf } from '../../lib/rest/http-status';
import type { LingeringClose } from '../../lib/rest/lingering-close';
import { ConnectionHolds, type ByteHold } from '../../lib/rest/held-bytes';
import { continueBody, createHttpDoorServer } from '../../lib/rest/http-server';
import type { TlsFiles } from '../../lib/tls';
import type { OipMethod } from '../../lib/auth';
import { afterCheck, type RouterAccess } from './access';
import type { PodConnections } from './pod-connections';
import type { RoutingDeps } from './routed-call';
import { WholeAnswerCall } from './whole-answer-call';

/** The door's limits (INFERMESH_HTTP_* and INFERMESH_MAX_MESSAGE_BYTES). */
export interface RestDoorLimits {
  /** Largest body (JSON and binary data together). */
  maxBodyBytes: number;
  /** Largest JSON part. */
  maxJsonBytes: number;
  /** Body bytes held at once, every connection together. */
  maxRequestBytes: number;
  /** Body bytes one connection's requests hold at once (INFERMESH_HTTP_MAX_REQUEST_BYTES_PER_CONNECTION). */
  maxRequestBytesPerConnection: number;
  /** How long a body may go without a byte arriving (INFERMESH_HTTP_BODY_TIMEOUT_MS; 0: no limit). */
  bodyTimeoutMs: number;
  /** Answer bytes waiting for their clients, every connection together. */
  maxResponseBytes: number;
  /** Largest answer written as JSON (its bound, reckoned before it is made). */
  maxJsonAnswerBytes: number;
  maxHeaderBytes: number;
  /** Header fields of a request (INFERMESH_HTTP_MAX_HEADERS). */
  maxHeaders: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** How long a connection closed on a client still sending lingers, in all (INFERMESH_HTTP_LINGERING_TIME_MS; 0: not). */
  lingeringTimeMs: number;
  /** And between two reads of what it sends (INFERMESH_HTTP_LINGERING_TIMEOUT_MS; 0: destroyed at once). */
  lingeringTimeoutMs: number;
  /** How long a held answer's client may take none of it before its connection is closed (INFERMESH_HTTP_SEND_TIMEOUT_MS; 0: no limit). */
  sendTimeoutMs: number;
  maxRequestsPerConnection: number;
  maxConnections: number;
}

export interface RestDoorDeps extends RoutingDeps {
  conns: PodConnections;
  /** The router's typed handlers, guarded when authentication is on: the same ones gRPC calls reach. */
  handlers: InfoHandlers;
  access?: RouterAccess;
  limits: RestDoorLimits;
  tensorLimits: RestInferLimits;
  /** Largest answer a pod may send (INFERMESH_MAX_MESSAGE_BYTES). */
  maxMessageBytes: number;
  /** Serve HTTPS with the service's certificate (reloaded when it changes); unset: plain HTTP. */
  tls?: TlsFiles;
  /** With TLS: require a client certificate signed by the mesh's CA, as the gRPC door does (INFERMESH_ROUTER_TLS_CLIENT_AUTH). */
  requestCert?: boolean;
}

/** A refusal with the HTTP status, message and headers it goes out with. */
class HttpRefusal extends Error {
  constructor(readonly status: number, message: string, readonly headers: http.OutgoingHttpHeaders = {}) {
    super(message);
  }
}

type Route =
  | { kind: 'server'; what: 'live' | 'ready' | 'metadata' }
  | { kind: 'model'; model: string; version: string; what: 'metadata' | 'ready' | 'config' | 'stats' | 'infer' }
  | { kind: 'stats' }
  | { kind: 'index' };

const MODEL_PATH = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(?:\/(ready|config|stats|infer))?$/;

/** The endpoint a method and path name, or a refusal (404, 405, 400 for a bad name). */
export function routeOf(method: string, path: string): Route {
  // A 405 names the methods the endpoint takes (RFC 9110, 15.5.6).
  const get = (r: Route): Route => {
    if (method !== 'GET' && method !== 'HEAD') throw new HttpRefusal(405, `${method} is not allowed on ${path}`, { allow: 'GET, HEAD' });
    return r;
  };
  const post = (r: Route): Route => {
    if (method !== 'POST') throw new HttpRefusal(405, `${method} is not allowed on ${path}`, { allow: 'POST' });
    return r;
  };
  switch (path) {
    case '/v2': return get({ kind: 'server', what: 'metadata' });
    case '/v2/health/live': return get({ kind: 'server', what: 'live' });
    case '/v2/health/ready': return get({ kind: 'server', what: 'ready' });
    case '/v2/models/stats': return get({ kind: 'stats' });
    case '/v2/repository/index': return post({ kind: 'index' });
  }
  const m = MODEL_PATH.exec(path);
  if (!m) throw new HttpRefusal(404, `no endpoint ${path}`);
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new HttpRefusal(400, `${path} is not a valid path (bad percent-encoding)`);
    }
  };
  const model = decode(m[1]!);
  const version = m[2] === undefined ? '' : decode(m[2]);
  if (version !== '' && !/^[1-9]\d{0,15}$/.test(version)) throw new HttpRefusal(400, `version '${version}' is not a version number`);
  const what = (m[3] ?? 'metadata') as 'metadata' | 'ready' | 'config' | 'stats' | 'infer';
  const route: Route = { kind: 'model', model, version, what };
  return what === 'infer' ? post(route) : get(route);
}

/**
 * The OIP method a route is checked as, and the model it names (undefined: about several models
 * or none, the answer filtered to what the caller may read): the scopes of lib/auth's one table.
 */
export function accessOf(route: Route): { method: OipMethod; model: string | undefined } {
  switch (route.kind) {
    case 'server': return { method: route.what === 'live' ? 'ServerLive' : route.what === 'ready' ? 'ServerReady' : 'ServerMetadata', model: undefined };
    case 'stats': return { method: 'ModelStatistics', model: undefined };
    case 'index': return { method: 'RepositoryIndex', model: undefined };
    case 'model': {
      const methods = { metadata: 'ModelMetadata', ready: 'ModelReady', config: 'ModelConfig', stats: 'ModelStatistics', infer: 'ModelInfer' } as const;
      return { method: methods[route.what], model: route.model };
    }
  }
}

/** Whether a request comes with no body at all (no length, or 0, and not chunked): nothing is left unread when it is refused. */
function hasNoBody(req: http.IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] === undefined && (length === undefined || Number(length) === 0);
}

/** Calls a typed unary handler as grpc-js would, with the request's token in its metadata. */
function callHandler<Req, Res>(handler: grpc.handleUnaryCall<Req, Res>, request: Req, authorization: string | undefined): Promise<{ res: Res; trailer?: grpc.Metadata }> {
  const metadata = new grpc.Metadata();
  if (authorization !== undefined) metadata.set(AUTHORIZATION_HEADER, authorization);
  const call = { request, metadata, getDeadline: () => Infinity, on: () => call, cancelled: false } as unknown as grpc.ServerUnaryCall<Req, Res>;
  return new Promise((resolve, reject) => {
    handler(call, (err, res, trailer) => {
      // Handlers answer a status object ({ code, details }), as grpc-js takes it: made an error that carries it.
      if (err) {
        const { code = grpc.status.UNKNOWN, details = '' } = err as Partial<grpc.StatusObject>;
        const message = details || ((err as { message?: string }).message ?? '');
        reject(Object.assign(new Error(message), { code, details: message, metadata: new grpc.Metadata() }));
      }
      else resolve({ res: res as Res, trailer: trailer ?? undefined });
    });
  });
}

const JSON_TYPE = 'application/json';

export class RestDoor {
  private readonly server: http.Server;
  private readonly budget: ByteBudget;
  /** Answer bytes written and not yet taken by their clients, every connection together. */
  private readonly answers: ByteBudget;
  /** What each connection's exchanges hold of the two budgets, given back when they end or it closes. */
  private readonly holds = new ConnectionHolds();
  /** Requests each connection has carried (INFERMESH_HTTP_MAX_REQUESTS_PER_CONNECTION). */
  private readonly requestsOf = new WeakMap<net.Socket, number>();
  private readonly sockets = new Set<net.Socket>();
  private readonly serializeRequest = protos().inference.GRPCInferenceService.service.ModelInfer.requestSerialize;
  private readonly deserializeResponse = protos().inference.GRPCInferenceService.service.ModelInfer.responseDeserialize;
  private readonly stopTls: () => void;
  private readonly lingering: LingeringClose;

  constructor(private readonly deps: RestDoorDeps) {
    const l = deps.limits;
    this.budget = new ByteBudget(l.maxRequestBytes);
    this.answers = new ByteBudget(l.maxResponseBytes);
    const door = createHttpDoorServer(l, (req, res) => this.handle(req, res), deps.tls, deps.requestCert ?? false);
    this.server = door.server;
    this.stopTls = door.stopTls;
    this.lingering = door.lingering;
    this.server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  listen(host: string, port: number): Promise<number> {
    return listenOn(this.server, host, port);
  }

  /**
   * Stops taking connections and waits up to `budgetMs` for requests in flight, then closes what is
   * left. Connections lingering after a refusal carry none: they are closed at once.
   */
  async drain(budgetMs: number): Promise<void> {
    this.stopTls();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    this.lingering.stop();
    const timer = setTimeout(() => this.server.closeAllConnections(), budgetMs);
    await closed;
    clearTimeout(timer);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    // The connection's last request: its answer says Connection: close and Node ends it after.
    const carried = (this.requestsOf.get(req.socket) ?? 0) + 1;
    this.requestsOf.set(req.socket, carried);
    const max = this.deps.limits.maxRequestsPerConnection;
    if (max > 0 && carried >= max) res.shouldKeepAlive = false;
    let route: Route;
    let authorization: string | undefined;
    try {
      route = routeOf(req.method ?? 'GET', (req.url ?? '/').split('?')[0]!);
      authorization = authorizationOfRawHeaders(req.rawHeaders);
      // Bodies are read as sent: a compressed one would be taken for JSON or tensor bytes it is not
      // (RFC 9110, 15.5.16: 415, naming the codings taken).
      const coding = req.headers['content-encoding'];
      if (coding !== undefined && !/^\s*identity\s*$/i.test(coding)) {
        throw new HttpRefusal(415, 'the body has a Content-Encoding: the router takes bodies uncompressed', { 'accept-encoding': 'identity' });
      }
    } catch (err) {
      return this.refuseUnread(req, res, err);
    }
    this.admit(route, authorization, () => {
      if (route.kind === 'model' && route.what === 'infer') return this.infer(req, res, route.model, route.version);
      this.readBody(req, res, this.deps.limits.maxJsonBytes, (body) => {
        this.answer(route, body, authorization).then(
          ({ status, json }) => this.send(res, status, json === undefined ? undefined : Buffer.from(JSON.stringify(json))),
          (err: unknown) => this.fail(res, err),
        );
      });
    }, (err) => this.refuseUnread(req, res, err));
  }

  /**
   * Checks a request's token, and its scope on the model its path names, as its gRPC call is checked,
   * before any of its body is read: every endpoint comes through here. A body is charged to the
   * door's budgets as it is read, so a body read first would let a caller with no token at all hold
   * them (for as long as its client takes to send it). With authentication off: `then` at once.
   */
  private admit(route: Route, authorization: string | undefined, then: () => void, refused: (err: unknown) => void): void {
    const access = this.deps.access;
    if (!access) return then();
    const { method, model } = accessOf(route);
    afterCheck(() => access.check(authorization, method, model), then, refused);
  }

  /**
   * Refuses a request whose body has not been read: a request with none keeps its connection; one
   * with a body is answered and its connection closed (refuseBody), as reading the body to skip it
   * would let the client send on (nginx answers and closes likewise).
   */
  private refuseUnread(req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
    if (!hasNoBody(req)) return this.refuseBody(req, res, err);
    req.resume();
    this.fail(res, err);
  }

  /** Every endpoint but infer: the typed handler's answer as the spec's JSON. */
  private async answer(route: Exclude<Route, { what: 'infer' }>, body: Buffer, authorization: string | undefined): Promise<{ status: number; json?: unknown }> {
    const h = this.deps.handlers;
    switch (route.kind) {
      case 'server': {
        if (route.what === 'metadata') return { status: 200, json: (await callHandler(h.ServerMetadata, {}, authorization)).res };
        const { res } = route.what === 'live' ? await callHandler(h.ServerLive, {}, authorization) : await callHandler(h.ServerReady, {}, authorization);
        const ok = 'live' in res ? res.live : (res as { ready: boolean }).ready;
        return { status: ok ? 200 : 400 };
      }
      case 'stats':
        return { status: 200, json: (await callHandler(h.ModelStatistics, { name: '', version: '' }, authorization)).res };
      case 'index': {
        let ready = false;
        if (body.length > 0) {
          const parsed = parseJsonObject(body);
          if (parsed.ready !== undefined && typeof parsed.ready !== 'boolean') throw errors.invalidArgument('"ready" must be true or false');
          ready = parsed.ready === true;
        }
        return { status: 200, json: (await callHandler(h.RepositoryIndex, { repository_name: '', ready }, authorization)).res.models };
      }
      case 'model': {
        const { model: name, version } = route;
        switch (route.what) {
          case 'ready': {
            const { res, trailer } = await callHandler(h.ModelReady, { name, version }, authorization);
            if (res.ready) return { status: 200 };
            const why = trailer?.get(READY_REASON_KEY)[0];
            return { status: 400, json: { error: typeof why === 'string' ? why : `model '${name}' is not ready` } };
          }
          case 'config':
            // The configuration itself, as Triton's HTTP API answers (tritonclient.http reads it so).
            return { status: 200, json: (await callHandler(h.ModelConfig, { name, version }, authorization)).res.config };
          case 'stats':
            return { status: 200, json: (await callHandler(h.ModelStatistics, { name, version }, authorization)).res };
          default: {
            const { res } = await callHandler(h.ModelMetadata, { name, version }, authorization);
            // The handler's answer is what a pod sent, read with the proto's defaults: every field is there.
            type Tensor = { name?: string; datatype?: string; shape?: unknown[] };
            const tensor = (t: Tensor) => ({ name: t.name ?? '', datatype: t.datatype ?? '', shape: (t.shape ?? []).map(Number) });
            return { status: 200, json: { name: res.name, versions: res.versions ?? [], platform: res.platform ?? '', inputs: (res.inputs ?? []).map(tensor), outputs: (res.outputs ?? []).map(tensor) } };
          }
        }
      }
    }
  }

  /** An inference, its caller admitted: read, turned into a ModelInferRequest and routed as a gRPC call is. */
  private infer(req: http.IncomingMessage, res: http.ServerResponse, model: string, version: string): void {
    const lengthHeader = req.headers[INFERENCE_HEADER_LENGTH];
    let headerLength: number | undefined;
    if (lengthHeader !== undefined) {
      headerLength = Number(lengthHeader);
      if (typeof lengthHeader !== 'string' || !/^\d{1,10}$/.test(lengthHeader)) {
        return this.refuseUnread(req, res, errors.invalidArgument(`${INFERENCE_HEADER_LENGTH} must be a number of bytes`));
      }
      if (headerLength > this.deps.limits.maxJsonBytes) {
        return this.refuseUnread(req, res, new HttpRefusal(413, `the JSON part has ${headerLength} bytes, more than the limit of ${this.deps.limits.maxJsonBytes}`));
      }
    }
    const timeout = req.headers['grpc-timeout'] as string | undefined;
    const badTimeout = timeoutProblem(timeout);
    if (badTimeout !== undefined) return this.refuseUnread(req, res, errors.invalidArgument(badTimeout));
    const deadline = deadlineOf(timeout);
    this.readBody(req, res, headerLength === undefined ? this.deps.limits.maxJsonBytes : this.deps.limits.maxBodyBytes, (body, hold) => {
      // Only what the answer needs is kept: the parsed request's raw tensors are garbage once encoded.
      let asked: Pick<RestInferRequest, 'binaryOutputs' | 'binaryByDefault'>;
      let message: Buffer;
      try {
        const parsed = parseInferRequest(model, version, body, headerLength, { ...this.deps.tensorLimits, maxMessageBytes: this.deps.maxMessageBytes });
        asked = { binaryOutputs: parsed.binaryOutputs, binaryByDefault: parsed.binaryByDefault };
        message = this.encodeRequest(parsed.request);
      } catch (err) {
        return this.fail(res, err instanceof MessageTooLarge ? new HttpRefusal(413, err.message) : err);
      }
      // From here the request is its gRPC message, held until the answer is sent (each attempt
      // sends it): up to 4 times the JSON it came from (an FP64 `0,`), charged in the body's place
      // (nothing keeps the body now). Conversion is synchronous: one request's transient copies
      // are all that exist uncounted at a time.
      const more = message.length - hold.held;
      if (!hold.replace(message.length)) return this.fail(res, this.overloaded(more, `the ${message.length} bytes this request makes as a gRPC message`));
      const call = new WholeAnswerCall(this.deps, message, deadline, model, version, {
        answer: (answer) => {
          let out;
          try {
            out = encodeInferResponse(this.deserializeResponse(answer) as ModelInferResponseOut, asked, this.deps.limits.maxJsonAnswerBytes);
          } catch (err) {
            return this.fail(res, err);
          }
          const headers: http.OutgoingHttpHeaders = { 'content-type': out.headerLength === undefined ? JSON_TYPE : 'application/octet-stream' };
          if (out.headerLength !== undefined) headers[INFERENCE_HEADER_LENGTH] = String(out.headerLength);
          this.send(res, 200, out.body, headers);
        },
        status: (code, msg) => this.send(res, httpStatusOf(code), Buffer.from(errorBody(msg))),
      });
      // The client hung up before its answer: the call ends, blaming no one.
      res.once('close', () => {
        if (!res.writableFinished) call.clientCancelled();
      });
      call.begin();
    });
  }

  /**
   * A request as the gRPC message a pod takes (WholeAnswerCall frames it as it writes, with no
   * second copy); HttpRefusal 413 when it passes INFERMESH_MAX_MESSAGE_BYTES (its tensors are within
   * it: their names and parameters took it past), as no pod would take it.
   */
  private encodeRequest(request: ModelInferRequest): Buffer {
    const message = this.serializeRequest(request);
    const max = this.deps.maxMessageBytes;
    if (message.length > max) throw new HttpRefusal(413, `the request makes a gRPC message of ${message.length} bytes, more than the limit of ${max}`);
    return message;
  }

  /**
   * Reads the body whole, up to `max` bytes, against the door's budget and the connection's share
   * of it: a declared length over any is answered (413, 429) before any of it is read (a client
   * that waits for 100 Continue is sent none), and the budget is charged with the bytes
   * as they arrive (a declared length holds nothing by itself); a body is cut off where it passes,
   * or where the connection's requests together pass its share. A body of which nothing arrives for
   * bodyTimeoutMs is answered 408 and its connection closed: a client that stalls gives its bytes
   * back then, not at the end of the whole request's time. `then` gets the body and its hold, to
   * charge what is made from it in its place.
   */
  private readBody(req: http.IncomingMessage, res: http.ServerResponse, max: number, then: (body: Buffer, hold: ByteHold) => void): void {
    const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    if (declared !== undefined && declared > max) return this.refuseBody(req, res, new HttpRefusal(413, `the body has ${declared} bytes, more than the limit of ${max}`));
    const share = this.deps.limits.maxRequestBytesPerConnection;
    if (declared !== undefined && !this.holds.fits(this.budget, req.socket, declared, share)) {
      return this.refuseBody(req, res, this.overloaded(declared, `${declared} more`));
    }
    // Given back when the answer is sent, or the connection closes first (req.socket: an answer
    // queued behind another sees no event of its own then).
    const hold = this.holds.hold(this.budget, req.socket, [[res, 'finish'], [res, 'close']], share);
    const chunks: Buffer[] = [];
    let length = 0;
    let done = false;
    const stop = (err: unknown) => {
      done = true;
      clearTimeout(stalled);
      hold.release();
      chunks.length = 0;
      this.refuseBody(req, res, err);
    };
    const timeoutMs = this.deps.limits.bodyTimeoutMs;
    const stalled = timeoutMs > 0 ? setTimeout(() => {
      if (!done && !req.socket.destroyed) stop(new HttpRefusal(408, `no byte of the body came for ${timeoutMs} ms`));
    }, timeoutMs).unref() : undefined;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      stalled?.refresh();
      length += chunk.length;
      if (length > max) return stop(new HttpRefusal(413, `the body has more than the limit of ${max} bytes`));
      if (!hold.take(chunk.length)) return stop(this.overloaded(chunk.length));
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      clearTimeout(stalled);
      // Charged until the answer is sent: the request's bytes, or what is made of them, live as
      // long as its call. The chunks are let go: the body is the one copy of them.
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
      chunks.length = 0;
      then(body, hold);
    });
    req.on('error', () => {
      done = true;
      clearTimeout(stalled);
      hold.release();
    });
    // A request cut off with its connection (a 408 of node:http's own) may see neither 'end' nor
    // 'error': its 'close' lets go of the timer, and what it holds, at once.
    req.once('close', () => clearTimeout(stalled));
    // Every check passed: a client waiting for it (Expect: 100-continue) is told to send the body.
    continueBody(res);
  }

  /**
   * The 429 of `bytes` of a request that do not fit (named `what` in the message, when given):
   * whether the door's budget is full or only the connection's share of it is spent, the one
   * reason of every check on request bytes, so a caller is told to use another connection only
   * when one would help.
   */
  private overloaded(bytes: number, what?: string): MeshError {
    const take = what === undefined ? '' : ` to take ${what}`;
    return new MeshError(ErrorCode.Overloaded, this.budget.fits(bytes)
      ? `this connection's requests hold too many bytes${take} (one connection's share of the router's); retry on another once they are answered`
      : `the router holds too many request bytes${take}; retry later`);
  }

  /**
   * Answers a body it will not read, then closes the connection, lingering: the rest of the body is
   * read and dropped, never held, so its client reads the answer rather than a reset.
   */
  private refuseBody(req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
    res.shouldKeepAlive = false;
    this.fail(res, err);
    res.once('finish', () => this.lingering.close(req.socket));
  }

  private fail(res: http.ServerResponse, err: unknown): void {
    if (err instanceof HttpRefusal) return this.send(res, err.status, Buffer.from(errorBody(err.message)), err.headers);
    const { code, details } = toGrpcStatus(err, this.deps.log);
    this.send(res, httpStatusOf(code), Buffer.from(errorBody(details)));
  }

  /**
   * Holds `bytes` of answer for `res` in the door's answer budget until its client has taken them
   * (or gone); false, holding nothing, when they do not fit.
   */
  private holdAnswer(res: http.ServerResponse, bytes: number): boolean {
    const hold = this.holds.hold(this.answers, res.req.socket, [[res, 'finish'], [res, 'close']]);
    if (!hold.take(bytes)) {
      hold.release();
      return false;
    }
    this.watchSend(res);
    return true;
  }

  /**
   * Closes the connection of an answer its client stops taking: checked every sendTimeoutMs, the
   * connection must have handed more bytes to the kernel since the last check (the client read
   * some), or the answer be sent. Its bytes, and every exchange's on the connection, are given back
   * as it closes.
   */
  private watchSend(res: http.ServerResponse): void {
    const ms = this.deps.limits.sendTimeoutMs;
    if (ms <= 0) return;
    const socket = res.req.socket;
    // Bytes written and not waiting in the stream: what the kernel took (answers appended later do
    // not count). Answers are written in chunks (send), so a steady reader shows progress.
    const handedOver = () => socket.bytesWritten - socket.writableLength;
    let last = handedOver();
    let timer: NodeJS.Timeout | undefined;
    const check = () => {
      if (res.writableFinished || socket.destroyed) return;
      const now = handedOver();
      // Nothing waiting on the connection: this answer queues behind an earlier one still being
      // computed (pipelining), which is not its client failing to read.
      if (now > last || socket.writableLength === 0) {
        last = now;
        timer = setTimeout(check, ms).unref();
        return;
      }
      this.deps.log.info('closing a REST connection whose client takes none of its answer', { timeoutMs: ms, unsentBytes: socket.writableLength });
      socket.destroy();
    };
    timer = setTimeout(check, ms).unref();
    const stop = () => clearTimeout(timer);
    res.once('finish', stop);
    res.once('close', stop);
  }

  private send(res: http.ServerResponse, status: number, body?: Buffer, headers: http.OutgoingHttpHeaders = {}): void {
    if (res.headersSent || res.destroyed) return;
    // An answer the budget cannot take: the clients are not reading the ones they have.
    if (body !== undefined && body.length > 1024 && !this.holdAnswer(res, body.length)) {
      body = Buffer.from(errorBody(`the router holds too many unread answers to send ${body.length} bytes more; retry later`));
      status = httpStatusOf(grpc.status.RESOURCE_EXHAUSTED);
      headers = {};
    }
    res.statusCode = status;
    if (body !== undefined) {
      if (!headers['content-type']) res.setHeader('content-type', JSON_TYPE);
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v!);
      res.setHeader('content-length', body.length);
      if (res.req.method === 'HEAD') res.end();
      else writeInChunks(res, body);
    } else {
      res.setHeader('content-length', 0);
      res.end();
    }
  }
}

/**
 * Pieces a large answer is handed to its connection in, waiting for each to drain: the send
 * timeout (INFERMESH_HTTP_SEND_TIMEOUT_MS) sees a steady reader's progress piece by piece, where one
 * write of the whole answer shows none until the last byte is taken.
 */
const SEND_CHUNK_BYTES = 1024 * 1024;

/** Writes `body` and ends `res`, at most SEND_CHUNK_BYTES at a time once the connection has drained. */
function writeInChunks(res: http.ServerResponse, body: Buffer): void {
  let off = 0;
  const next = (): void => {
    while (body.length - off > SEND_CHUNK_BYTES) {
      const chunk = body.subarray(off, off + SEND_CHUNK_BYTES);
      off += SEND_CHUNK_BYTES;
      if (!res.write(chunk)) {
        res.once('drain', next);
        return;
      }
    }
    res.end(body.subarray(off));
  };
  next();
}

/** A JSON object body, or INVALID_ARGUMENT. */
function parseJsonObject(body: Buffer): Record<string, unknown> {
  const v = parseJsonBody(body);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw errors.invalidArgument('the request body must be a JSON object');
  return v as Record<string, unknown>;
}

