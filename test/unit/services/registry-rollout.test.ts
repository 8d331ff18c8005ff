import { applyWindow, canaryTrafficOf, trafficOf, unsyncedRouting, DEFAULT_ROLLOUT_ANALYSIS, type Rollout } from '../../../services/registry/rollout/rollout-state';
import { judge, rulesFor, errorRateRule, latencyRule, minRequestsRule, DEFAULT_ANALYSIS } from '../../../services/registry/rollout/analysis-rules';
import { emptyWindow, record, latencyQuantile, merge, encodeWindowReport, decodeWindowReport, type VersionWindow } from '../../../lib/window-stats';
import { Rollouts, type RolloutStore } from '../../../services/registry/rollout/rollouts';
import type { ModelRecord, VersionRecord } from '../../../services/registry/records';

function windowOf(version: number, ok: number, failed: number, latencyMs = 2): VersionWindow {
  const w = emptyWindow(version);
  for (let i = 0; i < ok; i++) record(w, true, latencyMs);
  for (let i = 0; i < failed; i++) record(w, false, latencyMs);
  return w;
}

const base: Rollout = {
  stable: 1, canary: 2, weight: 10, steps: [10, 50], step: 0, phase: 'progressing', automatic: true,
  analysis: { ...DEFAULT_ROLLOUT_ANALYSIS, windowsToFail: 2, windowsToAdvance: 2 }, passes: 0, fails: 0,
  lastWindow: 0, stepStartedAt: 0, reason: '',
};

describe('analysis rules', () => {
  it.each([
    ['error-rate passes within the allowance', errorRateRule(5, 10), windowOf(2, 96, 4), windowOf(1, 100, 0), 'pass'],
    ['error-rate fails beyond it', errorRateRule(5, 10), windowOf(2, 90, 10), windowOf(1, 100, 0), 'fail'],
    ['error-rate has no verdict for a canary within the allowance against a stable with no requests', errorRateRule(5, 10), windowOf(2, 97, 3), emptyWindow(1), 'inconclusive'],
    ['error-rate has no verdict for a canary within the allowance against fewer stable requests than the minimum', errorRateRule(5, 10), windowOf(2, 97, 3), windowOf(1, 9, 0), 'inconclusive'],
    // With no baseline a canary's own errors past the allowance still fail it: it fails every call.
    ['error-rate fails a canary failing every call against a stable with no requests', errorRateRule(5, 10), windowOf(2, 0, 100), emptyWindow(1), 'fail'],
    ['error-rate fails a canary past the allowance against fewer stable requests than the minimum', errorRateRule(5, 10), windowOf(2, 50, 50), windowOf(1, 9, 0), 'fail'],
    ['error-rate judges a stable with the minimum', errorRateRule(5, 10), windowOf(2, 50, 50), windowOf(1, 10, 0), 'fail'],
    ['latency passes when similar', latencyRule(3, 10), windowOf(2, 50, 0, 3), windowOf(1, 50, 0, 2), 'pass'],
    ['latency fails when far slower', latencyRule(3, 10), windowOf(2, 50, 0, 100), windowOf(1, 50, 0, 2), 'fail'],
    ['latency has no verdict without successes', latencyRule(3, 10), windowOf(2, 0, 5), windowOf(1, 50, 0), 'inconclusive'],
    ['latency has no verdict against a stable with no requests (a step of 100%)', latencyRule(3, 10), windowOf(2, 50, 0, 16), emptyWindow(1), 'inconclusive'],
    ['latency has no verdict against a stable whose requests all failed', latencyRule(3, 10), windowOf(2, 50, 0, 16), windowOf(1, 0, 50), 'inconclusive'],
    ['latency has no verdict against fewer stable successes than the minimum', latencyRule(3, 10), windowOf(2, 50, 0, 16), windowOf(1, 9, 40, 1), 'inconclusive'],
    ['min-requests waits for volume', minRequestsRule(10), windowOf(2, 3, 0), windowOf(1, 50, 0), 'inconclusive'],
  ])('%s', (_n, rule, canary, stable, result) => {
    expect(rule.evaluate(canary, stable).result).toBe(result);
  });

  it('fails a window on errors even with little traffic, and names the rule', () => {
    const v = judge(rulesFor(DEFAULT_ANALYSIS), windowOf(2, 0, 3), windowOf(1, 100, 0));
    expect(v.result).toBe('fail');
    expect(v.reason).toContain('error-rate: canary error rate 100.0% exceeds stable 0.0%');
  });

  it('merges windows from several routers exactly', () => {
    const a = windowOf(2, 10, 1, 1);
    merge(a, windowOf(2, 10, 0, 100));
    expect(a.requests).toBe(21);
    expect(a.errors).toBe(1);
    const unready = emptyWindow(2);
    unready.unready = 7;
    merge(a, unready);
    expect(a.unready).toBe(7);
    expect(a.requests).toBe(21);
    expect(latencyQuantile(a, 0.5)).toBe(1);
    expect(latencyQuantile(a, 0.99)).toBe(128);
  });
});

