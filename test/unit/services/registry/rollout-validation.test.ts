// What a rollout command must be, through Rollouts over an in-memory store (every path, the gRPC
// handlers and the console, calls these): analysis settings finite and in the range their rule
// reads them in, 0 taking the default; a version from 1; whole weights in 0..100; a bounded reason
// without terminal controls.
// Anything else is INVALID_ARGUMENT naming the field, and nothing is stored.
import { ErrorCode, MeshError } from '../../../../lib/errors';
import type { MeshEvent } from '../../../../lib/events';
import { pendingEventOf, type ModelRecord, type VersionRecord } from '../../../../services/registry/records';
import { Rollouts, type RolloutStore, type StartOptions } from '../../../../services/registry/rollout/rollouts';
import { DEFAULT_ROLLOUT_ANALYSIS, type RolloutAnalysis } from '../../../../services/registry/rollout/rollout-state';
import { MAX_ROLLOUT_REASON_CHARS } from '../../../../services/registry/rollout/rollout-validation';

/** A model 'm' serving version 1, with version 2 stored; records what was read and written. */
function memoryStore() {
  let model: ModelRecord = { schema: 1, name: 'm', description: '', labels: {}, config: {}, latestVersion: 2, traffic: [{ version: 1, weight: 100 }], createdAt: 't' };
  const versionsRead: number[] = [];
  const events: MeshEvent[] = [];
  const version = (v: number): VersionRecord => ({ schema: 1, model: 'm', version: v, sha256: 'x', sizeBytes: 10, createdAt: 't', inputs: [], outputs: [], state: 'AVAILABLE' });
  const store: RolloutStore = {
    getModel: async () => model,
    getVersion: async (_m, v) => {
      versionsRead.push(v);
      return version(v === 0 ? 2 : v); // as the registry: 0 reads as the latest
    },
    listModels: async () => [model],
    servable: async (_m, v) => v === 1 || v === 2,
    // As the registry: a write's announcements leave its outbox once published.
    updateModel: async (_n, mutate) => {
      const { outbox, ...next } = await mutate(model);
      events.push(...(outbox ?? []).map((e) => pendingEventOf(e, next)));
      return (model = next);
    },
    checkPlaceable: () => undefined,
  };
  return { store, versionsRead, events, model: () => model };
}

const start = (analysis: Partial<RolloutAnalysis>, more: Partial<StartOptions> = {}): StartOptions => ({ weight: 10, steps: [10, 50], automatic: true, analysis, ...more });

async function refusal(p: Promise<unknown>): Promise<MeshError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(MeshError);
  expect((err as MeshError).code).toBe(ErrorCode.InvalidArgument);
  return err as MeshError;
}

