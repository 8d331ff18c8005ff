// A listening socket whose connections are H2Connections (server side), tracked so that they can
// be aged out and drained.
import net from 'node:net';
import { H2Connection, type H2ConnectionOptions, type H2Stream, type Header } from './connection';

/** Options of an H2Server. */
export interface H2ServerOptions extends H2ConnectionOptions {
  /**
   * Close each client connection after about this long (±10%, so clients do not all reconnect at
   * once): GOAWAY, then the connection ends when its calls in flight have finished. Behind a
   * Kubernetes Service this is what spreads long-lived gRPC clients over replicas added later.
   * 0 (the default): never.
   */
  maxConnectionAgeMs?: number;
}

export class H2Server {
  private readonly server: net.Server;
  private readonly conns = new Set<H2Connection>();

  constructor(onStream: (stream: H2Stream, headers: Header[], endStream: boolean) => void, opts: H2ServerOptions = {}) {
    // Clients that keep a connection without using it must not hold memory: idle for 10 min, it ends.
    const connOpts: H2ConnectionOptions = { idleTimeoutMs: 600_000, ...opts };
    this.server = net.createServer((socket) => {
      const conn = new H2Connection(socket, 'server', onStream, connOpts);
      this.conns.add(conn);
      let aged: NodeJS.Timeout | undefined;
      const age = opts.maxConnectionAgeMs ?? 0;
      if (age > 0) aged = setTimeout(() => conn.close(), age * (0.9 + Math.random() * 0.2)).unref();
      conn.onClose = () => {
        this.conns.delete(conn);
        clearTimeout(aged);
      };
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
    for (const c of this.conns) c.close();
    const until = Date.now() + timeoutMs;
    while (this.conns.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const clean = this.conns.size === 0;
    for (const c of [...this.conns]) c.destroy();
    return clean;
  }
}
