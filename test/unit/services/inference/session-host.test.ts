// Versions sharing the pod's session workers, on real onnxruntime sessions in real worker threads:
// each version's runs are answered by its own session whatever else runs beside it; closing one
// leaves the others serving; a worker that exits fails only the run it held, and every version on it
// is loaded again there while the versions on other workers serve on; a large or slow model keeps
// workers of its own. onnxruntime-node creates a session in a later turn, so the messages after a
// load reach its worker before the session exists: a close then refuses the loads under way at
// once, and an unload releases the session once loaded, leaving nothing on the worker to run.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { ElemType, encodeModel, initializer, node, tensor } from '../../../../tools/models/onnx-builder';
import { loadConfig } from '../../../../lib/config';
import { intraOpThreads } from '../../../../services/inference/cgroup-limits';
import { SessionHost, sharedHostOptions, sharedSessionWorkers, type Seat, type SeatOwner, type SharingPolicy } from '../../../../services/inference/session-host';
import { SessionPool, type SessionPoolOptions } from '../../../../services/inference/session-pool';
import type { WorkerReply, WorkerRequest } from '../../../../services/inference/worker-protocol';
import { modelPath } from '../../../helpers/models';
import { waitFor } from '../../../helpers/wait';

jest.setTimeout(60_000);

const VERSIONS = 12;
const SHARE_SMALL: SharingPolicy = { maxModelBytes: 16 * 1024 * 1024, maxRunUs: 1_000, intraOpThreads: 1 };

let dir: string;
/** add_<k>.onnx: OUTPUT0 = INPUT0 + k, FP32 [batch, 4]; one per version, so every answer says whose session ran it. */
const addModel = (k: number) => path.join(dir, `add_${k}.onnx`);

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-session-host-'));
  for (let k = 0; k < VERSIONS; k++) {
    fs.writeFileSync(addModel(k), encodeModel({
      name: `add_${k}`,
      inputs: [tensor('INPUT0', ElemType.FLOAT, ['batch', 4])],
      outputs: [tensor('OUTPUT0', ElemType.FLOAT, ['batch', 4])],
      nodes: [node('Add', ['INPUT0', 'K'], ['OUTPUT0'])],
      initializers: [initializer('K', ElemType.FLOAT, [1], Float32Array.of(k))],
    }));
  }
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const row = (seed: number) => Float32Array.from({ length: 4 }, (_, i) => seed * 4 + i);

/** Runs version `k` on a row of `seed` and checks it answered with its own constant added. */
async function expectAdds(pool: SessionPool, k: number, seed: number): Promise<void> {
  const r = await pool.run({ INPUT0: { type: 'float32', dims: [1, 4], data: row(seed) } }, ['OUTPUT0']);
  expect({ k, out: Array.from(r.outputs.OUTPUT0!.data as Float32Array) }).toEqual({ k, out: Array.from(row(seed), (x) => x + k) });
}

const addPool = (k: number, host: SessionHost | undefined, extra: Partial<SessionPoolOptions> = {}) =>
  SessionPool.create({ modelPath: addModel(k), providers: ['cpu'], intraOpThreads: 2, host, ...extra });

/**
 * Pools of these versions on `host`, placed one after the other: as each goes to the fewest-loaded
 * worker, on two workers the first and third share one, the second and fourth the other (placed at
 * once, the order they reach the host in would be the order their files' stat calls end in).
 */
async function addPoolsInTurn(ks: number[], host: SessionHost): Promise<SessionPool[]> {
  const pools: SessionPool[] = [];
  for (const k of ks) pools.push(await addPool(k, host));
  return pools;
}

/** A host's worker thread, as these tests look into it: its worker now, and the sessions placed on it. */
interface ThreadView {
  worker: Worker | undefined;
  seats: Set<Seat>;
}

/** The thread a pool's first session is on, and that session. */
const seatOf = (pool: SessionPool) => (pool as unknown as { seats: (Seat & { thread: ThreadView })[] }).seats[0]!;

/** The worker thread a pool's first session is on (to stop it, as a crash would). */
const workerOf = (pool: SessionPool) => seatOf(pool).thread.worker!;

