import net from 'node:net';
import { badPortsBetween, fetchable } from '../../lib/fetch-ports';

/**
 * Ports handed out below Linux's ephemeral range (32768-60999 by default), where the kernel never
 * picks a port for a listener on port 0 or for an outgoing connection. A port the OS picked from
 * that range and released could be taken by any such socket (a pod's listener, a client's
 * connection) before its new owner binds it.
 */
const LOW_PORTS = { from: 10_000, to: 32_767 };

/** The Fetch standard's bad ports inside LOW_PORTS (only 10080), ascending: lowPort steps over them. */
const LOW_BAD_PORTS = badPortsBetween(LOW_PORTS.from, LOW_PORTS.to);

/**
 * The port in LOW_PORTS that `random` (in [0, 1)) draws, evenly over the ports fetch can reach: the
 * bad ones are left out of the draw, not redrawn.
 */
export function lowPort(random: number): number {
  let port = LOW_PORTS.from + Math.floor(random * (LOW_PORTS.to - LOW_PORTS.from + 1 - LOW_BAD_PORTS.length));
  for (const bad of LOW_BAD_PORTS) if (port >= bad) port++;
  return port;
}

function bindable(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, '127.0.0.1', () => {
      const bound = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(bound));
    });
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, for a process that binds it later: a random
 * one below the ephemeral range (see LOW_PORTS), else one the OS picks; never one that browsers and
 * fetch() refuse (fetchable), since a console or REST address may be handed out on it. `random`
 * draws the candidates (tests pass their own).
 */
export async function freePort(random: () => number = Math.random): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await bindable(lowPort(random()));
    if (port !== undefined) return port;
  }
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await bindable(0);
    if (port !== undefined && fetchable(port)) return port;
  }
  throw new Error('no free TCP port on 127.0.0.1');
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