describe('window reports', () => {
  const report = (versions: unknown[]) => new TextEncoder().encode(JSON.stringify({ schema: 1, router: 'r1', model: 'm', windowStart: 10_000, windowMs: 10_000, versions }));

  it('round-trip, and count no unready requests from routers that predate the field', () => {
    const w = windowOf(2, 3, 1);
    w.unready = 4;
    const full = { schema: 1 as const, router: 'r1', model: 'm', windowStart: 10_000, windowMs: 10_000, versions: [w] };
    expect(decodeWindowReport(encodeWindowReport(full))).toEqual(full);
    const { unready: _dropped, ...old } = windowOf(1, 5, 0);
    expect(decodeWindowReport(report([old])).versions[0]!.unready).toBe(0);
  });

  it('carry the splits each router routed by, and are refused when those are malformed', () => {
    const routedBy = [{ revision: 7, traffic: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }] }];
    const full = { schema: 1 as const, router: 'r1', model: 'm', windowStart: 10_000, windowMs: 10_000, versions: [windowOf(2, 3, 1)], routedBy };
    expect(decodeWindowReport(encodeWindowReport(full))).toEqual(full);
    const withRouting = (r: unknown) => new TextEncoder().encode(JSON.stringify({ ...full, routedBy: r }));
    expect(() => decodeWindowReport(withRouting({}))).toThrow(/routedBy/);
    expect(() => decodeWindowReport(withRouting([{ revision: -1, traffic: [] }]))).toThrow(/routedBy/);
    expect(() => decodeWindowReport(withRouting([{ revision: 1, traffic: [{ version: 1, weight: 'all' }] }]))).toThrow(/routedBy/);
    expect(() => decodeWindowReport(withRouting(Array.from({ length: 9 }, () => routedBy[0])))).toThrow(/routedBy/);
    // No split the registry makes lists more than two versions; a report's splits are kept until its window is judged.
    const versions = (n: number) => [{ revision: 7, traffic: Array.from({ length: n }, (_, v) => ({ version: v + 1, weight: 0 })) }];
    expect(decodeWindowReport(withRouting(versions(16))).routedBy![0]!.traffic).toHaveLength(16);
    expect(() => decodeWindowReport(withRouting(versions(17)))).toThrow(/routedBy/);
  });

  it('are refused unless the router\'s name is one INFERMESH_POD_NAME takes: 1 to 253 letters, digits, ".", "-" or "_"', () => {
    const named = (router: unknown) => new TextEncoder().encode(JSON.stringify({ schema: 1, router, model: 'm', windowStart: 10_000, windowMs: 10_000, versions: [] }));
    for (const ok of ['router-7f9c.infermesh_1', 'r'.repeat(253)]) expect(decodeWindowReport(named(ok)).router).toBe(ok);
    for (const bad of ['r'.repeat(254), 'r'.repeat(349_000), '', 'router 1', 'router\n1', 'router/1', '..']) {
      expect(() => decodeWindowReport(named(bad))).toThrow(/router name/);
    }
    expect(() => decodeWindowReport(named(7))).toThrow(/malformed window report/);
  });

  it('are refused when a count is not a whole number', () => {
    expect(() => decodeWindowReport(report([{ ...windowOf(1, 1, 0), unready: -1 }]))).toThrow(/unready/);
    expect(() => decodeWindowReport(report([{ ...windowOf(1, 1, 0), requests: 1.5 }]))).toThrow(/bad version entry/);
  });
});

