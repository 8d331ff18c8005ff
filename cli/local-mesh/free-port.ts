import net from 'node:net';

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether another listener holds `port` on `host` (binding it fails with EADDRINUSE). */
export function portTaken(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(true) : reject(err)));
    srv.listen(port, host, () => srv.close(() => resolve(false)));
  });
}

/**
 * Starts a restarted service on `port`, where its peers know it, with `start`. Only when that port
 * is really taken (another process bound it meanwhile) does it start on any free port (`start(0)`),
 * saying so with `onLog`; any other failure (the service crashed or was killed while starting) is
 * the start's, left to the supervisor to retry on the same port.
 */
export async function startOnPort<T>(label: string, port: number, start: (port: number) => Promise<T>, onLog: (line: string) => void, host = '127.0.0.1'): Promise<T> {
  try {
    return await start(port);
  } catch (err) {
    if (!(await portTaken(port, host))) throw err;
    onLog(`${label}: port ${port} is taken by another process; starting on another port (routers learn it from the heartbeats)`);
    return start(0);
  }
}
