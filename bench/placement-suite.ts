// Suite `placement`: how long the placement controller's planner (services/registry/placement/plan.ts)
// takes for a full plan from nothing and for a re-plan after rates moved, at 1,000 versions on 10
// pods and 10,000 on 100 (target: under a second), and the sizes of what placement puts on NATS
// (records, heartbeats, events) at that scale. Pure computation: it needs no mesh.
import { performance } from 'node:perf_hooks';
import { decodeHeartbeat } from '../lib/events';
import { plan, versionKey, type HeldCopy, type Plan, type PlanOptions, type PlanPod, type PlanVersion } from '../services/registry/placement/plan';
import { num, table } from './markdown';
import type { SuiteOptions } from './suite-options';

const MB = 1_000_000;
const GB = 1_000_000_000;

/** A small deterministic PRNG (mulberry32): the same world for the same seed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** What a synthetic mesh looks like. */
export interface WorldSpec {
  versions: number;
  pods: number;
  seed: number;
  /** Pod budgets, uniform between the two (bytes). */
  budgetBytes: [number, number];
  /** Requests per second over all versions (Zipf-like: the i-th hottest gets total / (i · H)). */
  totalRate: number;
  /** Share of versions with no traffic at all. */
  coldShare: number;
}

/** 10,000 versions on 100 pods of 8–32 GB, 20,000 requests/s, a third of the versions cold. */
export const LARGE_WORLD: WorldSpec = { versions: 10_000, pods: 100, seed: 1, budgetBytes: [8 * GB, 32 * GB], totalRate: 20_000, coldShare: 1 / 3 };

/** The planner's settings in the suite and the tests. */
export const BENCH_PLAN_OPTIONS: Omit<PlanOptions, 'now'> = { requestsPerCopy: 100, minResidencyMs: 30_000, evictIdleMs: 10_000 };

/**
 * Synthetic versions and empty pods: sizes log-uniform over 0.1–200 MB, Zipf-like rates in random
 * order, min copies 0, 1, 2 in turn, 1% pinned (rollouts), 0.5% demanded.
 */
export function syntheticWorld(spec: WorldSpec): { versions: PlanVersion[]; pods: PlanPod[] } {
  const rnd = random(spec.seed);
  const harmonic = Array.from({ length: spec.versions }, (_, i) => 1 / (i + 1)).reduce((a, b) => a + b, 0);
  const ranks = shuffled(Array.from({ length: spec.versions }, (_, i) => i), rnd);
  const lo = Math.log(0.1 * MB);
  const hi = Math.log(200 * MB);
  const versions = ranks.map((rank, i): PlanVersion => {
    const model = `tenant${String(i % 500).padStart(3, '0')}-model${String(i).padStart(5, '0')}`;
    const version = 1 + (i % 3);
    const cold = rnd() < spec.coldShare;
    return {
      key: versionKey(model, version), model, version,
      minCopies: i % 3,
      memoryBytes: Math.round(Math.exp(lo + rnd() * (hi - lo))),
      rate: cold ? 0 : spec.totalRate / ((rank + 1) * harmonic),
      pinned: rnd() < 0.01,
      demanded: rnd() < 0.005,
    };
  });
  const pods = Array.from({ length: spec.pods }, (_, i): PlanPod => ({
    name: `infermesh-inference-7d9c8b6f5-${i.toString(36).padStart(5, '0')}`,
    budgetBytes: Math.round(spec.budgetBytes[0] + rnd() * (spec.budgetBytes[1] - spec.budgetBytes[0])),
    holds: new Map(),
  }));
  return { versions, pods };
}

/**
 * The versions a while later: `share` of them swap their rate with another's (so some cold ones
 * turn warm and some warm ones cold), and `demanded` versions that no pod holds are asked for.
 */
export function movedRates(versions: readonly PlanVersion[], placement: ReadonlyMap<string, readonly string[]>, seed: number, share: number, demanded: number): PlanVersion[] {
  const rnd = random(seed);
  const out = versions.map((v) => ({ ...v, demanded: false }));
  for (let n = Math.round(out.length * share); n > 0; n--) {
    const a = out[Math.floor(rnd() * out.length)]!;
    const b = out[Math.floor(rnd() * out.length)]!;
    [a.rate, b.rate] = [b.rate, a.rate];
  }
  const unplaced = out.filter((v) => !placement.has(v.key));
  for (let n = 0; n < demanded && unplaced.length > 0; n++) unplaced.splice(Math.floor(rnd() * unplaced.length), 1)[0]!.demanded = true;
  return out;
}

