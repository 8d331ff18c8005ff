// The session pool on real onnxruntime sessions in real worker threads: every run is answered with
// its own outputs and onnxruntime's run time, under every spinning policy, and the policies map to
// onnxruntime's session entries.
import type { Worker } from 'node:worker_threads';
import { SessionPool } from '../../../../services/inference/session-pool';
import type { SpinningPolicy } from '../../../../lib/config';
import { spinningConfig } from '../../../../services/inference/worker-protocol';
import { modelPath } from '../../../helpers/models';

jest.setTimeout(60_000);

const row = (seed: number) => Float32Array.from({ length: 4 }, (_, i) => seed * 4 + i);

async function runMany(pool: SessionPool, count: number): Promise<void> {
  const answers = await Promise.all(Array.from({ length: count }, (_, k) =>
    pool.run({ INPUT0: { type: 'float32', dims: [1, 4], data: row(k) }, INPUT1: { type: 'float32', dims: [1, 4], data: row(k) } }, ['OUTPUT0', 'OUTPUT1'])));
  answers.forEach((a, k) => {
    expect(a.sessionNs).toBeGreaterThan(0);
    // add_sub: OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1.
    expect(Array.from(a.outputs.OUTPUT0!.data as Float32Array)).toEqual(Array.from(row(k), (x) => 2 * x));
    expect(Array.from(a.outputs.OUTPUT1!.data as Float32Array)).toEqual([0, 0, 0, 0]);
  });
}