describe('rollout state', () => {
  const pass = { result: 'pass' as const, reason: 'ok' };
  const fail = { result: 'fail' as const, reason: 'error-rate: bad' };

  it('implies the traffic split, listing the canary at weight 0 so pods load it', () => {
    expect(trafficOf({ ...base, weight: 0 })).toEqual([{ version: 1, weight: 100 }, { version: 2, weight: 0 }]);
    expect(trafficOf({ ...base, phase: 'promoted' })).toEqual([{ version: 2, weight: 100 }]);
    expect(trafficOf({ ...base, phase: 'rolled_back' })).toEqual([{ version: 1, weight: 100 }]);
  });

  it('steps through the plan on passing windows and promotes after the last step', () => {
    let r = base;
    r = applyWindow(r, pass, 1000, 1500).rollout;
    const step = applyWindow(r, pass, 2000, 2500);
    expect(step.action).toBe('step');
    expect(step.rollout).toMatchObject({ weight: 50, step: 1, passes: 0, stepStartedAt: 2500 });
    // A window that began before the step is not counted for the new weight.
    expect(applyWindow(step.rollout, pass, 2001, 3000).rollout.passes).toBe(0);
    r = applyWindow(step.rollout, pass, 3000, 3500).rollout;
    const done = applyWindow(r, pass, 4000, 4500);
    expect(done.action).toBe('promoted');
    expect(trafficOf(done.rollout)).toEqual([{ version: 2, weight: 100 }]);
  });

  it('rolls back after consecutive failing windows, with the reason', () => {
    const once = applyWindow(base, fail, 1000, 1500);
    expect(once.action).toBeUndefined();
    const twice = applyWindow(once.rollout, fail, 2000, 2500);
    expect(twice.action).toBe('rolled_back');
    expect(twice.rollout.reason).toBe('rolled back after 2 failing windows: error-rate: bad');
  });

  it('rolls back a canary no pod has had ready for the ready timeout, and forgives one that comes up', () => {
    const r = { ...base, analysis: { ...base.analysis, readyTimeoutMs: 3_000 } };
    const inconclusive = { result: 'inconclusive' as const, reason: 'min-requests: only 0 canary requests' };
    let o = applyWindow(r, inconclusive, 1000, 2100, 'unready');
    expect(o.rollout).toMatchObject({ unreadySince: 1000, fails: 0, phase: 'progressing' });
    // A window in which the split never picked the canary (little traffic) keeps the clock running.
    o = applyWindow(o.rollout, inconclusive, 2000, 3100, 'none');
    expect(o.rollout.unreadySince).toBe(1000);
    // The canary comes up and serves: the clock stops.
    const served = applyWindow(o.rollout, pass, 3000, 4100, 'served').rollout;
    expect(served.unreadySince).toBeUndefined();
    expect(served.passes).toBe(1);
    o = applyWindow(served, inconclusive, 4000, 5100, 'unready');
    expect(o.rollout.unreadySince).toBe(4000);
    o = applyWindow(o.rollout, inconclusive, 5000, 6100, 'none');
    expect(o.action).toBeUndefined();
    o = applyWindow(o.rollout, inconclusive, 6000, 7100, 'unready');
    expect(o.action).toBe('rolled_back');
    expect(o.rollout.reason).toBe('rolled back: no pod had version 2 ready for 3 s (limit 3 s); its share went to version 1');
    expect(trafficOf(o.rollout)).toEqual([{ version: 1, weight: 100 }]);
  });

  it('tells a canary that served, one whose share was given away, and one that got no share', () => {
    expect(canaryTrafficOf({ requests: 3, unready: 5 })).toBe('served');
    expect(canaryTrafficOf({ requests: 0, unready: 5 })).toBe('unready');
    expect(canaryTrafficOf({ requests: 0, unready: 0 })).toBe('none');
  });

  it.each([
    ['every router routed by the step', [{ router: 'a', routedBy: [{ revision: 9, traffic: [{ version: 2, weight: 10 }, { version: 1, weight: 90 }] }] }], false],
    ['a router from before routedBy is taken at its word', [{ router: 'a' }], false],
    ['a router still on the old split', [{ router: 'a', routedBy: [{ revision: 9, traffic: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }] }] }, { router: 'b', routedBy: [{ revision: 8, traffic: [{ version: 1, weight: 100 }] }] }], true],
    ['a router that followed the step during the window', [{ router: 'a', routedBy: [{ revision: 8, traffic: [{ version: 1, weight: 100 }] }, { revision: 9, traffic: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }] }] }], true],
    ['a router that knew no split', [{ router: 'a', routedBy: [{ revision: 0, traffic: [] }] }], true],
  ])('%s: the window is not counted: %p', (_n, routing, notCounted) => {
    expect(unsyncedRouting(base, routing) !== undefined).toBe(notCounted);
  });

  it('neither passes nor fails a window routers routed by another split, and notes the first of a run', () => {
    const off = unsyncedRouting(base, [{ router: 'b', routedBy: [{ revision: 8, traffic: [{ version: 1, weight: 100 }] }] }])!;
    expect(off).toBe('window not counted: the step is v1 90%, v2 10%, but 1 of 1 router reports routed otherwise: b by v1 100% (revision 8)');
    const once = applyWindow({ ...base, fails: 1 }, fail, 1000, 1500, 'served', off);
    expect(once).toEqual({ rollout: { ...base, fails: 1, lastWindow: 1000, unsyncedSince: 1000, unsyncedWindows: 1 }, notCounted: off });
    const twice = applyWindow(once.rollout, pass, 2000, 2500, 'served', off);
    expect(twice.rollout).toMatchObject({ passes: 0, fails: 1, lastWindow: 2000, unsyncedSince: 1000 });
    // Routers caught up: windows count again.
    const counted = applyWindow(twice.rollout, fail, 3000, 3500);
    expect(counted.action).toBe('rolled_back');
    expect(counted.rollout.unsyncedSince).toBeUndefined();
  });

  it('says why a window is not counted in a few hundred characters, whatever names and splits the reports carry', () => {
    const split = (i: number) => ({ revision: Number.MAX_SAFE_INTEGER - i, traffic: Array.from({ length: 16 }, (_, v) => ({ version: Number.MAX_SAFE_INTEGER - v, weight: 100 })) });
    const routing = Array.from({ length: 1000 }, (_, i) => ({ router: `router-${i}`.padEnd(349_000, 'x'), routedBy: Array.from({ length: 8 }, (_, s) => split(s)) }));
    const why = unsyncedRouting(base, routing)!;
    expect(why.length).toBeLessThanOrEqual(512);
    expect(why).toMatch(/^window not counted: the step is v1 90%, v2 10%, but 1000 of 1000 router reports routed otherwise: router-0x{55}… by /);
    // The usual case is said in full: a router that followed the step during the window.
    const stepped = [{ router: 'a', routedBy: [{ revision: 8, traffic: [{ version: 1, weight: 100 }] }, { revision: 9, traffic: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }] }] }];
    expect(unsyncedRouting(base, stepped)).toBe('window not counted: the step is v1 90%, v2 10%, but 1 of 1 router reports routed otherwise: a by v1 100% (revision 8) then v1 90%, v2 10% (revision 9)');
  });

  it('pauses the rollout after the most windows in a row not counted, naming the routers, and counts afresh after one that counts', () => {
    const off = unsyncedRouting(base, [{ router: 'router-b', routedBy: [{ revision: 8, traffic: [{ version: 1, weight: 100 }] }] }])!;
    let o = applyWindow(base, pass, 1000, 1500, 'served', off, 3);
    o = applyWindow(o.rollout, pass, 2000, 2500, 'served', off, 3);
    expect(o.rollout).toMatchObject({ phase: 'progressing', unsyncedWindows: 2 });
    // One window that counts ends the run.
    o = applyWindow(o.rollout, { result: 'inconclusive', reason: 'min-requests: only 3 canary requests' }, 3000, 3500, 'served', undefined, 3);
    expect(o.rollout.unsyncedWindows).toBeUndefined();
    for (const start of [4000, 5000]) o = applyWindow(o.rollout, pass, start, start + 500, 'served', off, 3);
    expect(o.action).toBeUndefined();
    o = applyWindow(o.rollout, pass, 6000, 6500, 'served', off, 3);
    expect(o.action).toBe('paused');
    expect(o.rollout).toMatchObject({ phase: 'paused', weight: 10, passes: 0, unsyncedSince: 4000, unsyncedWindows: 3 });
    expect(o.rollout.reason).toBe(`paused: 3 windows in a row were not counted (INFERMESH_ROLLOUT_MAX_UNCOUNTED_WINDOWS is 3); resume it once the routers follow the step. The last ${off}`);
    expect(o.rollout.reason).toContain('router-b by v1 100% (revision 8)');
    // Paused, windows change nothing.
    expect(applyWindow(o.rollout, pass, 7000, 7500, 'served', off, 3).rollout).toBe(o.rollout);
  });

  it('counts each window once, and does nothing when paused or manual', () => {
    const r = applyWindow(base, fail, 1000, 1500).rollout;
    expect(applyWindow(r, fail, 1000, 1600).rollout).toBe(r);
    expect(applyWindow({ ...base, phase: 'paused' }, fail, 1000, 1500).action).toBeUndefined();
    expect(applyWindow({ ...base, automatic: false }, fail, 1000, 1500).rollout.fails).toBe(0);
  });
});

