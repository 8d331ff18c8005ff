// Lazy loading at the router: requests for a version no pod holds wait on one demand, go on when a
// pod has it ready, fail with the reason when its load failed, and are bounded in number and time.
import { ColdStarts } from '../../../../services/router/cold-starts';
import { MeshError, ErrorCode } from '../../../../lib/errors';

describe('ColdStarts', () => {
  let ready: Set<string>;
  let failed: Map<string, string>;
  let demands: [string, number, number][];
  let cold: ColdStarts;
  const make = (maxWaiting = 3, maxWaitMs = 5_000, repeatMs = 10_000) => new ColdStarts(
    (model, version, waiting) => demands.push([model, version, waiting]),
    (model, version) => ready.has(`${model}@${version}`),
    (model, version) => failed.get(`${model}@${version}`),
    { maxWaiting, maxWaitingPerVersion: 2, maxWaitMs, repeatMs },
  );

  beforeEach(() => {
    ready = new Set();
    failed = new Map();
    demands = [];
    cold = make();
  });
  afterEach(() => cold.close());

  it('asks once for a version many requests wait for, and lets them all go when a pod has it', () => {
    const ends: (MeshError | undefined | 'pending')[] = ['pending', 'pending', 'pending'];
    cold.wait('m', 1, (e) => (ends[0] = e));
    cold.wait('m', 1, (e) => (ends[1] = e));
    cold.wait('n', 2, (e) => (ends[2] = e));
    expect(demands).toEqual([['m', 1, 1], ['n', 2, 1]]);
    expect(cold.size).toBe(3);
    cold.check();
    expect(ends).toEqual(['pending', 'pending', 'pending']);
    ready.add('m@1');
    cold.check();
    expect(ends).toEqual([undefined, undefined, 'pending']);
    expect(cold.size).toBe(1);
  });

  it('fails the waiting requests with why, when the version failed to load on the pods that have it', () => {
    let end: MeshError | undefined | 'pending' = 'pending';
    cold.wait('m', 1, (e) => (end = e));
    failed.set('m@1', 'pod-a: bad model');
    cold.check();
    expect(end).toBeInstanceOf(MeshError);
    expect((end as unknown as MeshError).code).toBe(ErrorCode.Unavailable);
    expect((end as unknown as MeshError).message).toBe("no inference pod has model 'm' version 1 ready: pod-a: bad model");
    expect(cold.size).toBe(0);
  });

  it('refuses a request beyond its bound with RESOURCE_EXHAUSTED, and frees a place when one leaves', () => {
    const stops = [cold.wait('m', 1, () => undefined), cold.wait('m', 1, () => undefined), cold.wait('n', 1, () => undefined)];
    let refused: unknown;
    try {
      cold.wait('o', 1, () => undefined);
    } catch (err) {
      refused = err;
    }
    expect((refused as MeshError).code).toBe(ErrorCode.Overloaded);
    expect((refused as MeshError).message).toMatch(/router has 3 requests waiting for versions to load \(INFERMESH_ROUTER_MAX_COLD_WAITING\); model 'o' version 1 is not loaded yet/);
    // A client that goes away leaves: its callback is never called, and its place is free.
    stops[0]!();
    stops[0]!();
    expect(cold.size).toBe(2);
    expect(() => cold.wait('o', 1, () => undefined)).not.toThrow();
  });

  it('bounds the requests waiting for one version, so a caller asking for one that never loads leaves room for others', () => {
    cold.wait('m', 1, () => undefined);
    cold.wait('m', 1, () => undefined);
    let refused: unknown;
    try {
      cold.wait('m', 1, () => undefined);
    } catch (err) {
      refused = err;
    }
    expect((refused as MeshError).code).toBe(ErrorCode.Overloaded);
    expect((refused as MeshError).message).toBe("router has 2 requests waiting for model 'm' version 1 to load (INFERMESH_ROUTER_MAX_COLD_WAITING_PER_VERSION)");
    expect(() => cold.wait('n', 1, () => undefined)).not.toThrow();
  });

  it('after a heartbeat, looks only at the versions it reports', () => {
    let end: MeshError | undefined | 'pending' = 'pending';
    cold.wait('m', 1, (e) => (end = e));
    ready.add('m@1');
    cold.check([{ name: 'other', version: 1 }, { name: 'm', version: 2 }]);
    expect(end).toBe('pending');
    cold.check([{ name: 'm', version: 1 }]);
    expect(end).toBeUndefined();
  });

  it('ends a wait with UNAVAILABLE after its longest wait, and repeats the demand while requests wait', async () => {
    cold.close();
    cold = make(3, 120, 30);
    const ended = new Promise<MeshError | undefined>((resolve) => cold.wait('m', 4, resolve));
    const err = await ended;
    expect(err?.code).toBe(ErrorCode.Unavailable);
    expect(err?.message).toBe("model 'm' version 4 was not loaded on any inference pod within 120 ms");
    expect(demands.length).toBeGreaterThanOrEqual(3);
    expect(demands.every((d) => d[0] === 'm' && d[1] === 4)).toBe(true);
    // Nothing waits: no more demands.
    const after = demands.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(demands.length).toBe(after);
    expect(cold.size).toBe(0);
  });
});
