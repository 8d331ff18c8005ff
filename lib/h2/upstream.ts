// A few client connections to one upstream (a pod, or a service's own grpc-js server), used in
// turn and replaced when they break, go away (GOAWAY either way) or run out of stream ids. When
// every one is at the upstream's limit of concurrent streams (a door's is 128), another is opened,
// as Envoy's HTTP/2 pool does, up to maxConnections.
import net from 'node:net';
import tls from 'node:tls';
import { H2Connection, type H2ConnectionOptions, type H2Stream, type Header } from './connection';

/** Settings of an H2Upstream: those of its connections, and when to replace one. */
export interface H2UpstreamOptions extends H2ConnectionOptions {
  /**
   * Replace a connection once it has sent this many RST_STREAMs (500). nghttp2 (node:http2, so
   * grpc-js) ends a session whose peer resets more than 1,000 streams in a burst (33 a second
   * after that; its CVE-2023-44487 guard), which would fail every call on it: the connection that
   * carries clients' cancels is replaced well before that, and only its own streams' resets
   * still go on it.
   */
  maxResetsPerConnection?: number;
  /** Connections opened at most when all are at the upstream's stream limit (8 times those asked for). */
  maxConnections?: number;
  /** Connect over TLS (ALPN h2; a server that does not pick h2 is hung up on); unset (the default): plain h2c. */
  tls?: H2ClientTls;
}

/** TLS of an H2Upstream's connections. */
export interface H2ClientTls {
  /** The secure context (CA, and the client certificate for mutual TLS) in force: read for each new connection, so a rotation reaches the next one. */
  context: () => tls.SecureContext;
  /**
   * Judges the server's certificate once its chain is verified against the CA (an Error refuses
   * it); default: node's host name check against the address. The caller sees the peer here.
   */
  checkServerIdentity?: (host: string, cert: tls.PeerCertificate) => Error | undefined;
}

/**
 * Where an H2Upstream connects: `host:port` over TCP, or `{ path }`, a Unix domain socket (a
 * service's own grpc-js server behind its front door, lib/grpc/server.ts listenBehindDoor). Only
 * code names a socket: an address read from the network (a pod's heartbeat) is a string, and a
 * string is always host:port, so no peer can point a connection at a local socket.
 */
export type UpstreamAddress = string | { readonly path: string };

export class H2Upstream {
  /** Names the upstream in messages: host:port, or unix:<path>. */
  readonly address: string;
  /** The `:authority` of its requests: host:port, or localhost over a socket (as grpc-js's own clients send for unix: targets). */
  readonly authority: string;
  private readonly socketPath: string | undefined;
  private readonly conns: (H2Connection | undefined)[];
  /** Connections replaced while streams were still open on them; they end once those have. */
  private readonly retiring = new Set<H2Connection>();
  private readonly maxResets: number;
  private readonly maxConnections: number;
  private next = 0;
  private closed = false;
  private readonly readBuffer = Buffer.allocUnsafe(64 * 1024);

  /**
   * `target`: host:port or a socket's path; `connections`: how many HTTP/2 connections to spread
   * streams over; `opts`: their settings (`maxStreamId` bounds how many streams each carries before
   * it is replaced). TLS is for TCP only: a socket is this host's, and its directory's mode guards it.
   */
  constructor(target: UpstreamAddress, connections: number, private readonly opts: H2UpstreamOptions = {}) {
    if (typeof target === 'string') {
      this.address = this.authority = target;
    } else {
      if (opts.tls) throw new Error(`TLS to the Unix socket ${target.path} is not supported`);
      this.socketPath = target.path;
      this.address = `unix:${target.path}`;
      this.authority = 'localhost';
    }
    this.conns = new Array(Math.max(1, connections)).fill(undefined);
    this.maxResets = opts.maxResetsPerConnection ?? 500;
    this.maxConnections = Math.max(this.conns.length, opts.maxConnections ?? 8 * this.conns.length);
  }

  private connect(i: number): H2Connection {
    // Read into one buffer per upstream rather than a fresh one per read (net's `onread`), which
    // skips the stream machinery and the GC of a buffer per read; the connection copies out what
    // it keeps, since the buffer is reused.
    let conn: H2Connection | undefined;
    const onread = { buffer: this.readBuffer, callback: (n: number, buf: Uint8Array) => {
        conn?.receive(Buffer.from(buf.buffer, buf.byteOffset, n));
        return true;
      },
    };
    const socket = this.socketPath !== undefined ? net.connect({ path: this.socketPath, onread }) : this.connectTcp(onread);
    const c = new H2Connection(socket, 'client', undefined, { ...this.opts, externalRead: true });
    conn = c;
    c.onClose = () => {
      if (this.conns[i] === c) this.conns[i] = undefined;
      this.retiring.delete(c);
    };
    c.onGoaway = () => this.retire(i, c);
    socket.unref();
    this.conns[i] = c;
    return c;
  }

  /** A TCP connection to host:port, over TLS when the options ask for it. */
  private connectTcp(onread: net.OnReadOpts): net.Socket {
    const colon = this.address.lastIndexOf(':');
    const host = this.address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    const target = { host, port: Number(this.address.slice(colon + 1)), onread };
    const t = this.opts.tls;
    if (!t) return net.connect(target);
    const secure = tls.connect({
      ...target,
      secureContext: t.context(),
      ALPNProtocols: ['h2'],
      servername: net.isIP(host) ? undefined : host,
      ...(t.checkServerIdentity ? { checkServerIdentity: t.checkServerIdentity } : {}),
    });
    secure.once('secureConnect', () => {
      if (secure.alpnProtocol !== 'h2') secure.destroy(new Error(`${this.address} did not negotiate h2`));
    });
    return secure;
  }

  /** Takes `c` out of slot `i`: the next stream there opens a new connection; `c` ends once its streams have. */
  private retire(i: number, c: H2Connection): void {
    if (this.conns[i] === c) this.conns[i] = undefined;
    if (!c.closed) this.retiring.add(c);
  }

  /** Opens a stream on the next connection that can take one. Throws when none can. */
  request(headers: readonly Header[], endStream = false): H2Stream {
    if (this.closed) throw new Error(`connections to ${this.address} are closed`);
    for (let tries = 0; tries < this.conns.length; tries++) {
      const i = this.next++ % this.conns.length;
      let c = this.conns[i];
      // Gracefully: its streams finish, new ones go to the connection that replaces it.
      if (c && c.resetsSent >= this.maxResets) c.close();
      if (!c || !c.canRequest) {
        if (c && !c.closed && !c.goingAway) continue; // at the peer's limit of concurrent streams
        // Closed, going away (GOAWAY either way), or out of stream ids (it sent GOAWAY itself).
        if (c) this.retire(i, c);
        c = this.connect(i);
      }
      return c.request(headers, endStream);
    }
    // Every connection is at the upstream's limit of concurrent streams: one more, if allowed.
    if (this.conns.length < this.maxConnections) {
      this.conns.push(undefined);
      return this.connect(this.conns.length - 1).request(headers, endStream);
    }
    throw new Error(`every connection to ${this.address} is at its stream limit`);
  }

  /** Closes every connection; streams in flight on them end with CONNECTION_LOST. */
  close(): void {
    this.closed = true;
    for (const c of this.conns) c?.destroy();
    for (const c of [...this.retiring]) c.destroy();
    this.retiring.clear();
  }

  /** Connections open now, those being replaced included. */
  get connections(): number {
    let n = this.retiring.size;
    for (const c of this.conns) if (c && !c.closed) n++;
    return n;
  }
}