/** A model 'm' serving version 1, with version 2 stored, over an in-memory store. */
function memoryStore() {
  let model: ModelRecord = { schema: 1, name: 'm', description: '', labels: {}, config: {}, latestVersion: 2, traffic: [{ version: 1, weight: 100 }], createdAt: 't' };
  const version = (v: number): VersionRecord => ({ schema: 1, model: 'm', version: v, sha256: 'x', sizeBytes: 10, createdAt: 't', inputs: [], outputs: [], state: 'AVAILABLE' });
  const store: RolloutStore = {
    getModel: async () => model,
    getVersion: async (_m, v) => version(v),
    listModels: async () => [model],
    servable: async (_m, v) => v === 1 || v === 2,
    updateModel: async (_n, mutate) => (model = await mutate(model)),
    checkPlaceable: () => undefined,
  };
  return { store, model: () => model };
}

describe('analysis at a step of 100%, where the stable version gets no traffic', () => {
  let now = 0;
  const WINDOW = 10_000;
  /** Judges the window after `now` with these versions' outcomes, and moves the clock past it. */
  const judgeWindow = async (rollouts: Rollouts, ...windows: VersionWindow[]) => {
    const start = now + WINDOW;
    now = start + WINDOW;
    await rollouts.analyseWindow('m', start, new Map(windows.map((w) => [w.version, w])));
  };
  const analysis = { windowsToAdvance: 1, windowsToFail: 1 };

  beforeEach(() => {
    now = 1_000_000;
  });

  it('promotes a healthy canary, judged against the stable\'s last window with traffic, not an empty one', async () => {
    const s = memoryStore();
    const rollouts = new Rollouts(s.store, () => now);
    await rollouts.start('m', 2, { weight: 50, steps: [50, 100], automatic: true, analysis }, 'tester');
    await judgeWindow(rollouts, windowOf(1, 50, 0, 8), windowOf(2, 50, 0, 8));
    expect(s.model().rollout).toMatchObject({ phase: 'progressing', weight: 100 });
    // A window in which routers still sent the stable a few requests is no baseline either.
    await judgeWindow(rollouts, windowOf(1, 3, 0, 1), windowOf(2, 100, 0, 16));
    const r = s.model().rollout!;
    // A p99 of 16 ms against the stable's 8 ms of the 50% step is within 3×: promoted, not rolled back.
    expect(r.phase).toBe('promoted');
    expect(r.reason).toContain('p99-latency: p99 16 ms vs stable 8 ms');
    expect(r.reason).toContain(`(stable as in its window of ${new Date(1_010_000).toISOString()}, its last with 10 requests or more: it served 3 in this one)`);
    expect(s.model().traffic).toEqual([{ version: 2, weight: 100 }]);
  });

  it('still rolls back a canary far slower or failing against that baseline', async () => {
    for (const bad of [windowOf(2, 100, 0, 100), windowOf(2, 50, 50, 8)]) {
      const s = memoryStore();
      const rollouts = new Rollouts(s.store, () => now);
      await rollouts.start('m', 2, { weight: 50, steps: [50, 100], automatic: true, analysis }, 'tester');
      await judgeWindow(rollouts, windowOf(1, 50, 0, 8), windowOf(2, 50, 0, 8));
      await judgeWindow(rollouts, bad);
      expect(s.model().rollout?.phase).toBe('rolled_back');
      expect(s.model().rollout?.reason).toContain('stable as in its window of');
    }
  });

  it('rolls back a canary failing every call while the stable serves less than the minimum', async () => {
    const s = memoryStore();
    const rollouts = new Rollouts(s.store, () => now);
    await rollouts.start('m', 2, { weight: 50, steps: [50, 100], automatic: true, analysis }, 'tester');
    for (let i = 0; i < 6 && s.model().rollout?.phase === 'progressing'; i++) await judgeWindow(rollouts, windowOf(2, 0, 9), windowOf(1, 9, 0));
    expect(s.model().rollout).toMatchObject({ phase: 'rolled_back' });
  });

  it('decides nothing while the stable never had the minimum of requests in a window of the rollout', async () => {
    const s = memoryStore();
    const rollouts = new Rollouts(s.store, () => now);
    await rollouts.start('m', 2, { weight: 100, steps: [100], automatic: true, analysis }, 'tester');
    for (let i = 0; i < 3; i++) await judgeWindow(rollouts, windowOf(2, 100, 0, 16));
    expect(s.model().rollout).toMatchObject({ phase: 'progressing', weight: 100, passes: 0, fails: 0 });
    expect(s.model().rollout?.baseline).toBeUndefined();
  });
});