describe('SessionPool', () => {
  it.each<SpinningPolicy>(['on', 'runs', 'off'])('answers 2,000 concurrent runs on 2 workers each with its own outputs (spinning %s)', async (spinning) => {
    const pool = await SessionPool.create({ modelPath: modelPath('fixtures/add_sub_fp32.onnx'), providers: ['cpu'], workers: 2, intraOpThreads: 2, spinning });
    try {
      await runMany(pool, 2_000);
      // Runs one at a time too, each to a worker that waited idle.
      for (let k = 0; k < 50; k++) await runMany(pool, 1);
    } finally {
      await pool.close();
    }
  });

  it.each<[SpinningPolicy, string, string]>([['on', '1', '0'], ['runs', '1', '1'], ['off', '0', '0']])('gives onnxruntime the session entries of spinning %p', (policy, allow, stop) => {
    expect(spinningConfig(policy)).toEqual({ intra_op: { allow_spinning: allow }, inter_op: { allow_spinning: '0' }, force_spinning_stop: stop });
  });

  it('leaves the thread count to onnxruntime when none is given', async () => {
    const pool = await SessionPool.create({ modelPath: modelPath('fixtures/add_sub_fp32.onnx'), providers: ['cpu'] });
    try {
      expect(pool.intraOpThreads).toBe(0);
      await runMany(pool, 10);
    } finally {
      await pool.close();
    }
  });

  it('starts a worker again when one exits unasked, and serves on at full size', async () => {
    const pool = await SessionPool.create({ modelPath: modelPath('fixtures/heavy.onnx'), providers: ['cpu'], workers: 2, intraOpThreads: 1, respawn: { baseMs: 50, maxMs: 200 } });
    const workers = () => (pool as unknown as { seats: { thread: { worker: Worker } }[] }).seats.map((s) => s.thread.worker);
    const heavy = () => pool.run({ INPUT0: { type: 'float32', dims: [1, 1024], data: new Float32Array(1024).fill(0.01) } }, ['OUTPUT0']);
    try {
      await Promise.all([heavy(), heavy()]);
      // Terminated while idle (terminating a thread inside onnxruntime's run aborts the process).
      await workers()[0]!.terminate();
      expect(pool.size).toBe(1);
      const more = await Promise.all(Array.from({ length: 6 }, heavy));
      expect(more.every((r) => r.outputs.OUTPUT0!.dims[1] === 1024)).toBe(true);
      for (let i = 0; i < 100 && pool.size < 2; i++) await new Promise((r) => setTimeout(r, 20));
      expect({ size: pool.size, respawns: pool.respawns }).toEqual({ size: 2, respawns: 1 });
      // Every worker gone at once: runs wait for the restarts, and are answered.
      await Promise.all(workers().map((w) => w.terminate()));
      expect(pool.size).toBe(0);
      expect((await heavy()).outputs.OUTPUT0!.dims).toEqual([1, 1024]);
      expect(pool.respawns).toBeGreaterThanOrEqual(2);
    } finally {
      await pool.close();
    }
  });

  it('closes promptly and refuses runs after', async () => {
    const pool = await SessionPool.create({ modelPath: modelPath('fixtures/add_sub_fp32.onnx'), providers: ['cpu'], workers: 3, intraOpThreads: 1 });
    await runMany(pool, 10);
    await pool.close();
    expect(pool.size).toBe(0);
    await expect(pool.run({}, ['OUTPUT0'])).rejects.toThrow('model is unloading');
  });

  it('runs a run of up to the rows it timed under its limit on its own thread once enabled, with the same answers; a larger one, or one while a worker runs, goes to a worker', async () => {
    const pool = await SessionPool.create({ modelPath: modelPath('fixtures/add_sub_fp32.onnx'), providers: ['cpu'], workers: 1, intraOpThreads: 1 });
    const outs = ['OUTPUT0', 'OUTPUT1'];
    const rows = (n: number, k = 0) => {
      const data = Float32Array.from({ length: n * 4 }, (_, i) => k * 4 + i);
      return { INPUT0: { type: 'float32' as const, dims: [n, 4], data }, INPUT1: { type: 'float32' as const, dims: [n, 4], data: data.slice() } };
    };
    const check = (a: Awaited<ReturnType<SessionPool['run']>>, n: number, k: number) => {
      expect(Array.from(a.outputs.OUTPUT0!.data as Float32Array)).toEqual(Array.from(rows(n, k).INPUT0.data, (x) => 2 * x));
      expect(Array.from(a.outputs.OUTPUT1!.data as Float32Array)).toEqual(new Array(n * 4).fill(0));
    };
    try {
      // A limit no run meets: the session is made, timed and let go.
      const none = await pool.enableInline((n) => rows(n), outs, 4, 0.001, 8);
      expect(none.oneRowUs).toBeGreaterThan(0);
      expect(none.maxRows).toBe(0);
      expect(pool.inlined).toBe(false);
      await pool.run(rows(1), outs);
      expect(pool.inlineRuns).toBe(0);

      // Sizes the model cannot take end the timing at the last one that ran.
      expect((await pool.enableInline((n) => { if (n > 2) throw new Error('too many rows'); return rows(n); }, outs, 2, 1_000_000, 8)).maxRows).toBe(2);
      // A limit every size meets: 1, 2, 4 and 8 rows, the batch size.
      const timed = await pool.enableInline((n) => rows(n), outs, 4, 1_000_000, 8);
      expect(timed.maxRows).toBe(8);
      expect(pool.inlined).toBe(true);
      expect(pool.inlineRows).toBe(8);
      // Timed again where no run meets the limit (as on a busy machine): the same session, and the
      // rows an earlier timing allowed stay.
      expect((await pool.enableInline((n) => rows(n), outs, 2, 0.001, 8)).maxRows).toBe(8);
      expect(pool.inlineRows).toBe(8);
      for (let k = 0; k < 20; k++) {
        const n = 1 + (k % 8);
        const a = await pool.run(rows(n, k), outs);
        check(a, n, k);
        expect(a.queueNs).toBe(0n);
      }
      expect(pool.inlineRuns).toBe(20);
      // Nine rows: a worker, with the same answers.
      check(await pool.run(rows(9, 3), outs), 9, 3);
      expect(pool.inlineRuns).toBe(20);
      // Concurrent runs: the first runs here, the others find it running and go to the worker.
      await runMany(pool, 200);
      expect(pool.inlineRuns).toBe(21);
    } finally {
      await pool.close();
    }
    await expect(pool.run(rows(1), outs)).rejects.toThrow('unloading');
  });

  it('keeps a session no size fitted for a later timing, without running on it until one does, and releases it when asked', async () => {
    const pool = await SessionPool.create({ modelPath: modelPath('fixtures/add_sub_fp32.onnx'), providers: ['cpu'], workers: 1, intraOpThreads: 1 });
    const outs = ['OUTPUT0', 'OUTPUT1'];
    const rows = (n: number) => {
      const data = Float32Array.from({ length: n * 4 }, (_, i) => i);
      return { INPUT0: { type: 'float32' as const, dims: [n, 4], data }, INPUT1: { type: 'float32' as const, dims: [n, 4], data: data.slice() } };
    };
    try {
      // No run meets the limit, every run is under the keeping bound: kept, not run on.
      const first = await pool.enableInline((n) => rows(n), outs, 2, 0.001, 4, 1_000_000);
      expect(first.maxRows).toBe(0);
      expect(pool.inlineSessionHeld).toBe(true);
      expect(pool.inlined).toBe(false);
      await pool.run(rows(1), outs);
      expect(pool.inlineRuns).toBe(0);
      // A later timing on it under a limit every size meets: it runs there from then on.
      expect((await pool.enableInline((n) => rows(n), outs, 2, 1_000_000, 4)).maxRows).toBe(4);
      expect(pool.inlined).toBe(true);
      await pool.run(rows(2), outs);
      expect(pool.inlineRuns).toBe(1);
      // A session that runs is not released as unused.
      await pool.dropUnusedInline();
      expect(pool.inlined).toBe(true);
      expect(pool.inlineSessionHeld).toBe(true);
    } finally {
      await pool.close();
    }
    const other = await SessionPool.create({ modelPath: modelPath('fixtures/add_sub_fp32.onnx'), providers: ['cpu'], workers: 1, intraOpThreads: 1 });
    try {
      expect((await other.enableInline((n) => rows(n), outs, 2, 0.001, 4, 1_000_000)).maxRows).toBe(0);
      expect(other.inlineSessionHeld).toBe(true);
      await other.dropUnusedInline();
      expect(other.inlineSessionHeld).toBe(false);
      // A limit no run meets, nothing kept: the session made for the timing is let go.
      expect((await other.enableInline((n) => rows(n), outs, 2, 0.001, 4)).maxRows).toBe(0);
      expect(other.inlineSessionHeld).toBe(false);
    } finally {
      await other.close();
    }
    // Closed: nothing is timed.
    expect(await other.enableInline((n) => rows(n), outs, 2, 1_000_000, 4)).toEqual({ oneRowUs: Number.POSITIVE_INFINITY, maxRows: 0 });
  });
});
