// Making a session past its host's load budget, on real onnxruntime sessions in real worker threads:
// the load fails DEADLINE_EXCEEDED at the budget, naming the setting, and says when the load that
// goes on will have ended (no thread can stop it: its worker is set aside to finish it alone and
// exits once it has); the versions on that worker, and a load asked for behind the slow one, go on
// on a new worker meanwhile. A graph of 16 000 Identity nodes reading one input takes onnxruntime
// about 3 s to load here, far past the budgets of 300 ms and 1 s.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ErrorCode } from '../../../../lib/errors';
import { LoadOverdueError, SessionHost, setAsideWorkers, unstoppableWorkers } from '../../../../services/inference/session-host';
import { SessionPool } from '../../../../services/inference/session-pool';
import { addModel, wideModel } from '../../../helpers/models';
import { waitFor } from '../../../helpers/wait';

jest.setTimeout(120_000);

let dir: string;
let addFile: string;
let wideFile: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-load-budget-'));
  addFile = path.join(dir, 'add_3.onnx');
  fs.writeFileSync(addFile, addModel());
  wideFile = path.join(dir, 'wide.onnx');
  fs.writeFileSync(wideFile, wideModel(16_000));
});

afterAll(async () => {
  // Every set-aside worker has finished its load and gone: none outlives the tests.
  await waitFor('the set-aside workers to exit', () => setAsideWorkers() === 0, 60_000);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function expectAdds3(pool: SessionPool): Promise<void> {
  const r = await pool.run({ INPUT0: { type: 'float32', dims: [1, 4], data: Float32Array.of(1, 2, 3, 4) } }, ['OUTPUT0']);
  expect(Array.from(r.outputs.OUTPUT0!.data as Float32Array)).toEqual([4, 5, 6, 7]);
}

const sharedHost = (loadMs: number) => new SessionHost({
  workers: 1,
  sharing: { maxModelBytes: 16 * 1024 * 1024, maxRunUs: 0, intraOpThreads: 1 },
  loadBudget: { ms: loadMs, setting: 'INFERMESH_SHARED_SESSION_LOAD_TIMEOUT_MS' },
});

describe('a load past its budget', () => {
  it('on a shared worker: fails DEADLINE_EXCEEDED, and the versions beside it, loaded or loading, go on from a new worker', async () => {
    const host = sharedHost(1_000);
    const add = await SessionPool.create({ modelPath: addFile, providers: ['cpu'], host });
    let second: SessionPool | undefined;
    try {
      await expectAdds3(add);
      const slow = SessionPool.create({ modelPath: wideFile, providers: ['cpu'], host });
      await waitFor('the worker to be making the slow session', () => unstoppableWorkers() > 0);
      // Asked for behind the slow load, on the same (only) worker: made on the next one.
      const behind = SessionPool.create({ modelPath: addFile, providers: ['cpu'], host });
      const err = await slow.then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(LoadOverdueError);
      expect(err).toMatchObject({ code: ErrorCode.DeadlineExceeded, shared: true, message: expect.stringMatching(/^making its session took longer than INFERMESH_SHARED_SESSION_LOAD_TIMEOUT_MS \(1000 ms\); onnxruntime cannot stop it, so its session worker was set aside to finish it alone$/) });
      // The load goes on in the set-aside worker, which no one can stop.
      expect(setAsideWorkers()).toBe(1);
      expect(unstoppableWorkers()).toBeGreaterThanOrEqual(1);
      second = await behind;
      await expectAdds3(second);
      await expectAdds3(add);
      expect(host.workers).toBe(1);
      // It finishes the load, is asked to close, exits, and says so.
      await (err as LoadOverdueError).ended;
      expect(setAsideWorkers()).toBe(0);
      await expectAdds3(add);
    } finally {
      await second?.close();
      await add.close();
      await host.close();
    }
  });

  it('on a version\'s own workers: fails DEADLINE_EXCEEDED naming INFERMESH_LOAD_TIMEOUT_MS, and holds nothing but the set-aside worker', async () => {
    const err = await SessionPool.create({ modelPath: wideFile, providers: ['cpu'], intraOpThreads: 1, loadBudget: { ms: 300, setting: 'INFERMESH_LOAD_TIMEOUT_MS' } })
      .then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.DeadlineExceeded, shared: false, message: expect.stringMatching(/^making its session took longer than INFERMESH_LOAD_TIMEOUT_MS \(300 ms\)/) });
    expect(setAsideWorkers()).toBe(1);
    await (err as LoadOverdueError).ended;
    expect(setAsideWorkers()).toBe(0);
  });

  it('within its budget, or with none, a load succeeds and nothing is set aside', async () => {
    for (const loadBudget of [{ ms: 60_000, setting: 'INFERMESH_LOAD_TIMEOUT_MS' }, { ms: 0, setting: 'INFERMESH_LOAD_TIMEOUT_MS' }]) {
      const pool = await SessionPool.create({ modelPath: addFile, providers: ['cpu'], intraOpThreads: 1, loadBudget });
      try {
        await expectAdds3(pool);
        expect(setAsideWorkers()).toBe(0);
      } finally {
        await pool.close();
      }
    }
  });

  it('a host closed while one of its workers makes a session closes at once, setting that worker aside (terminate() there would abort the process)', async () => {
    const host = sharedHost(0);
    const slow = SessionPool.create({ modelPath: wideFile, providers: ['cpu'], host }).then(() => undefined, (e: unknown) => e);
    await waitFor('the worker to be making the session', () => unstoppableWorkers() > 0);
    await host.close();
    expect(await slow).toMatchObject({ code: ErrorCode.Unavailable, message: 'session workers are closing' });
    expect(setAsideWorkers()).toBe(1);
    await waitFor('the set-aside worker to exit', () => setAsideWorkers() === 0, 60_000);
  });
});
