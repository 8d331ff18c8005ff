// A slow load set aside on a shared worker blames no other version: the next worker makes every
// other session again, one after the other, and each load's budget starts when the one before it
// has ended. Timed all at once from the worker's start, the loads waiting behind the others passed
// their budgets, and each in turn was blamed, its version stopped and its worker set aside (past
// INFERMESH_MAX_SET_ASIDE_WORKERS, the pod drains itself).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SessionHost, setAsideWorkers } from '../../../../services/inference/session-host';
import { SessionPool } from '../../../../services/inference/session-pool';
import { wideModel } from '../../../helpers/models';
import { waitFor } from '../../../helpers/wait';

jest.setTimeout(180_000);

let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-load-cascade-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

it('blames only the slow load when the next worker makes the other sessions again', async () => {
  // Six versions whose sessions take a fraction of the budget each (about 200 ms here), together more than it.
  const medium = Array.from({ length: 6 }, (_, i) => {
    const f = path.join(dir, `m${i}.onnx`);
    fs.writeFileSync(f, wideModel(4_000 + i));
    return f;
  });
  const slowFile = path.join(dir, 'slow.onnx');
  fs.writeFileSync(slowFile, wideModel(16_000));
  const host = new SessionHost({ workers: 1, sharing: { maxModelBytes: 16 * 1024 * 1024, maxRunUs: 0, intraOpThreads: 1 }, loadBudget: { ms: 700, setting: 'INFERMESH_SHARED_SESSION_LOAD_TIMEOUT_MS' } });
  const blamed: string[] = [];
  const pools: SessionPool[] = [];
  try {
    for (const f of medium) {
      const p = await SessionPool.create({ modelPath: f, providers: ['cpu'], host });
      p.onOverdue = (why) => blamed.push(`${path.basename(f)}: ${why}`);
      pools.push(p);
    }
    const slow = await SessionPool.create({ modelPath: slowFile, providers: ['cpu'], host }).then(() => 'loaded', (e: Error) => e.message);
    expect(slow).toMatch(/INFERMESH_SHARED_SESSION_LOAD_TIMEOUT_MS/);
    // The other six are made again on the next worker, one after the other.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect(blamed).toEqual([]);
  } finally {
    for (const p of pools) await p.close().catch(() => undefined);
    await host.close();
    await waitFor('set-aside workers to exit', () => setAsideWorkers() === 0, 120_000);
  }
});