/**
 * The pods as their heartbeats would show `placement` at `now`: each copy placed at `placedAtMs`,
 * used just now if its version has traffic, else last at `placedAtMs`.
 */
export function podsHolding(pods: readonly PlanPod[], versions: readonly PlanVersion[], placement: ReadonlyMap<string, readonly string[]>, placedAtMs: number, now: number): PlanPod[] {
  const rateOf = new Map(versions.map((v) => [v.key, v.rate]));
  const holds = new Map<string, Map<string, HeldCopy>>(pods.map((p) => [p.name, new Map()]));
  for (const [key, names] of placement) {
    const lastUsedMs = (rateOf.get(key) ?? 0) > 0 ? now - 100 : placedAtMs;
    for (const name of names) holds.get(name)?.set(key, { placedAtMs, lastUsedMs, inflight: 0 });
  }
  return pods.map((p) => ({ ...p, holds: holds.get(p.name)! }));
}

function shuffled<T>(items: T[], rnd: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** One scenario: a full plan from nothing, then a re-plan 10 minutes later with rates moved. */
interface Scenario {
  label: string;
  spec: WorldSpec;
  /** Versions no pod holds that routers ask for at the re-plan. */
  demanded: number;
}

interface ScenarioResult {
  label: string;
  fullMs: number[];
  replanMs: number[];
  first: Plan;
  second: Plan;
}

const T0 = 1_700_000_000_000;
const LATER = 10 * 60_000;

function runScenario(s: Scenario, runs: number): ScenarioResult {
  const world = syntheticWorld(s.spec);
  const empty = new Map<string, string[]>();
  const fullMs: number[] = [];
  const replanMs: number[] = [];
  let first: Plan | undefined;
  let second: Plan | undefined;
  // One unmeasured run of each first, so V8 has compiled the planner.
  for (let i = 0; i <= runs; i++) {
    let t = performance.now();
    first = plan(world.versions, world.pods, empty, { ...BENCH_PLAN_OPTIONS, now: T0 });
    if (i > 0) fullMs.push(performance.now() - t);
    const versions = movedRates(world.versions, first.placement, s.spec.seed + 1, 0.1, s.demanded);
    const pods = podsHolding(world.pods, world.versions, first.placement, T0, T0 + LATER);
    t = performance.now();
    second = plan(versions, pods, first.placement, { ...BENCH_PLAN_OPTIONS, now: T0 + LATER });
    if (i > 0) replanMs.push(performance.now() - t);
  }
  return { label: s.label, fullMs, replanMs, first: first!, second: second! };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const copiesOf = (p: Plan) => [...p.placement.values()].reduce((n, pods) => n + pods.length, 0);
const changedVersions = (p: Plan) => new Set(p.changes.map((c) => c.key)).size;
const count = (p: Plan, action: string) => p.changes.filter((c) => c.action === action).length;

/** The plan table. */
export function planTable(results: ScenarioResult[]): string {
  return table(
    ['versions × pods', 'full plan ms (median)', 'min–max', 'copies', 'unmet', 're-plan ms (median)', 'min–max', 'placed', 'removed', 'evicted', 'unmet'],
    results.map((r) => [
      r.label,
      num(median(r.fullMs), 1), `${num(Math.min(...r.fullMs), 1)}–${num(Math.max(...r.fullMs), 1)}`,
      num(copiesOf(r.first)), num(r.first.unmet.length),
      num(median(r.replanMs), 1), `${num(Math.min(...r.replanMs), 1)}–${num(Math.max(...r.replanMs), 1)}`,
      num(count(r.second, 'placed')), num(count(r.second, 'removed')), num(count(r.second, 'evicted')), num(r.second.unmet.length),
    ]),
  );
}

/** JSON bytes of a value, as it goes on NATS. */
const jsonBytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v));

/** One heartbeat entry as pods send it (lib/events.ts PodModel with placement's fields). */
function heartbeatEntry(i: number) {
  return { name: `tenant${String(i % 500).padStart(3, '0')}-model${String(i).padStart(5, '0')}`, version: 1 + (i % 3), state: 'READY', provider: 'cpu', memoryBytes: 26_214_400 + i, requests: 1_234_567, idleMs: 1_234, inflight: 0 };
}

