import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { BusyPoll } from '../../../lib/busy-poll';

/** The share of `ms` this thread's event loop spent running rather than asleep waiting for events. */
async function busyShareOver(ms: number): Promise<number> {
  const before = performance.eventLoopUtilization();
  await sleep(ms);
  return performance.eventLoopUtilization(before).utilization;
}

/**
 * The least busy share of three windows of `ms`: a loop that polls reads near 1 in every window, one
 * that sleeps near 0 in most, but a loaded machine (a jest worker beside others on two cores) can
 * fill one window with other work of the process.
 */
async function leastBusyShareOver(ms: number): Promise<number> {
  let least = 1;
  for (let i = 0; i < 3 && least >= 0.5; i++) least = Math.min(least, await busyShareOver(ms));
  return least;
}

/** Lets the loop turn twice: a poll's tick queued before this call has run, and looked at its clock, by then. */
async function turns(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}

describe('BusyPoll', () => {
  // The window is judged on a clock the test moves, so that a busy machine, which can stretch any
  // sleep past the window, changes neither what the window covers nor when it ends.
  let clockMs: number;
  const clock = (): number => clockMs;
  beforeEach(() => {
    clockMs = 1_000;
  });

  it('keeps the event loop turning for its window after a touch, then lets it sleep', async () => {
    const poll = new BusyPoll(300_000, undefined, clock);
    try {
      poll.touch();
      expect(poll.active).toBe(true);
      // Asleep in epoll_wait the loop would be idle almost all of this; polling, it never is.
      expect(await busyShareOver(150)).toBeGreaterThan(0.8);
      clockMs += 299;
      await turns();
      expect(poll.active).toBe(true);
      clockMs += 1;
      await turns();
      expect(poll.active).toBe(false);
      expect(await leastBusyShareOver(150)).toBeLessThan(0.5);
    } finally {
      poll.stop();
    }
  });

  it('a touch within the window extends it', async () => {
    const poll = new BusyPoll(200_000, undefined, clock);
    try {
      poll.touch();
      clockMs += 120;
      await turns();
      poll.touch();
      clockMs += 120;
      await turns();
      // 240 ms after the first touch, 120 ms after the second.
      expect(poll.active).toBe(true);
      clockMs += 79;
      await turns();
      expect(poll.active).toBe(true);
      clockMs += 1;
      await turns();
      expect(poll.active).toBe(false);
    } finally {
      poll.stop();
    }
  });

  it('never polls with a window of 0', async () => {
    const poll = new BusyPoll(0);
    poll.touch();
    expect(poll.active).toBe(false);
    expect(await leastBusyShareOver(100)).toBeLessThan(0.5);
  });

  it('does not start while its owner is busy, and stops on the first turn after the owner gets busy', async () => {
    let quiet = false;
    const poll = new BusyPoll(300_000, () => quiet);
    try {
      poll.touch();
      expect(poll.active).toBe(false);
      quiet = true;
      poll.touch();
      expect(poll.active).toBe(true);
      quiet = false;
      await turns();
      expect(poll.active).toBe(false);
      expect(await leastBusyShareOver(100)).toBeLessThan(0.5);
    } finally {
      poll.stop();
    }
  });

  it('stops for good once stopped', async () => {
    const poll = new BusyPoll(300_000);
    poll.touch();
    poll.stop();
    await turns();
    expect(poll.active).toBe(false);
    poll.touch();
    expect(poll.active).toBe(false);
  });
});
