// gRPC over node:http2 directly, for data paths that only move bytes (the router's ModelInfer):
// grpc-js costs about twice the CPU per call of a bare HTTP/2 stream. Like lib/grpc/server.ts and
// client.ts this is the one place such servers and connections are made, so limits, keepalive and
// later TLS live here once.
import http2 from 'node:http2';
import type net from 'node:net';

/** HTTP/2 flow-control windows: large enough that one connection is not the limit for big tensors. */
const STREAM_WINDOW_BYTES = 1 << 20;
const CONNECTION_WINDOW_BYTES = 16 << 20;
/** Keepalive of upstream connections: a ping this often, dropped when unanswered this long. */
const KEEPALIVE_INTERVAL_MS = 30_000;
const KEEPALIVE_TIMEOUT_MS = 10_000;

/** Request headers that are not forwarded as they are (pseudo-headers are rebuilt, the deadline recomputed). */
const HOP_HEADERS = new Set(['content-type', 'te', 'user-agent', 'content-length', 'grpc-timeout', 'connection', 'host']);

/** Metadata of a request to forward: its own headers minus pseudo and hop-by-hop headers. */
export function forwardedHeaders(headers: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const k in headers) {
    if (k.charCodeAt(0) !== 58 /* ':' */ && !HOP_HEADERS.has(k)) out[k] = headers[k];
  }
  return out;
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
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeURIComponent(message) }, { endStream: true });
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
export class H2Server {
  readonly server: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void, opts: H2ServerOptions = {}) {
    this.server = http2.createServer({ settings: { initialWindowSize: STREAM_WINDOW_BYTES } });
    this.server.on('session', (session) => {
      this.sessions.add(session);
      let aged: NodeJS.Timeout | undefined;
      session.on('close', () => {
        this.sessions.delete(session);
        clearTimeout(aged);
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
    const s = http2.connect(`http://${this.address}`, { settings: { initialWindowSize: STREAM_WINDOW_BYTES } });
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
    for (const s of this.sessions) {
      if (!s || !s.socket || s.closed || s.destroyed) continue;
      const timer = setTimeout(() => s.destroy(), KEEPALIVE_TIMEOUT_MS);
      const sent = s.ping((err) => {
        clearTimeout(timer);
        if (err) s.destroy();
      });
      if (!sent) clearTimeout(timer);
    }
  }

  /** Closes every connection; streams in flight on them fail. */
  close(): void {
    this.closed = true;
    clearInterval(this.keepalive);
    for (const s of this.sessions) s?.destroy();
  }
}
