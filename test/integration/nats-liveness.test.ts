// NatsLiveness (lib/nats.ts) against a real nats-server that hangs (SIGSTOP): its round trip,
// late past the timeout, says NATS is away long before nats.js' own pings would; a connection
// nats.js gives up on (stale, then disconnected) says so whatever the probe; and an answer, or the
// reconnect, says it is back.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { silentLogger } from '../../lib/log';
import { NatsLiveness } from '../../lib/nats';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

describe('NatsLiveness', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let nc: NatsConnection | undefined;
  let liveness: NatsLiveness | undefined;
  let stopped = false;
  const pause = () => {
    process.kill(nats.child.pid!, 'SIGSTOP');
    stopped = true;
  };
  const resume = () => {
    if (stopped) process.kill(nats.child.pid!, 'SIGCONT');
    stopped = false;
  };

  beforeAll(async () => {
    nats = await startTestNats();
  });
  afterEach(async () => {
    resume();
    liveness?.stop();
    await nc?.close();
  });
  afterAll(async () => {
    await nats?.cleanup();
  });

  it('says NATS is away within the probe interval and timeout when it hangs, and back when it answers', async () => {
    // nats.js' own pings as the services set them: a hung server is noticed by them after 20 s or more.
    nc = await connect({ servers: nats.url, pingInterval: 10_000 });
    const changes: { available: boolean; afterMs: number }[] = [];
    let since = Date.now();
    liveness = new NatsLiveness(nc, { natsProbeIntervalMs: 100, natsProbeTimeoutMs: 200 }, silentLogger, (available) => changes.push({ available, afterMs: Date.now() - since })).start();
    await new Promise((r) => setTimeout(r, 500));
    expect(changes).toEqual([]);
    expect(liveness.available).toBe(true);

    since = Date.now();
    pause();
    await waitFor('NATS seen away', () => changes.length === 1, 5_000, 10);
    expect(changes[0]!.available).toBe(false);
    // At most an interval and a timeout, with room for a busy machine.
    expect(changes[0]!.afterMs).toBeLessThan(1_500);
    // Away for as long as it hangs, whatever the pace of the probes.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(changes).toHaveLength(1);
    expect(liveness.available).toBe(false);

    since = Date.now();
    resume();
    await waitFor('NATS seen back', () => changes.length === 2, 5_000, 10);
    expect(changes[1]).toMatchObject({ available: true });
    expect(changes[1]!.afterMs).toBeLessThan(1_000);
    expect(nc.isClosed()).toBe(false);
  });

  it('does not take a stall of its own loop past the timeout for NATS away (the answer queued meanwhile is read first)', async () => {
    nc = await connect({ servers: nats.url, pingInterval: 10_000 });
    const changes: boolean[] = [];
    liveness = new NatsLiveness(nc, { natsProbeIntervalMs: 50, natsProbeTimeoutMs: 100 }, silentLogger, (available) => changes.push(available)).start();
    // Each time just after a probe is sent (the same period, set after it: the next timer of the
    // same phase), the loop is held past the timeout, after the poll phase: on its next turn its
    // timers run before it reads the answer that waits on its socket.
    const stalls = setInterval(() => setImmediate(() => {
      const until = Date.now() + 400;
      while (Date.now() < until) {
        // busy: a long GC pause, a throttled container
      }
    }), 50);
    await new Promise((r) => setTimeout(r, 3_000));
    clearInterval(stalls);
    expect(changes).toEqual([]);
  });

  it('takes a connection nats.js found stale for NATS away until the reconnect', async () => {
    // Pings every 100 ms, one outstanding at most: nats.js calls the connection stale within a few
    // hundred ms. The probe is made too slow to notice first.
    nc = await connect({ servers: nats.url, pingInterval: 100, maxPingOut: 1, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    const changes: boolean[] = [];
    const statuses: string[] = [];
    void (async () => {
      for await (const s of nc!.status()) statuses.push(s.type);
    })();
    liveness = new NatsLiveness(nc, { natsProbeIntervalMs: 60_000, natsProbeTimeoutMs: 60_000 }, silentLogger, (available) => changes.push(available)).start();
    pause();
    await waitFor('the connection stale, and NATS seen away', () => changes.length === 1, 10_000, 10);
    expect(statuses).toContain('staleConnection');
    expect(changes).toEqual([false]);
    resume();
    await waitFor('the reconnect, and NATS seen back', () => changes.length === 2, 20_000, 10);
    expect(changes).toEqual([false, true]);
    expect(statuses).toContain('reconnect');
  });
});
