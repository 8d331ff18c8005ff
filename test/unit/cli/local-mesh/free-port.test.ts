// A restarted pod's port (cli/local-mesh/free-port.ts) with real listeners: it comes back on its
// port, falls back to another only when that port is really taken (with a log line), and a start
// that fails for any other reason fails, to be retried on the same port.
import fs from 'node:fs';
import net from 'node:net';
import { freePort, lowPort, portTaken, startOnPort } from '../../../../cli/local-mesh/free-port';

describe('startOnPort', () => {
  it('starts on the port it is given when it can', async () => {
    const port = await freePort();
    const tried: number[] = [];
    const logs: string[] = [];
    expect(await startOnPort('pod-1', port, async (p) => (tried.push(p), p), (l) => logs.push(l))).toBe(port);
    expect(tried).toEqual([port]);
    expect(logs).toEqual([]);
  });

  it('a start that fails while its port is free fails: no silent move to another port', async () => {
    const port = await freePort();
    expect(await portTaken(port)).toBe(false);
    const tried: number[] = [];
    const logs: string[] = [];
    const killed = startOnPort('pod-1', port, async (p) => {
      tried.push(p);
      throw new Error('pod-1 exited (null) before listening');
    }, (l) => logs.push(l));
    await expect(killed).rejects.toThrow('pod-1 exited (null) before listening');
    expect(tried).toEqual([port]);
    expect(logs).toEqual([]);
  });

  it('moves to another port, saying so, only when another process holds its port', async () => {
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      expect(await portTaken(port)).toBe(true);
      const tried: number[] = [];
      const logs: string[] = [];
      const started = await startOnPort('pod-1', port, async (p) => {
        tried.push(p);
        if (p === port) throw new Error('listen EADDRINUSE');
        return 'on another port';
      }, (l) => logs.push(l));
      expect(started).toBe('on another port');
      expect(tried).toEqual([port, 0]);
      expect(logs).toEqual([`pod-1: port ${port} is taken by another process; starting on another port (routers learn it from the heartbeats)`]);
    } finally {
      holder.close();
    }
  });
});

describe('freePort', () => {
  it('hands out free ports below the ephemeral range, where no port-0 listener or outgoing connection can take them first', async () => {
    const [low] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of ports) {
      expect(port).toBeLessThan(low!);
      expect(await portTaken(port)).toBe(false);
    }
  });
});

describe('ports browsers and fetch refuse', () => {
  it('the draw covers every other port of the range evenly and never lands on a bad one', () => {
    const size = 32_767 - 10_000 + 1 - 1;
    const seen = new Set<number>();
    for (let i = 0; i < size; i++) seen.add(lowPort((i + 0.5) / size));
    expect(seen.size).toBe(size);
    expect(seen.has(10_080)).toBe(false);
    expect(seen.has(10_079)).toBe(true);
    expect(seen.has(10_081)).toBe(true);
    expect(Math.min(...seen)).toBe(10_000);
    expect(Math.max(...seen)).toBe(32_767);
    expect(lowPort(0.999_999_999)).toBe(32_767);
  });

  it('freePort draws through lowPort: the draw that once gave 10080 now gives the port after it', async () => {
    const size = 32_767 - 10_000 + 1 - 1;
    // The old draw, 10000 + floor(r × 22768), gave 10080 for this r; lowPort steps over it.
    const r = 80.5 / size;
    expect(10_000 + Math.floor(r * (size + 1))).toBe(10_080);
    const port = await freePort(() => r);
    // Unless 10081 is taken on this machine (then another draw of the same r, or an OS port), never 10080.
    expect(port).not.toBe(10_080);
    if (!(await portTaken(10_081))) expect(port).toBe(10_081);
  });
});
