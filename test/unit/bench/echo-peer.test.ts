// The `heavy` table's third row: onnxruntime in the benchmark's process with a round trip to a real
// echo process after each run (bench/echo-peer.ts, bench/in-process.ts measureSession's `between`).
import path from 'node:path';
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
    await expect(echo.roundTrip()).rejects.toThrow('echo peer closed');
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

  it('makes one round trip per run', async () => {
    const echo = await EchoPeer.start();
    try {
      const r = await measureSession(MNIST, feeds, ['probabilities'], 1, 100, 300, () => echo.roundTrip());
      const measured = r.runsPerSecond * 0.3;
      expect(measured).toBeGreaterThan(0);
      // Every run, those of the warm-up and of the window, was followed by its round trip.
      expect(echo.roundTrips).toBeGreaterThanOrEqual(measured);
    } finally {
      await echo.close();
    }
  });

  it('counts what runs between in runs per second', async () => {
    const r = await measureSession(MNIST, feeds, ['probabilities'], 1, 50, 400, () => new Promise((resolve) => setTimeout(resolve, 20)));
    // 20 ms after every run: at most 400 / 20 runs end in the window, however fast the runs.
    expect(r.runsPerSecond * 0.4).toBeLessThanOrEqual(21);
    expect(r.runsPerSecond).toBeGreaterThan(0);
  });
});