/** A pod's heartbeat holding `versions` versions, as JSON. */
export function heartbeat(versions: number): string {
  return JSON.stringify({
    schema: 1, pod: 'infermesh-inference-7d9c8b6f5-x2k9p', address: '10.244.12.34:8001', state: 'serving',
    models: Array.from({ length: versions }, (_, i) => heartbeatEntry(i)), inflight: 3,
    memory: { budgetBytes: 16 * GB, usedBytes: 12 * GB, rssBytes: 13 * GB }, time: new Date(T0).toISOString(),
  });
}

/** Bytes of a pod's heartbeat holding `versions` versions. */
export function heartbeatBytes(versions: number): number {
  return Buffer.byteLength(heartbeat(versions));
}

/** Microseconds to decode and validate one such heartbeat (lib/events.ts decodeHeartbeat), median of 9 rounds of 200. */
function heartbeatDecodeUs(versions: number): number {
  const bytes = new TextEncoder().encode(heartbeat(versions));
  const rounds: number[] = [];
  for (let r = 0; r < 10; r++) {
    const t = performance.now();
    for (let i = 0; i < 200; i++) decodeHeartbeat(bytes);
    if (r > 0) rounds.push(((performance.now() - t) * 1000) / 200);
  }
  return median(rounds);
}

/** The placement of one model's `versions` versions, each on `pods` pods, as its KV record carries it. */
export function placementBytes(versions: number, pods: number): number {
  const names = Array.from({ length: pods }, (_, i) => `infermesh-inference-7d9c8b6f5-${i.toString(36).padStart(5, '0')}`);
  return jsonBytes({
    schema: 1, model: 'tenant042-model00042',
    versions: Array.from({ length: versions }, (_, v) => ({ version: v + 1, pods: names, memoryBytes: 26_214_400 })),
  });
}

/** A model's own record (services/registry/records.ts ModelRecord) with one version serving and no rollout. */
export function modelRecordBytes(): number {
  return jsonBytes({
    schema: 1, name: 'tenant042-model00042', description: 'ranking model for the search page', labels: { team: 'search' },
    config: { dynamicBatching: { enabled: true, maxBatchSize: 8, maxQueueDelayUs: 500 } },
    latestVersion: 3, traffic: [{ version: 3, weight: 100 }], createdAt: new Date(T0).toISOString(),
  });
}

/** Followers of the models (lib/traffic-follower.ts) assumed in the computed rows: every pod and 3 routers. */
const FOLLOWERS = LARGE_WORLD.pods + 3;
/** Their full resync period (TrafficFollower's default). */
const RESYNC_MS = 30_000;

/** A placement.changed event for one version (lib/events.ts PlacementChangedEvent). */
export function placementEventBytes(pods: number): number {
  const names = Array.from({ length: pods }, (_, i) => `infermesh-inference-7d9c8b6f5-${i.toString(36).padStart(5, '0')}`);
  return jsonBytes({
    schema: 1, id: '0f8fad5b-d9cb-469f-a165-70867728950e', time: new Date(T0).toISOString(), model: 'tenant042-model00042', principal: 'controller',
    type: 'placement.changed', version: 1, pods: names, placed: names.slice(0, 1), removed: [], evicted: [], reason: 'load',
  });
}

