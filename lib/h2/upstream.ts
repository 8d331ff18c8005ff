// A few client connections to one upstream (a pod, or a service's own grpc-js server), used in
// turn and reopened when they fail or go away.
import net from 'node:net';
import { H2Connection, type H2ConnectionOptions, type H2Stream, type Header } from './connection';

export class H2Upstream {
  private readonly conns: (H2Connection | undefined)[];
  private next = 0;
  private closed = false;
  private readonly readBuffer = Buffer.allocUnsafe(64 * 1024);

  /** `address`: host:port; `connections`: how many HTTP/2 connections to spread streams over. */
  constructor(readonly address: string, connections: number, private readonly opts: H2ConnectionOptions = {}) {
    this.conns = new Array(Math.max(1, connections)).fill(undefined);
  }

  private connect(i: number): H2Connection {
    const colon = this.address.lastIndexOf(':');
    const host = this.address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    // Read into one buffer per upstream rather than a fresh one per read (net's `onread`), which
    // skips the stream machinery and the GC of a buffer per read; the connection copies out what
    // it keeps, since the buffer is reused.
    let conn: H2Connection | undefined;
    const socket = net.connect({
      host,
      port: Number(this.address.slice(colon + 1)),
      onread: { buffer: this.readBuffer, callback: (n: number, buf: Uint8Array) => {
          conn?.receive(Buffer.from(buf.buffer, buf.byteOffset, n));
          return true;
        },
      },
    });
    conn = new H2Connection(socket, 'client', undefined, { ...this.opts, externalRead: true });
    const forget = () => {
      if (this.conns[i] === conn) this.conns[i] = undefined;
    };
    conn.onClose = forget;
    conn.onGoaway = forget;
    socket.unref();
    this.conns[i] = conn;
    return conn;
  }

  /** Opens a stream on the next connection that can take one. Throws when none can. */
  request(headers: readonly Header[], endStream = false): H2Stream {
    if (this.closed) throw new Error(`connections to ${this.address} are closed`);
    for (let tries = 0; tries < this.conns.length; tries++) {
      const i = this.next++ % this.conns.length;
      let c = this.conns[i];
      if (!c || !c.canRequest) {
        if (c && !c.closed && !c.goingAway) continue; // at its stream limit
        c = this.connect(i);
      }
      return c.request(headers, endStream);
    }
    throw new Error(`every connection to ${this.address} is at its stream limit`);
  }

  /** Closes every connection; streams in flight on them end with CONNECTION_LOST. */
  close(): void {
    this.closed = true;
    for (const c of this.conns) c?.destroy();
  }
}
