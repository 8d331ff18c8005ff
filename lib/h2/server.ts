// A listening socket whose connections are H2Connections (server side), tracked so that they can
// be aged out and drained, with one clock for all of them: the timeouts and rate limits of every
// connection are checked on its tick, so a connection costs no timer of its own.
import net from 'node:net';
import tls from 'node:tls';
import { ByteBudget } from './budget';
import { H2Connection, type H2ConnectionOptions, type H2Stream, type Header } from './connection';
import { DEFAULT_H2_LIMITS } from './limits';

/** Options of an H2Server. */
export interface H2ServerOptions extends H2ConnectionOptions {
  /**
   * Close each client connection after about this long (±10%, so clients do not all reconnect at
   * once): GOAWAY, then the connection ends when its calls in flight have finished. Behind a
   * Kubernetes Service this is what spreads long-lived gRPC clients over replicas added later.
   * 0 (the default): never.
   */
  maxConnectionAgeMs?: number;
  /** Serve over TLS (ALPN h2 only) instead of plain h2c; unset (the default): plain TCP. */
  tls?: H2ServerTls;
}

/** TLS of an H2Server: where its material comes from, and whether clients must bring a certificate. */
export interface H2ServerTls {
  /** The material in force (lib/tls.ts TlsFiles); each change is applied to new connections. */
  source: { contextOptions(): tls.SecureContextOptions; onChange(fn: () => void): () => void };
  /** Require a client certificate signed by the CA (mutual TLS); false: none asked for. */
  requestCert: boolean;
  /**
   * Called once per connection after its handshake, the peer's certificate on the socket
   * (lib/tls.ts peerIdentities reads its SPIFFE IDs); false hangs up. Unset: every peer the
   * handshake let in.
   */
  acceptPeer?: (socket: tls.TLSSocket) => boolean;
  /**
   * Called once per connection admitted, the peer's certificate on the socket: what that peer may
   * call, a CallGate handed with each of the connection's streams to the server's onStream (the
   * front door asks it each stream's :path). Unset: no gate, every call.
   */
  callsOf?: (socket: tls.TLSSocket) => CallGate;
}

/** What one connection's peer may call: why it may not call the method at `path`, or undefined when it may. */
export type CallGate = (path: string) => string | undefined;

/** Gets each stream a client opens; `gate`: what its connection's peer may call (H2ServerTls.callsOf), unset for any call. */
export type OnServerStream = (stream: H2Stream, headers: Header[], endStream: boolean, gate?: CallGate) => void;

/** The tick: a quarter of the shortest timeout, between 10 ms and 1 s. */
function tickMs(opts: H2ServerOptions): number {
  const timeouts = [
    opts.prefaceTimeoutMs ?? DEFAULT_H2_LIMITS.prefaceTimeoutMs,
    opts.settingsAckTimeoutMs ?? DEFAULT_H2_LIMITS.settingsAckTimeoutMs,
    opts.headersTimeoutMs ?? DEFAULT_H2_LIMITS.headersTimeoutMs,
    opts.idleTimeoutMs ?? DEFAULT_H2_LIMITS.idleTimeoutMs,
    opts.streamIdleTimeoutMs ?? DEFAULT_H2_LIMITS.streamIdleTimeoutMs,
  ].filter((t) => t > 0);
  return Math.max(10, Math.min(1_000, Math.floor(Math.min(...timeouts) / 4)));
}

export class H2Server {
  /** The request bytes every connection holds together (INFERMESH_H2_MAX_REQUEST_BYTES). */
  readonly requestBudget: ByteBudget;
  /** The answer bytes waiting for clients, every connection together (INFERMESH_H2_MAX_RESPONSE_BYTES). */
  readonly responseBudget: ByteBudget;
  private readonly server: net.Server;
  private readonly conns = new Set<H2Connection>();
  private readonly ticker: NodeJS.Timeout;
  private stopTls: (() => void) | undefined;

  constructor(onStream: OnServerStream, opts: H2ServerOptions = {}) {
    this.requestBudget = opts.requestBudget ?? new ByteBudget(opts.maxRequestBytes ?? DEFAULT_H2_LIMITS.maxRequestBytes);
    this.responseBudget = opts.responseBudget ?? new ByteBudget(opts.maxResponseBytes ?? DEFAULT_H2_LIMITS.maxResponseBytes);
    const connOpts: H2ConnectionOptions = { ...opts, requestBudget: this.requestBudget, responseBudget: this.responseBudget };
    const accept = (socket: net.Socket, gate?: CallGate) => {
      const conn = new H2Connection(socket, 'server', gate ? (stream, headers, endStream) => onStream(stream, headers, endStream, gate) : onStream, connOpts);
      this.conns.add(conn);
      let aged: NodeJS.Timeout | undefined;
      const age = opts.maxConnectionAgeMs ?? 0;
      if (age > 0) aged = setTimeout(() => conn.close(), age * (0.9 + Math.random() * 0.2)).unref();
      conn.onClose = () => {
        this.conns.delete(conn);
        clearTimeout(aged);
      };
    };
    const t = opts.tls;
    if (t) {
      const server = tls.createServer({ ...t.source.contextOptions(), ALPNProtocols: ['h2'], requestCert: t.requestCert, rejectUnauthorized: t.requestCert }, (socket) => {
        // A client that did not ask for h2 (no ALPN at all) is not spoken to; one that offered only
        // other protocols already failed the handshake (no_application_protocol).
        if (socket.alpnProtocol !== 'h2') return void socket.destroy();
        if (t.acceptPeer && !t.acceptPeer(socket)) return void socket.destroy();
        accept(socket, t.callsOf?.(socket));
      });
      // Handshakes that fail (an unknown CA, no client certificate) are the client's problem.
      server.on('tlsClientError', () => undefined);
      // Rotation: new connections get the new material; open ones keep theirs until they end.
      this.stopTls = t.source.onChange(() => server.setSecureContext(t.source.contextOptions()));
      this.server = server;
    } else {
      this.server = net.createServer(accept);
    }
    this.ticker = setInterval(() => {
      const now = Date.now();
      for (const c of this.conns) c.tick(now);
    }, tickMs(opts));
    this.ticker.unref();
  }

  /** Connections open now. */
  get connections(): number {
    return this.conns.size;
  }

  /** Listens on `host:port` (0: any free port) and resolves to the bound port. */
  listen(host: string, port: number): Promise<number> {
    return listenOn(this.server, host, port);
  }

  /**
   * Stops taking connections and streams (GOAWAY to every client), waits for the streams in
   * flight up to `timeoutMs`, then closes what is left. Resolves true when all finished in time.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.server.close();
    this.stopTls?.();
    // A client that never answers the PING of the GOAWAY's notice holds its connection for half
    // the budget at most, not all of it (nor INFERMESH_H2_GOAWAY_NOTICE_TIMEOUT_MS): the other
    // half is left for the streams that crossed the GOAWAY to finish.
    for (const c of this.conns) c.close(timeoutMs / 2);
    const until = Date.now() + timeoutMs;
    while (this.conns.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const clean = this.conns.size === 0;
    for (const c of [...this.conns]) c.destroy();
    clearInterval(this.ticker);
    return clean;
  }
}

/** Has `server` listen on `host:port` (0: any free port); resolves to the bound port, rejects with a failure to bind. */
export function listenOn(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}
