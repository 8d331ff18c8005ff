// A run past its host's budget, on real onnxruntime sessions in real worker threads: it fails
// DEADLINE_EXCEEDED at the budget, its version stops taking runs, its worker is set aside to finish
// the run alone (no thread can stop it) and exits once it has, and the versions that shared that
// worker serve on from a new one meanwhile. heavy.onnx with 256 rows runs for about a second on one
// thread, far past the 100 ms budgets here.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ErrorCode } from '../../../../lib/errors';
import { SessionHost, setAsideWorkers } from '../../../../services/inference/session-host';
import { SessionPool } from '../../../../services/inference/session-pool';
import { addModel, modelPath } from '../../../helpers/models';
import { waitFor } from '../../../helpers/wait';

jest.setTimeout(60_000);

let dir: string;
let addFile: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-run-budget-'));
  addFile = path.join(dir, 'add_3.onnx');
  fs.writeFileSync(addFile, addModel());
});

afterAll(async () => {
  // Every set-aside worker has finished its run and gone: none outlives the tests.
  await waitFor('the set-aside workers to exit', () => setAsideWorkers() === 0, 30_000);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const heavyRows = (rows: number) => ({ INPUT0: { type: 'float32' as const, dims: [rows, 1024], data: new Float32Array(rows * 1024).fill(0.01) } });

async function expectAdds3(pool: SessionPool): Promise<void> {
  const r = await pool.run({ INPUT0: { type: 'float32', dims: [1, 4], data: Float32Array.of(1, 2, 3, 4) } }, ['OUTPUT0']);
  expect(Array.from(r.outputs.OUTPUT0!.data as Float32Array)).toEqual([4, 5, 6, 7]);
}

describe('a run past its budget', () => {
  it('on a shared worker: fails DEADLINE_EXCEEDED, stops its version, and the version beside it serves on from a new worker', async () => {
    const host = new SessionHost({
      workers: 1,
      // Run time never moves a version off (as INFERMESH_SHARED_SESSION_MAX_RUN_US=0): heavy shares the worker.
      sharing: { maxModelBytes: 16 * 1024 * 1024, maxRunUs: 0, intraOpThreads: 1 },
      runBudget: { ms: 100, setting: 'INFERMESH_SHARED_SESSION_RUN_TIMEOUT_MS' },
    });
    const heavy = await SessionPool.create({ modelPath: modelPath('fixtures/heavy.onnx'), providers: ['cpu'], host });
    const add = await SessionPool.create({ modelPath: addFile, providers: ['cpu'], host });
    expect([heavy.shared, add.shared]).toEqual([true, true]);
    const stopped: string[] = [];
    heavy.onOverdue = (why) => stopped.push(why);
    try {
      await expectAdds3(add);
      const long = heavy.run(heavyRows(256), ['OUTPUT0']);
      // Asked while the long run holds the worker: it waits for the worker, not for the run.
      const beside = add.run({ INPUT0: { type: 'float32', dims: [1, 4], data: Float32Array.of(0, 0, 0, 0) } }, ['OUTPUT0']);
      await expect(long).rejects.toMatchObject({ code: ErrorCode.DeadlineExceeded, message: expect.stringMatching(/^the run took longer than INFERMESH_SHARED_SESSION_RUN_TIMEOUT_MS \(100 ms\)/) });
      expect(Array.from((await beside).outputs.OUTPUT0!.data as Float32Array)).toEqual([3, 3, 3, 3]);
      expect(stopped).toHaveLength(1);
      expect(heavy.stoppedBecause).toMatch(/^stopped on this pod: the run took longer than INFERMESH_SHARED_SESSION_RUN_TIMEOUT_MS/);
      // The stopped version takes no run, however small; the other keeps serving.
      await expect(heavy.run(heavyRows(1), ['OUTPUT0'])).rejects.toMatchObject({ code: ErrorCode.NotReady, message: expect.stringMatching(/^stopped on this pod/) });
      await expectAdds3(add);
      expect(host.workers).toBe(1);
      // The set-aside worker finishes its run, is asked to close, and exits.
      await waitFor('the set-aside worker to exit', () => setAsideWorkers() === 0, 30_000);
      await expectAdds3(add);
    } finally {
      await heavy.close();
      await add.close();
      await host.close();
    }
  });

  it('on a version\'s own workers: fails DEADLINE_EXCEEDED and stops the version; closing it waits for nothing', async () => {
    const pool = await SessionPool.create({ modelPath: modelPath('fixtures/heavy.onnx'), providers: ['cpu'], intraOpThreads: 1, runBudget: { ms: 100, setting: 'INFERMESH_RUN_TIMEOUT_MS' } });
    expect(pool.shared).toBe(false);
    try {
      expect((await pool.run(heavyRows(1), ['OUTPUT0'])).outputs.OUTPUT0!.dims).toEqual([1, 1024]);
      await expect(pool.run(heavyRows(256), ['OUTPUT0'])).rejects.toMatchObject({ code: ErrorCode.DeadlineExceeded, message: expect.stringMatching(/INFERMESH_RUN_TIMEOUT_MS \(100 ms\)/) });
      expect(setAsideWorkers()).toBe(1);
      await expect(pool.run(heavyRows(1), ['OUTPUT0'])).rejects.toMatchObject({ code: ErrorCode.NotReady });
    } finally {
      // The run still goes on in the set-aside worker; the pool's own new worker closes at once.
      await pool.close();
    }
    await waitFor('the set-aside worker to exit', () => setAsideWorkers() === 0, 30_000);
  });

  it('a run that ended in time while this thread was held up past the budget is answered, not judged late', async () => {
    const pool = await SessionPool.create({ modelPath: modelPath('fixtures/heavy.onnx'), providers: ['cpu'], intraOpThreads: 1, runBudget: { ms: 100, setting: 'INFERMESH_RUN_TIMEOUT_MS' } });
    try {
      await pool.run(heavyRows(1), ['OUTPUT0']);
      const run = pool.run(heavyRows(1), ['OUTPUT0']);
      // The run (milliseconds) ends on its worker while this thread is busy for 600 ms, from the
      // check phase: the loop's next turn starts with its timers, the budget's due, before it reads
      // the answer waiting for it.
      await new Promise<void>((resolve) => setImmediate(() => {
        const until = Date.now() + 600;
        while (Date.now() < until) {
          // held up
        }
        resolve();
      }));
      expect((await run).outputs.OUTPUT0!.dims).toEqual([1, 1024]);
      expect(pool.stoppedBecause).toBeUndefined();
      expect(setAsideWorkers()).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('within its budget, or with none, a run is answered and nothing is set aside', async () => {
    for (const runBudget of [{ ms: 30_000, setting: 'INFERMESH_RUN_TIMEOUT_MS' }, { ms: 0, setting: 'INFERMESH_RUN_TIMEOUT_MS' }]) {
      const pool = await SessionPool.create({ modelPath: modelPath('fixtures/heavy.onnx'), providers: ['cpu'], intraOpThreads: 1, runBudget });
      try {
        expect((await pool.run(heavyRows(16), ['OUTPUT0'])).outputs.OUTPUT0!.dims).toEqual([16, 1024]);
        expect(pool.stoppedBecause).toBeUndefined();
        expect(setAsideWorkers()).toBe(0);
      } finally {
        await pool.close();
      }
    }
  });
});
