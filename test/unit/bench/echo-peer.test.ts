// The `heavy` table's third row: onnxruntime in the benchmark's process with a round trip to a real
// echo process after each run (bench/echo-peer.ts, bench/in-process.ts measureSession's `between`).
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { EchoPeer } from '../../../bench/echo-peer';
import { measureSession } from '../../../bench/in-process';
import { PIXELS } from '../../../tools/models/mnist-data';

const MNIST = path.resolve(__dirname, '../../../models/mnist.onnx');

describe('EchoPeer', () => {
  it('answers each byte from another process, one round trip at a time', async () => {
    const echo = await EchoPeer.start();
    try {
      for (let i = 0; i < 50; i++) await echo.roundTrip();
      expect(echo.roundTrips).toBe(50);
      const first = echo.roundTrip();
      await expect(echo.roundTrip()).rejects.toThrow('already under way');
      await first;
      expect(echo.roundTrips).toBe(51);
    } finally {
      await echo.close();
    }
    await expect(echo.roundTrip()).rejects.toThrow(/^echo peer closed$/);
  });

  it('a round trip under way when the peer is closed fails', async () => {
    const echo = await EchoPeer.start();
    const pending = expect(echo.roundTrip()).rejects.toThrow(/^echo peer closed$/);
    await echo.close();
    await pending;
  });

  it('a round trip to a peer that died fails instead of waiting forever', async () => {
    const echo = await EchoPeer.start();
    try {
      (echo as unknown as { child: { kill(): void } }).child.kill();
      await expect(echo.roundTrip()).rejects.toThrow(/echo peer closed the connection|ECONNRESET|EPIPE/);
    } finally {
      await echo.close();
    }
  });
});

describe('measureSession with a round trip after each run', () => {
  const feeds = [{ input: { data: new Float32Array(PIXELS), dims: [1, PIXELS] } }];

  it('makes one round trip after every run, in the window as in the warm-up', async () => {
    const echo = await EchoPeer.start();
    try {
      const started = performance.now();
      const trips: number[] = [];
      const r = await measureSession(MNIST, feeds, ['probabilities'], 1, 100, 300, async () => {
        trips.push(performance.now() - started);
        await echo.roundTrip();
      });
      const measured = Math.round(r.runsPerSecond * 0.3);
      expect(measured).toBeGreaterThan(0);
      expect(echo.roundTrips).toBe(trips.length);
      // Every run of the window and of the warm-up before it was followed by a trip, so there are
      // more trips than runs in the window; trips after only some runs (or only in the warm-up,
      // leaving the window's runs quicker and more numerous) would leave fewer.
      expect(trips.length).toBeGreaterThan(measured);
    } finally {
      await echo.close();
    }
  });

  it('counts what runs between in runs per second, not in the latencies', async () => {
    const r = await measureSession(MNIST, feeds, ['probabilities'], 1, 50, 400, () => new Promise((resolve) => setTimeout(resolve, 20)));
    // 20 ms after every run: at most 400 / 20 runs end in the window, however fast the runs.
    expect(r.runsPerSecond * 0.4).toBeLessThanOrEqual(21);
    expect(r.runsPerSecond).toBeGreaterThan(0);
    // A batch-1 MNIST run takes well under a millisecond; with the 20 ms counted it could not.
    expect(r.p50Ms).toBeLessThan(20);
  });
});