/** The sizes table: what placement puts on NATS at 10,000 versions on 100 pods. */
export function sizesTable(large: ScenarioResult): string {
  const copies = copiesOf(large.first);
  const perPod = copies / LARGE_WORLD.pods;
  const maxPerPod = Math.max(...[...countPerPod(large.first.placement).values()]);
  const hb = heartbeatBytes(Math.round(perPod));
  const rows: string[][] = [
    ['placement of a model with 1 version on 2 pods', `${num(placementBytes(1, 2))} B`, 'measured (JSON)'],
    ['placement of a model with 3 versions on 2 pods', `${num(placementBytes(3, 2))} B`, 'measured (JSON)'],
    ['placement of a model with 1 version on 100 pods', `${num(placementBytes(1, 100))} B`, 'measured (JSON)'],
    ['one heartbeat entry', `${num(jsonBytes(heartbeatEntry(4242)))} B`, 'measured (JSON)'],
    ['heartbeat of a pod holding 100 versions', `${num(heartbeatBytes(100))} B`, 'measured (JSON)'],
    [`copies per pod after the full plan (mean; most)`, `${num(perPod, 1)}; ${num(maxPerPod)}`, 'measured (plan)'],
    [`heartbeat of a pod holding the mean`, `${num(hb)} B`, 'measured (JSON)'],
    ['heartbeats published, 100 pods at 1 s', `${num((hb * LARGE_WORLD.pods) / 1e6, 2)} MB/s`, 'computed'],
    ['decode one such heartbeat (decodeHeartbeat)', `${num(heartbeatDecodeUs(Math.round(perPod)))} µs`, 'measured'],
    ['decode 100 a second, every subscriber', `${num((heartbeatDecodeUs(Math.round(perPod)) * LARGE_WORLD.pods) / 1e4, 1)}% of a core`, 'computed'],
    ['placement.changed event, 1 pod placed', `${num(placementEventBytes(1))} B`, 'measured (JSON)'],
    ['versions changed by the full plan from nothing (an event and a record write each)', `${num(changedVersions(large.first))} (${num(large.first.changes.length)} changes)`, 'measured (plan)'],
    ['versions changed by the re-plan', `${num(changedVersions(large.second))} (${num(large.second.changes.length)} changes)`, 'measured (plan)'],
    [`GetModel calls the re-plan's events cause (${FOLLOWERS} followers each)`, num(changedVersions(large.second) * FOLLOWERS), 'computed'],
    ['model record, one version serving, no rollout', `${num(modelRecordBytes())} B`, 'measured (JSON)'],
    [`every model, as each of ${FOLLOWERS} followers reads them every ${RESYNC_MS / 1000} s`, `${num(((modelRecordBytes() + placementBytes(1, 2)) * LARGE_WORLD.versions * FOLLOWERS) / (RESYNC_MS / 1000) / 1e6, 1)} MB/s`, 'computed'],
  ];
  return table(['what', 'size', 'how'], rows);
}

function countPerPod(placement: ReadonlyMap<string, readonly string[]>): Map<string, number> {
  const n = new Map<string, number>();
  for (const pods of placement.values()) for (const p of pods) n.set(p, (n.get(p) ?? 0) + 1);
  return n;
}

/** The suite's scenarios. */
export const SCENARIOS: Scenario[] = [
  { label: '1,000 × 10', spec: { ...LARGE_WORLD, versions: 1_000, pods: 10 }, demanded: 5 },
  { label: '10,000 × 100', spec: LARGE_WORLD, demanded: 50 },
  // Memory short (1–3 GB a pod, about 200 GB for some 260 GB of first copies): unmet versions,
  // and demanded ones that evict idle copies.
  { label: '10,000 × 100, 1–3 GB pods', spec: { ...LARGE_WORLD, budgetBytes: [1 * GB, 3 * GB] }, demanded: 200 },
];

/** Runs the suite and returns its Markdown. */
export async function placementSuite(opts: SuiteOptions): Promise<string> {
  const runs = opts.rounds >= 3 ? 7 : 3;
  const results: ScenarioResult[] = [];
  for (const s of SCENARIOS) {
    opts.progress(`placement: ${s.label}, ${runs} runs`);
    results.push(runScenario(s, runs));
    await new Promise((r) => setImmediate(r));
  }
  const large = results.find((r) => r.label === '10,000 × 100')!;
  const verdict = median(large.fullMs) < 1_000 && median(large.replanMs) < 1_000 ? 'met' : 'missed';
  return [
    '## Suite `placement`: the placement planner at 1,000 and 10,000 versions',
    '',
    `A full plan from an empty placement, then a re-plan 10 minutes later with 10% of rates swapped and some unheld versions demanded; median of ${runs} runs after one unmeasured run. Sizes 0.1–200 MB log-uniform, Zipf-like rates (20,000 requests/s in all, a third of the versions cold), min copies 0/1/2, ${BENCH_PLAN_OPTIONS.requestsPerCopy} requests/s per copy.`,
    '',
    planTable(results),
    '',
    `Target (10,000 × 100 under 1 s, full and re-plan): **${verdict}**.`,
    '',
    '### What placement puts on NATS at 10,000 × 100',
    '',
    sizesTable(large),
  ].join('\n');
}
