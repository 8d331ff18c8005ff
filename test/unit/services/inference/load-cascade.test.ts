// A slow load set aside on a shared worker blames no other version: the next worker makes every
// other session again, one after the other, and each load's budget starts when the one before it
// has ended. Timed all at once from the worker's start, the loads waiting behind the others passed
// their budgets, and each in turn was blamed, its version stopped and its worker set aside (past
// INFERMESH_MAX_SET_ASIDE_WORKERS, the pod drains itself).
//
// The budgets' timers (setTimeout) run on a clock the test moves, and the loads take what time
// they take: the test lets the budget pass only while a load is under way, never while none is, so
// a busy machine that makes a load slow changes nothing in what it checks.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as realSleep } from 'node:timers/promises';
import { SessionHost, setAsideWorkers } from '../../../../services/inference/session-host';
import { SessionPool } from '../../../../services/inference/session-pool';
import { wideModel } from '../../../helpers/models';

jest.setTimeout(180_000);

const BUDGET_MS = 700;

let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-load-cascade-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Polls `check` on the real clock (setTimeout is the test's own here) until it holds; throws `what` after two minutes. */
async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await realSleep(2);
  }
}

it('blames only the slow load when the next worker makes the other sessions again', async () => {
  jest.useFakeTimers({ doNotFake: ['Date', 'hrtime', 'nextTick', 'performance', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval'] });
  // Six versions whose sessions take a while each (about 200 ms on an idle machine): long enough
  // for the test to see each one made before the next.
  const medium = Array.from({ length: 6 }, (_, i) => {
    const f = path.join(dir, `m${i}.onnx`);
    fs.writeFileSync(f, wideModel(4_000 + i));
    return f;
  });
  // Still loading when its budget is let pass, a few milliseconds after it began (seconds here).
  const slowFile = path.join(dir, 'slow.onnx');
  fs.writeFileSync(slowFile, wideModel(8_000));
  const host = new SessionHost({ workers: 1, sharing: { maxModelBytes: 16 * 1024 * 1024, maxRunUs: 0, intraOpThreads: 1 }, loadBudget: { ms: BUDGET_MS, setting: 'INFERMESH_SHARED_SESSION_LOAD_TIMEOUT_MS' } });
  const blamed: string[] = [];
  const pools: SessionPool[] = [];
  const madeAgain = () => pools.reduce((n, p) => n + p.respawns, 0);
  try {
    for (const f of medium) {
      const p = await SessionPool.create({ modelPath: f, providers: ['cpu'], host });
      p.onOverdue = (why) => blamed.push(`${path.basename(f)}: ${why}`);
      pools.push(p);
    }
    expect(jest.getTimerCount()).toBe(0);
    const slow = SessionPool.create({ modelPath: slowFile, providers: ['cpu'], host }).then(() => 'loaded', (e: Error) => e.message);
    await until('the slow load to be timed', () => jest.getTimerCount() === 1);
    jest.advanceTimersByTime(BUDGET_MS);
    expect(await slow).toMatch(/INFERMESH_SHARED_SESSION_LOAD_TIMEOUT_MS/);
    // The other six are made again on the next worker, one after the other. Each time one is made,
    // the budget all but passes: on the load under way then, whose budget started as the one
    // before it ended; timed from the worker's start, on every load still waiting as well.
    while (madeAgain() < medium.length && blamed.length === 0) {
      const made = madeAgain();
      await until('another session made again, or one blamed', () => madeAgain() > made || blamed.length > 0);
      jest.advanceTimersByTime(BUDGET_MS - 1);
    }
    // A budget that passed is judged on the turn after its timer.
    await new Promise((resolve) => setImmediate(resolve));
    expect(blamed).toEqual([]);
    expect(pools.map((p) => [p.respawns, p.size, p.stoppedBecause])).toEqual(medium.map(() => [1, 1, undefined]));
  } finally {
    jest.useRealTimers();
    for (const p of pools) await p.close().catch(() => undefined);
    await host.close();
    await until('set-aside workers to exit', () => setAsideWorkers() === 0);
  }
});
