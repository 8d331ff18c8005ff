// The listening clock: wall time less the stretches the event loop was away.
import { ListeningClock, listeningTickMs } from '../../../lib/listening-clock';

describe('ListeningClock', () => {
  let wall: number;
  const clock = () => new ListeningClock(100, () => wall);
  beforeEach(() => {
    wall = 1_000_000;
  });

  it('follows the wall clock while it is read at least every two ticks', () => {
    const c = clock();
    const start = c.now();
    for (const step of [100, 150, 200, 60, 199]) {
      wall += step;
      c.now();
    }
    expect(c.now() - start).toBe(709);
    expect(c.lostMs).toBe(0);
  });

  it('leaves out a gap of more than two ticks, but for the tick it would have waited anyway', () => {
    const c = clock();
    const start = c.now();
    wall += 5_000;
    expect(c.now() - start).toBe(100);
    expect(c.lostMs).toBe(4_900);
    wall += 100;
    expect(c.now() - start).toBe(200);
    // Just over two ticks counts too.
    wall += 201;
    expect(c.now() - start).toBe(300);
    expect(c.lostMs).toBe(5_001);
  });

  it('never runs backwards when the wall clock is stepped back', () => {
    const c = clock();
    wall += 100;
    const before = c.now();
    wall -= 60_000;
    expect(c.now()).toBe(before);
    wall += 60_050;
    expect(c.now()).toBe(before + 50);
    expect(c.lostMs).toBe(0);
  });

  it('started, reads itself every tick, so an idle loop loses nothing and a held-up one loses the hold-up', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    try {
      const c = new ListeningClock(100).start();
      const start = c.now();
      jest.advanceTimersByTime(10_000);
      expect(c.now() - start).toBe(10_000);
      expect(c.lostMs).toBe(0);
      // The loop held up for 3 s: the wall clock moves, no timer runs; the next tick finds a gap of
      // 3.1 s, of which one tick would have passed anyway.
      jest.setSystemTime(Date.now() + 3_000);
      jest.advanceTimersByTime(100);
      expect(c.lostMs).toBe(3_000);
      expect(c.now() - start).toBe(10_100);
      c.stop();
      expect(jest.getTimerCount()).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('ticks at a tenth of the TTL it serves, at least 50 ms', () => {
    expect(listeningTickMs(5_000)).toBe(500);
    expect(listeningTickMs(1_500)).toBe(150);
    expect(listeningTickMs(100)).toBe(50);
  });
});