describe('rollout history', () => {
  it('keeps its start and steps when a router flaps in and out of sync: one not_counted line for runs with no change between them', async () => {
    const s = memoryStore();
    let now = 1_000_000;
    const rollouts = new Rollouts(s.store, () => now);
    await rollouts.start('m', 2, { weight: 50, steps: [50, 100], automatic: true, analysis: { windowsToAdvance: 1, windowsToFail: 1 } }, 'tester');
    const stale = [{ router: 'router-b', routedBy: [{ revision: 8, traffic: [{ version: 1, weight: 100 }] }] }];
    const step = [{ router: 'router-b', routedBy: [{ revision: 9, traffic: [{ version: 1, weight: 50 }, { version: 2, weight: 50 }] }] }];
    // 100 windows, every other one routed by the old split; those that count have too few requests to decide.
    for (let i = 0; i < 100; i++) {
      const start = now + 10_000;
      now = start + 10_000;
      await rollouts.analyseWindow('m', start, new Map([[1, windowOf(1, 3, 0)], [2, windowOf(2, 3, 0)]]), i % 2 === 0 ? stale : step);
    }
    expect(s.model().rollout).toMatchObject({ phase: 'progressing', weight: 50 });
    expect(s.model().rolloutHistory?.map((e) => e.action)).toEqual(['started', 'not_counted']);
    // A change between two runs: the next run is noted again.
    await rollouts.pause('m', 'tester');
    await rollouts.resume('m', 'tester');
    now += 20_000;
    await rollouts.analyseWindow('m', now, new Map(), stale);
    expect(s.model().rolloutHistory?.map((e) => e.action)).toEqual(['started', 'not_counted', 'paused', 'resumed', 'not_counted']);
  });
});