describe('rollout analysis settings', () => {
  it.each<[string, Partial<RolloutAnalysis>, RolloutAnalysis]>([
    ['unset: the defaults', {}, DEFAULT_ROLLOUT_ANALYSIS],
    ['0 (proto3 unset): the defaults', { minRequests: 0, maxErrorRateIncreasePoints: 0, maxP99LatencyRatio: 0, windowsToFail: 0, windowsToAdvance: 0, readyTimeoutMs: 0 }, DEFAULT_ROLLOUT_ANALYSIS],
    ['the least of each', { minRequests: 1, maxErrorRateIncreasePoints: 0.1, maxP99LatencyRatio: 0.5, windowsToFail: 1, windowsToAdvance: 1, readyTimeoutMs: 1 },
      { minRequests: 1, maxErrorRateIncreasePoints: 0.1, maxP99LatencyRatio: 0.5, windowsToFail: 1, windowsToAdvance: 1, readyTimeoutMs: 1 }],
    ['no error-rate limit (100 points) and a loose latency limit', { maxErrorRateIncreasePoints: 100, maxP99LatencyRatio: 1000 }, { ...DEFAULT_ROLLOUT_ANALYSIS, maxErrorRateIncreasePoints: 100, maxP99LatencyRatio: 1000 }],
    ['uint32 extremes', { minRequests: 2 ** 32 - 1, readyTimeoutMs: 2 ** 32 - 1 }, { ...DEFAULT_ROLLOUT_ANALYSIS, minRequests: 2 ** 32 - 1, readyTimeoutMs: 2 ** 32 - 1 }],
  ])('takes %s', async (_name, given, stored) => {
    const s = memoryStore();
    await new Rollouts(s.store).start('m', 2, start(given), 'tester');
    expect(s.model().rollout?.analysis).toEqual(stored);
    // What the KV record keeps is what was judged: JSON does not turn any of it into null.
    expect(JSON.parse(JSON.stringify(s.model())).rollout.analysis).toEqual(stored);
  });

  it.each<[string, Partial<RolloutAnalysis>, RegExp]>([
    ['an infinite latency ratio', { maxP99LatencyRatio: Infinity }, /^analysis\.max_p99_latency_ratio Infinity is not a finite multiple of the stable p99, above 0 \(the rule has no off: a large ratio such as 1000 all but lifts the limit\); 0 or unset takes the default 3$/],
    ['a negative latency ratio', { maxP99LatencyRatio: -1 }, /^analysis\.max_p99_latency_ratio -1 is not a finite multiple/],
    ['a NaN latency ratio', { maxP99LatencyRatio: NaN }, /^analysis\.max_p99_latency_ratio NaN is not/],
    ['negative error points', { maxErrorRateIncreasePoints: -5 }, /^analysis\.max_error_rate_increase_points -5 is not a number of percentage points above 0, at most 100 \(100 lifts the limit.*\); 0 or unset takes the default 5$/],
    ['error points above 100', { maxErrorRateIncreasePoints: 100.5 }, /^analysis\.max_error_rate_increase_points 100\.5 is not/],
    ['infinite error points', { maxErrorRateIncreasePoints: Infinity }, /^analysis\.max_error_rate_increase_points Infinity is not/],
    ['a fractional request count', { minRequests: 1.5 }, /^analysis\.min_requests 1\.5 is not a whole number of requests, at least 1; 0 or unset takes the default 10$/],
    ['a negative request count', { minRequests: -1 }, /^analysis\.min_requests -1 is not/],
    ['a fractional windows_to_fail', { windowsToFail: 0.5 }, /^analysis\.windows_to_fail 0\.5 is not a whole number of windows, at least 1; 0 or unset takes the default 2$/],
    ['an infinite windows_to_advance', { windowsToAdvance: Infinity }, /^analysis\.windows_to_advance Infinity is not a whole number of windows, at least 1; 0 or unset takes the default 3$/],
    ['a negative ready timeout', { readyTimeoutMs: -1 }, /^analysis\.ready_timeout_ms -1 is not a whole number of milliseconds, at least 1; 0 or unset takes the default 300000$/],
    ['a fractional ready timeout', { readyTimeoutMs: 1.5 }, /^analysis\.ready_timeout_ms 1\.5 is not/],
    ['two bad settings: both named', { maxP99LatencyRatio: Infinity, maxErrorRateIncreasePoints: -5 }, /^analysis\.max_error_rate_increase_points -5 .*; analysis\.max_p99_latency_ratio Infinity /],
  ])('refuses %s with INVALID_ARGUMENT and stores nothing', async (_name, given, message) => {
    const s = memoryStore();
    const err = await refusal(new Rollouts(s.store).start('m', 2, start(given), 'tester'));
    expect(err.message).toMatch(message);
    expect(s.model().rollout).toBeUndefined();
    expect(s.events).toEqual([]);
  });
});

