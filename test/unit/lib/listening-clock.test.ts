// The listening clock: silences judged on what the event loop has read, a stall caught up on first.
import { ListeningClock, listeningTickMs, plainHeardClock } from '../../../lib/listening-clock';

describe('ListeningClock', () => {
  let t: number;
  /** Functions waiting for the loop's next read of its sockets: run by reads(). */
  let pending: (() => void)[];
  const reads = () => {
    for (const fn of pending.splice(0)) fn();
  };
  const clock = () => new ListeningClock(100, () => t, (fn) => pending.push(fn));
  beforeEach(() => {
    t = 5_000;
    pending = [];
  });

  it('has heard everything up to now while it is read at least every two ticks', () => {
    const c = clock();
    for (const step of [100, 150, 200, 60, 199]) {
      t += step;
      expect(c.heardUntil()).toBe(t);
      expect(c.now()).toBe(t);
    }
    expect(c.catchingUp).toBe(false);
    expect(c.stalls).toBe(0);
  });

  it('after a gap of more than two ticks, has heard only up to where it began, until the loop read its sockets', () => {
    const c = clock();
    t += 100;
    c.now();
    const before = t;
    t += 5_000;
    // A heartbeat read now is heard now; a sweep now judges on what was read before the stall.
    expect(c.now()).toBe(t);
    expect(c.heardUntil()).toBe(before);
    expect(c.catchingUp).toBe(true);
    t += 3;
    expect(c.heardUntil()).toBe(before);
    reads();
    expect(c.catchingUp).toBe(false);
    expect(c.heardUntil()).toBe(t);
    expect(c.stalls).toBe(1);
    // Just over two ticks is a stall too; exactly two is not.
    t += 200;
    expect(c.heardUntil()).toBe(t);
    t += 201;
    expect(c.heardUntil()).toBe(t - 201);
    reads();
    expect(c.stalls).toBe(2);
  });

  it('bounds a dead pod\'s stay by the TTL and the gap under way, however slow the loop stays', () => {
    const c = clock();
    const lastHeartbeat = c.now();
    const ttl = 1_000;
    // Every gap three ticks long, the sockets read after each.
    let forgottenAt: number | undefined;
    while (forgottenAt === undefined) {
      t += 300;
      if (c.heardUntil() - lastHeartbeat > ttl) forgottenAt = t;
      reads();
    }
    // Judged a gap behind, and found at the first reading after: at most two gaps past the TTL,
    // where a running total of stalls kept it three times the TTL here.
    expect(forgottenAt - lastHeartbeat).toBeLessThanOrEqual(ttl + 2 * 300);
    expect(forgottenAt - lastHeartbeat).toBeGreaterThan(ttl);
  });

  it('started, reads itself every tick, so an idle loop never looks stalled and a held-up one does', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    try {
      const c = new ListeningClock(100, () => Date.now()).start();
      jest.advanceTimersByTime(10_000);
      expect(c.stalls).toBe(0);
      const before = Date.now();
      // The loop held up for 3 s: the clock moves, no timer runs.
      jest.setSystemTime(before + 3_000);
      jest.advanceTimersByTime(100);
      expect(c.stalls).toBe(1);
      expect(c.heardUntil()).toBe(before);
      // The immediate that follows the loop's read of its sockets.
      jest.runOnlyPendingTimers();
      expect(c.heardUntil()).toBe(Date.now());
      c.stop();
      expect(jest.getTimerCount()).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('the plain clock judges on its one clock alone', () => {
    const p = plainHeardClock(() => t);
    t += 5_000;
    expect(p.heardUntil()).toBe(t);
    expect(p.now()).toBe(t);
  });

  it('ticks at a tenth of the TTL it serves, at least 50 ms', () => {
    expect(listeningTickMs(5_000)).toBe(500);
    expect(listeningTickMs(1_500)).toBe(150);
    expect(listeningTickMs(100)).toBe(50);
  });
});