/** What `worker` answers when asked, as no host would, to run session `session` of an add model. */
function runOnWorker(worker: Worker, session: number): Promise<WorkerReply> {
  const id = 1e9 + session;
  return new Promise((resolve) => {
    const answer = (msg: WorkerReply) => {
      if ((msg.type !== 'result' && msg.type !== 'error') || msg.id !== id) return;
      worker.off('message', answer);
      resolve(msg);
    };
    worker.on('message', answer);
    worker.postMessage({ type: 'run', id, session, feeds: { INPUT0: { type: 'float32', dims: [1, 4], data: row(1) } }, outputs: ['OUTPUT0'] } satisfies WorkerRequest);
  });
}

/** `promise`, or a rejection once it has been pending for `ms`: a hang fails its test at once, saying so. */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** An owner with no runs, for a seat asked of the host itself. */
const idle: SeatOwner = { oldestWaiting: () => undefined, takeWaiting: () => undefined, seatChanged: () => undefined, runOverdue: () => undefined };

describe('SessionHost', () => {
  it('places every version on the shared workers, each run answered by its own version\'s session, many at once', async () => {
    const host = new SessionHost({ workers: 2, sharing: SHARE_SMALL });
    const pools: SessionPool[] = [];
    try {
      for (let k = 0; k < VERSIONS; k++) pools.push(await addPool(k, host));
      // On the host's one intra-op thread, whatever the pool asked for.
      expect(pools.every((p) => p.shared && p.size === 1 && p.intraOpThreads === 1)).toBe(true);
      // Two threads for twelve versions, half of them on each.
      expect({ workers: host.workers, sessions: host.sessions }).toEqual({ workers: 2, sessions: VERSIONS });
      await Promise.all(Array.from({ length: 1_200 }, (_, i) => expectAdds(pools[i % VERSIONS]!, i % VERSIONS, i)));
      expect(pools.every((p) => p.running === 0 && p.queued === 0)).toBe(true);
      expect(pools[0]!.fastestRunUs).toBeGreaterThan(0);
    } finally {
      await Promise.all(pools.map((p) => p.close()));
      await host.close();
    }
    expect({ workers: host.workers, sessions: host.sessions }).toEqual({ workers: 0, sessions: 0 });
  });

  it('runs a version with several sessions on as many different workers, at most one per worker', async () => {
    const host = new SessionHost({ workers: 2, sharing: SHARE_SMALL });
    const pool = await addPool(5, host, { workers: 3 });
    try {
      expect({ size: pool.size, workers: host.workers, sessions: host.sessions }).toEqual({ size: 2, workers: 2, sessions: 2 });
      await Promise.all(Array.from({ length: 200 }, (_, i) => expectAdds(pool, 5, i)));
    } finally {
      await pool.close();
      await host.close();
    }
  });

  it('closing one version releases its session and leaves the others serving', async () => {
    const host = new SessionHost({ workers: 2, sharing: SHARE_SMALL });
    const pools = await Promise.all([0, 1, 2, 3].map((k) => addPool(k, host)));
    try {
      const busy = Promise.all(Array.from({ length: 400 }, (_, i) => expectAdds(pools[i % 4]!, i % 4, i).catch(() => undefined)));
      await pools[1]!.close();
      await busy;
      expect({ workers: host.workers, sessions: host.sessions }).toEqual({ workers: 2, sessions: 3 });
      await expect(pools[1]!.run({ INPUT0: { type: 'float32', dims: [1, 4], data: row(0) } }, ['OUTPUT0'])).rejects.toThrow('model is unloading');
      await Promise.all(Array.from({ length: 300 }, (_, i) => expectAdds(pools[[0, 2, 3][i % 3]!]!, [0, 2, 3][i % 3]!, i)));
    } finally {
      await Promise.all(pools.map((p) => p.close()));
      await host.close();
    }
  });

  it('a worker that exits fails only the run it held: the versions on it are loaded again there, the others serve meanwhile', async () => {
    const host = new SessionHost({ workers: 2, sharing: SHARE_SMALL, respawn: { baseMs: 400, maxMs: 400 } });
    // 0 and 2 on one worker, 1 and 3 on the other.
    const pools = await addPoolsInTurn([0, 1, 2, 3], host);
    const [a, other, b] = pools as [SessionPool, SessionPool, SessionPool, SessionPool];
    try {
      expect(workerOf(a)).toBe(workerOf(b));
      expect(workerOf(a)).not.toBe(workerOf(other));
      await Promise.all(pools.map((p, k) => expectAdds(p, k, 1)));
      // The worker stops as a run is handed to it (terminating one inside onnxruntime's run would
      // abort the process): that run fails, the one queued behind it waits for the worker to come back.
      void workerOf(a).terminate();
      const inFlight = a.run({ INPUT0: { type: 'float32', dims: [1, 4], data: row(2) } }, ['OUTPUT0']);
      expect(a.running).toBe(1);
      const queued = expectAdds(b, 2, 3);
      expect(b.queued).toBe(1);
      await expect(inFlight).rejects.toThrow(/session worker exited/);
      expect({ a: a.size, b: b.size, other: other.size }).toEqual({ a: 0, b: 0, other: 1 });
      // The other worker's versions serve while this one waits for its back-off.
      for (let i = 0; i < 50; i++) await expectAdds(other, 1, i);
      expect(a.size).toBe(0);
      await queued;
      await Promise.all(Array.from({ length: 100 }, (_, i) => expectAdds(pools[i % 4]!, i % 4, i)));
      expect(pools.map((p) => [p.size, p.respawns])).toEqual([[1, 1], [1, 0], [1, 1], [1, 0]]);
      expect({ workers: host.workers, sessions: host.sessions }).toEqual({ workers: 2, sessions: 4 });
    } finally {
      await Promise.all(pools.map((p) => p.close()));
      await host.close();
    }
  });

  it('a close while a first load is under way refuses it at once and ends the worker', async () => {
    const host = new SessionHost({ workers: 1, sharing: SHARE_SMALL });
    const loading = addPool(0, host);
    try {
      // The load is asked of a worker just started: the close reaches it before the session exists.
      await waitFor('the load to be asked', () => host.sessions === 1, 10_000, 1);
      const closed = host.close();
      await expect(within(5_000, loading)).rejects.toThrow('session workers are closing');
      await within(5_000, closed);
      expect({ workers: host.workers, sessions: host.sessions }).toEqual({ workers: 0, sessions: 0 });
    } finally {
      await host.close();
    }
  });

  it('a close while its worker waits to be started again refuses the loads that wait for it', async () => {
    const host = new SessionHost({ workers: 1, sharing: SHARE_SMALL, respawn: { baseMs: 60_000, maxMs: 60_000 } });
    const a = await addPool(0, host);
    try {
      await workerOf(a).terminate();
      await waitFor('the session to be lost with its worker', () => a.size === 0 && host.workers === 0, 10_000, 1);
      // Placed on the worker waiting for its back-off, to be loaded once it is started again.
      const waiting = addPool(1, host);
      await waitFor('the load to wait for the worker', () => host.sessions === 2, 10_000, 1);
      const closed = host.close();
      await expect(within(5_000, waiting)).rejects.toThrow('session workers are closing');
      await within(5_000, closed);
      expect({ workers: host.workers, sessions: host.sessions }).toEqual({ workers: 0, sessions: 0 });
    } finally {
      await a.close();
      await host.close();
    }
  });

  it('a version closed while its worker, started again, loads it leaves no session there; the others serve throughout', async () => {
    const host = new SessionHost({ workers: 2, sharing: SHARE_SMALL, respawn: { baseMs: 200, maxMs: 200 } });
    // 0 and 2 on one worker, 1 and 3 on the other.
    const pools = await addPoolsInTurn([0, 1, 2, 3], host);
    const [a, other, b, another] = pools as [SessionPool, SessionPool, SessionPool, SessionPool];
    const { thread, id } = seatOf(a);
    const old = workerOf(a);
    let serving = true;
    let served = 0;
    const elsewhere = (async () => {
      for (let i = 0; serving; i++, served++) await expectAdds(i % 2 ? other : another, i % 2 ? 1 : 3, i);
    })();
    try {
      expect(workerOf(b)).toBe(old);
      void old.terminate();
      await waitFor('the worker to be started again', () => thread.worker !== undefined && thread.worker !== old, 10_000, 1);
      // Its sessions are being loaded there again (not yet, or not quite, created): `a` closes meanwhile.
      await a.close();
      expect({ a: a.size, sessions: host.sessions }).toEqual({ a: 0, sessions: 3 });
      await waitFor('the version beside it to be loaded again', () => b.size === 1, 10_000, 1);
      await expectAdds(b, 2, 7);
      // Loaded after `a`'s, so `a`'s load has ended too: its session is released, not held by no one.
      expect(await runOnWorker(thread.worker!, id)).toMatchObject({ type: 'error', message: `no session ${id} on this worker` });
      serving = false;
      await elsewhere;
      expect(served).toBeGreaterThan(0);
      await Promise.all(Array.from({ length: 90 }, (_, i) => expectAdds(pools[1 + (i % 3)]!, 1 + (i % 3), i)));
      expect({ workers: host.workers, sessions: host.sessions, sizes: pools.map((p) => p.size) }).toEqual({ workers: 2, sessions: 3, sizes: [0, 1, 1, 1] });
    } finally {
      serving = false;
      await elsewhere.catch(() => undefined);
      await Promise.all(pools.map((p) => p.close()));
      await host.close();
    }
  });

  it('a session released during its first load is refused to whoever asked for it, and leaves nothing on the worker', async () => {
    const host = new SessionHost({ workers: 1, sharing: SHARE_SMALL });
    const a = await addPool(0, host);
    try {
      const { thread } = seatOf(a);
      const seating = host.seat(idle, { modelPath: addModel(1), providers: ['cpu'], intraOpThreads: 1, spinning: 'on' }, 1);
      const seat = [...thread.seats].find((s) => s.owner === idle)!;
      await within(5_000, host.unseat([seat]));
      await expect(within(5_000, seating)).rejects.toThrow('model unloaded');
      expect(await runOnWorker(thread.worker!, seat.id)).toMatchObject({ type: 'error', message: `no session ${seat.id} on this worker` });
      expect({ workers: host.workers, sessions: host.sessions }).toEqual({ workers: 1, sessions: 1 });
      await expectAdds(a, 0, 3);
    } finally {
      await a.close();
      await host.close();
    }
  });

  it('a session released while it waits for its worker to be started again is refused to whoever asked for it', async () => {
    const host = new SessionHost({ workers: 1, sharing: SHARE_SMALL, respawn: { baseMs: 300, maxMs: 300 } });
    const a = await addPool(0, host);
    try {
      const { thread } = seatOf(a);
      await workerOf(a).terminate();
      await waitFor('the session to be lost with its worker', () => a.size === 0 && host.workers === 0, 10_000, 1);
      const seating = host.seat(idle, { modelPath: addModel(1), providers: ['cpu'], intraOpThreads: 1, spinning: 'on' }, 1);
      const seat = [...thread.seats].find((s) => s.owner === idle)!;
      await within(5_000, host.unseat([seat]));
      await expect(within(5_000, seating)).rejects.toThrow('model unloaded');
      // The worker started again loads only the version still placed there.
      await waitFor('the version to be loaded again', () => a.size === 1, 10_000, 10);
      await expectAdds(a, 0, 4);
      expect(await runOnWorker(thread.worker!, seat.id)).toMatchObject({ type: 'error', message: `no session ${seat.id} on this worker` });
      expect({ workers: host.workers, sessions: host.sessions }).toEqual({ workers: 1, sessions: 1 });
    } finally {
      await a.close();
      await host.close();
    }
  });

  it('gives a model larger than it shares workers of its own, whose long runs hold up no shared version', async () => {
    const heavy = modelPath('fixtures/heavy.onnx');
    const host = new SessionHost({ workers: 1, sharing: { ...SHARE_SMALL, maxModelBytes: fs.statSync(heavy).size - 1 } });
    const small = await addPool(7, host);
    const big = await SessionPool.create({ modelPath: heavy, providers: ['cpu'], intraOpThreads: 1, host });
    try {
      expect({ small: small.shared, big: big.shared, sessions: host.sessions, workers: host.workers, bigThreads: big.intraOpThreads }).toEqual({ small: true, big: false, sessions: 1, workers: 1, bigThreads: 1 });
      // One heavy run of 64 rows takes hundreds of ms on one thread; the shared version answers throughout.
      let heavyDone = false;
      const slow = big.run({ INPUT0: { type: 'float32', dims: [64, 1024], data: new Float32Array(64 * 1024).fill(0.01) } }, ['OUTPUT0']).then((r) => {
        heavyDone = true;
        return r;
      });
      await waitFor('the heavy run to start', () => big.running === 1, 10_000, 1);
      for (let i = 0; i < 20; i++) await expectAdds(small, 7, i);
      expect(heavyDone).toBe(false);
      expect((await slow).outputs.OUTPUT0!.dims).toEqual([64, 1024]);
    } finally {
      await Promise.all([small.close(), big.close()]);
      await host.close();
    }
  });

  it('refuses a model that fails to load, keeping the versions already there', async () => {
    const host = new SessionHost({ workers: 2, sharing: SHARE_SMALL });
    const pool = await addPool(3, host);
    try {
      await expect(SessionPool.create({ modelPath: modelPath('fixtures/load_fails.onnx'), providers: ['cpu'], intraOpThreads: 1, host, workers: 2 })).rejects.toThrow('model failed to load');
      expect(host.sessions).toBe(1);
      await expectAdds(pool, 3, 9);
    } finally {
      await pool.close();
      await host.close();
    }
  });

  it.each<[string, SharingPolicy | undefined, number, number | undefined, boolean]>([
    ['a small model', SHARE_SMALL, 400_000, undefined, true],
    ['a model of the largest size shared', SHARE_SMALL, 16 * 1024 * 1024, undefined, true],
    ['a model larger than that', SHARE_SMALL, 16 * 1024 * 1024 + 1, undefined, false],
    ['any model, when sharing is off (largest size 0)', { ...SHARE_SMALL, maxModelBytes: 0 }, 1, undefined, false],
    ['any model, on a version\'s own host', undefined, 1, undefined, false],
    ['a version whose runs take under the limit', SHARE_SMALL, 400_000, 999, true],
    ['a version whose runs take the limit', SHARE_SMALL, 400_000, 1_000, false],
    ['a slow version, when run time moves none (limit 0)', { ...SHARE_SMALL, maxModelBytes: 1024, maxRunUs: 0 }, 1, 1e9, true],
  ])('shares %s: %p, %p bytes, runs of %p µs → %p', (_what, sharing, bytes, runUs, shares) => {
    const host = new SessionHost({ workers: 1, sharing });
    expect(host.admitsModel(bytes) && (runUs === undefined || host.admitsRun(runUs))).toBe(shares);
  });

  it('has one shared worker fewer than the pod has CPUs, at least one, unless set', () => {
    expect(sharedSessionWorkers(0, { cpus: 4, source: 'test' })).toBe(3);
    expect(sharedSessionWorkers(0, { cpus: 2, source: 'test' })).toBe(1);
    expect(sharedSessionWorkers(0, { cpus: 1, source: 'test' })).toBe(1);
    expect(sharedSessionWorkers(2, { cpus: 4, source: 'test' })).toBe(2);
  });

  it.each<[string, Record<string, string>, { workers: number; threads: number }]>([
    ['by default: a worker per CPU but one, one thread a session (the pod fits threads)', {}, { workers: 3, threads: 1 }],
    ['workers set', { INFERMESH_SHARED_SESSION_WORKERS: '2' }, { workers: 2, threads: 1 }],
    ['threads set: those', { INFERMESH_INTRA_OP_THREADS: '3' }, { workers: 3, threads: 3 }],
    ['no thread fitting: the pod\'s threads', { INFERMESH_INTRA_OP_SERIAL_RUN_US: '0' }, { workers: 3, threads: 2 }],
    ['no warm-up, so nothing timed: the pod\'s threads', { INFERMESH_WARMUP: 'false' }, { workers: 3, threads: 2 }],
    ['shared versions never timed: the pod\'s threads (fitted as any other)', { INFERMESH_SHARED_SESSION_MAX_RUN_US: '0' }, { workers: 3, threads: 2 }],
  ])('sizes the pod\'s shared host %s', (_what, env, expected) => {
    const c = loadConfig(env);
    const cpus = { cpus: 4, source: 'test' };
    // The pod's threads, as it computes them: 4 CPUs over 2 session workers per version, unless set.
    const opts = sharedHostOptions(c, cpus, intraOpThreads(c.intraOpThreads, 2, cpus));
    expect({ workers: opts.workers, threads: opts.sharing!.intraOpThreads }).toEqual(expected);
    expect(opts.sharing).toMatchObject({ maxModelBytes: c.sharedSessionMaxModelBytes, maxRunUs: c.sharedSessionMaxRunUs });
  });
});