describe('rollout versions and weights', () => {
  it.each<[string, number, Partial<StartOptions>, RegExp]>([
    ['version 0 (not "the latest")', 0, {}, /^version 0 is not a version number: versions are numbered from 1$/],
    ['a negative version', -1, {}, /^version -1 is not a version number/],
    ['a fractional version', 1.5, {}, /^version 1\.5 is not a version number/],
    ['a weight over 100', 2, { weight: 101 }, /^weight 101 is not a whole percentage in 0\.\.100$/],
    ['a fractional weight', 2, { weight: 10.5 }, /^weight 10\.5 is not a whole percentage/],
    ['a step over 100', 2, { steps: [10, 101] }, /^step 101 is not a whole percentage in 0\.\.100$/],
    ['a negative step', 2, { steps: [-1, 10] }, /^step -1 is not a whole percentage/],
    ['steps not ascending', 2, { steps: [50, 10] }, /^steps 50, 10 are not ascending$/],
  ])('StartRollout refuses %s with INVALID_ARGUMENT before reading the store', async (_name, version, more, message) => {
    const s = memoryStore();
    const err = await refusal(new Rollouts(s.store).start('m', version, start({}, more), 'tester'));
    expect(err.message).toMatch(message);
    expect(s.versionsRead).toEqual([]);
    expect(s.model().rollout).toBeUndefined();
  });

  it.each([101, -1, 10.5, NaN])('SetRolloutWeight refuses %s with INVALID_ARGUMENT', async (weight) => {
    const s = memoryStore();
    const rollouts = new Rollouts(s.store);
    await rollouts.start('m', 2, start({}), 'tester');
    await refusal(rollouts.setWeight('m', weight, 'tester'));
    expect(s.model().rollout?.weight).toBe(10);
  });
});

describe('rollout reasons', () => {
  const commands = ['pause', 'rollback', 'promote'] as const;

  it.each(commands)('%s refuses a reason over MAX_ROLLOUT_REASON_CHARS with INVALID_ARGUMENT and records nothing', async (command) => {
    const s = memoryStore();
    const rollouts = new Rollouts(s.store);
    await rollouts.start('m', 2, start({}), 'tester');
    const before = s.model();
    const err = await refusal(rollouts[command]('m', 'tester', 'x'.repeat(MAX_ROLLOUT_REASON_CHARS + 1)));
    expect(err.message).toBe(`reason has ${MAX_ROLLOUT_REASON_CHARS + 1} characters, more than ${MAX_ROLLOUT_REASON_CHARS}`);
    expect(s.model()).toBe(before);
  });

  it.each(commands)('%s records a reason of MAX_ROLLOUT_REASON_CHARS', async (command) => {
    const s = memoryStore();
    const rollouts = new Rollouts(s.store);
    await rollouts.start('m', 2, start({}), 'tester');
    const reason = 'y'.repeat(MAX_ROLLOUT_REASON_CHARS);
    const status = await rollouts[command]('m', 'tester', reason);
    expect(status.rollout?.reason).toBe(reason);
    expect(status.history.at(-1)?.reason).toBe(reason);
  });

  it.each(commands)('%s refuses a reason holding a terminal control or a bidi override, and records nothing; line breaks and tabs pass', async (command) => {
    const s = memoryStore();
    const rollouts = new Rollouts(s.store);
    await rollouts.start('m', 2, start({}), 'tester');
    const before = s.model();
    for (const [reason, problem] of [['ok\x1b[2J\x1b]52;c;eA==\x07', 'a control character (U+001B) at character 3'], ['ok\u009b2J', 'a control character (U+009B) at character 3'], ['ok\u202e', 'a bidirectional override (U+202E) at character 3']]) {
      const err = await refusal(rollouts[command]('m', 'tester', reason!));
      expect(err.message).toMatch(new RegExp(`^reason holds ${problem!.replace(/[()+]/g, '\\$&')}: `));
    }
    expect(s.model()).toBe(before);
    expect((await rollouts[command]('m', 'tester', 'canary slow:\n\tp99 3x stable')).rollout?.reason).toBe('canary slow:\n\tp99 3x stable');
  });

  it('bounds reasons at 1024 characters, as a not-ready reason', () => {
    expect(MAX_ROLLOUT_REASON_CHARS).toBe(1024);
  });
});
