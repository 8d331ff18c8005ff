// What a rollout command must be before it touches the store: a version number, weights and steps
// in percent, analysis settings within the range their rule reads them in, a bounded reason. Every
// path (the gRPC handlers, the console) reaches these through Rollouts, so each check lives here once.
// Anything out of its domain is INVALID_ARGUMENT naming the field; nothing here does I/O.
import { errors } from '../../../lib/errors';
import { checkText } from '../../../lib/text';
import { DEFAULT_ROLLOUT_ANALYSIS, type RolloutAnalysis } from './rollout-state';

/**
 * Longest `reason` a command may record (1024 characters): it is kept in the rollout, in each of the
 * HISTORY_LIMIT history lines of the model's KV record and in the rollout.changed event, all NATS
 * messages (max_payload 1 MiB by default). The same bound as a not-ready reason
 * (lib/grpc/ready-reason.ts MAX_REASON_CHARS): text for people, not a log.
 */
export const MAX_ROLLOUT_REASON_CHARS = 1024;

/** A version to roll out: a whole number from 1 (versions are numbered from 1; there is no "latest" here). */
export function checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 1) throw errors.invalidArgument(`version ${version} is not a version number: versions are numbered from 1`);
}

/** A canary weight: a whole percentage in 0..100; `field` names it in the error. */
export function checkWeight(weight: number, field = 'weight'): void {
  if (!Number.isInteger(weight) || weight < 0 || weight > 100) throw errors.invalidArgument(`${field} ${weight} is not a whole percentage in 0..100`);
}

/** Planned weights: each a percentage, strictly ascending. */
export function checkSteps(steps: readonly number[]): void {
  steps.forEach((w) => checkWeight(w, 'step'));
  if (steps.some((w, i) => i > 0 && w <= steps[i - 1]!)) throw errors.invalidArgument(`steps ${steps.join(', ')} are not ascending`);
}

/**
 * A reason given by hand (pause, rollback, promote): at most MAX_ROLLOUT_REASON_CHARS characters of
 * free text (lib/text.ts: line breaks and tabs, no other control character nor bidi override), since
 * it is printed to whoever reads the rollout's status or the events.
 */
export function checkReason(reason: string): void {
  if (reason.length > MAX_ROLLOUT_REASON_CHARS) {
    throw errors.invalidArgument(`reason has ${reason.length} characters, more than ${MAX_ROLLOUT_REASON_CHARS}`);
  }
  checkText('reason', reason, 'text');
}

/** One analysis setting: its name on the wire, whether a value is in its domain, and that domain in words. */
interface SettingRule {
  field: string;
  valid(x: number): boolean;
  domain: string;
}

const count = (x: number) => Number.isSafeInteger(x) && x >= 1;

/**
 * The analysis settings' domains, as analysis-rules.ts and applyWindow (rollout-state.ts) read them.
 * 0 (proto3's unset) takes the default, so every domain starts above it. Infinity and NaN cannot be
 * stored (JSON writes them as null, read back as 0: the strictest latency limit), so none is taken.
 */
const SETTINGS: Record<keyof RolloutAnalysis, SettingRule> = {
  minRequests: { field: 'min_requests', valid: count, domain: 'a whole number of requests, at least 1' },
  maxErrorRateIncreasePoints: {
    field: 'max_error_rate_increase_points',
    valid: (x) => Number.isFinite(x) && x > 0 && x <= 100,
    domain: 'a number of percentage points above 0, at most 100 (100 lifts the limit: no error rate is more than 100 points above another)',
  },
  maxP99LatencyRatio: {
    field: 'max_p99_latency_ratio',
    valid: (x) => Number.isFinite(x) && x > 0,
    domain: 'a finite multiple of the stable p99, above 0 (the rule has no off: a large ratio such as 1000 all but lifts the limit)',
  },
  windowsToFail: { field: 'windows_to_fail', valid: count, domain: 'a whole number of windows, at least 1' },
  windowsToAdvance: { field: 'windows_to_advance', valid: count, domain: 'a whole number of windows, at least 1' },
  readyTimeoutMs: { field: 'ready_timeout_ms', valid: count, domain: 'a whole number of milliseconds, at least 1' },
};

/**
 * A rollout's analysis settings: each of `given` that is set (not undefined, not 0) is checked
 * against its domain and taken, the others take DEFAULT_ROLLOUT_ANALYSIS. Every setting out of its
 * domain is named in one INVALID_ARGUMENT.
 */
export function analysisOf(given: Partial<RolloutAnalysis>): RolloutAnalysis {
  const analysis: RolloutAnalysis = { ...DEFAULT_ROLLOUT_ANALYSIS };
  const problems: string[] = [];
  for (const [key, rule] of Object.entries(SETTINGS) as [keyof RolloutAnalysis, SettingRule][]) {
    const x = given[key];
    if (x === undefined || x === 0) continue;
    if (typeof x === 'number' && rule.valid(x)) analysis[key] = x;
    else problems.push(`analysis.${rule.field} ${String(x)} is not ${rule.domain}; 0 or unset takes the default ${DEFAULT_ROLLOUT_ANALYSIS[key]}`);
  }
  if (problems.length) throw errors.invalidArgument(problems.join('; '));
  return analysis;
}
