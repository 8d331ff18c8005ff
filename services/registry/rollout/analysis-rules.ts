// Canary analysis rules: each compares one window of the canary with a window of the stable version
// (the same one, or the stable's last with traffic: rollout-state.ts `stableReference`) and says
// pass, fail or inconclusive, with a reason. A new rule is a new function here and a row in the
// table test; the controller only combines verdicts.
import { errorRate, latencyQuantile, type VersionWindow } from '../../../lib/window-stats';

/** A rule's verdict on one window. */
export interface Verdict {
  result: 'pass' | 'fail' | 'inconclusive';
  reason: string;
}

/** One analysis rule. */
export interface AnalysisRule {
  readonly name: string;
  evaluate(canary: VersionWindow, stable: VersionWindow): Verdict;
}

/** Thresholds of the built-in rules (defaults: see DEFAULT_ANALYSIS). */
export interface AnalysisSettings {
  /**
   * Fewer canary requests than this in a window: no verdict; fewer stable requests (successful
   * ones, for latency): no comparison with the stable version decides.
   */
  minRequests: number;
  /** Fail when the canary's error rate exceeds the stable one by more than this many percentage points. */
  maxErrorRateIncreasePoints: number;
  /** Fail when the canary's p99 latency exceeds this multiple of the stable p99. */
  maxP99LatencyRatio: number;
}

/** Defaults: 10 requests, +5 points of errors, 3× p99 latency. */
export const DEFAULT_ANALYSIS: AnalysisSettings = { minRequests: 10, maxErrorRateIncreasePoints: 5, maxP99LatencyRatio: 3 };

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** Enough canary traffic to judge at all. */
export function minRequestsRule(min: number): AnalysisRule {
  return {
    name: 'min-requests',
    evaluate: (canary) => canary.requests >= min
      ? { result: 'pass', reason: `${canary.requests} requests` }
      : { result: 'inconclusive', reason: `only ${canary.requests} canary requests (need ${min})` },
  };
}

/**
 * Why a comparison with `stable` decides nothing: it counted fewer than `min` (requests, or
 * successful ones), so its rate or quantile is no baseline (a stable that got no traffic, at a step
 * of 100%, would read 0 errors and a p99 of 0 ms). Undefined when it counted enough.
 */
function tooFewStable(counted: number, min: number, what: string): Verdict | undefined {
  return counted < min ? { result: 'inconclusive', reason: `stable served only ${counted} ${what} (need ${min} to compare with)` } : undefined;
}

/**
 * Canary error rate no more than `points` percentage points above stable's. While the stable
 * served fewer than `minStableRequests` there is no baseline to pass against, but a canary whose
 * errors alone pass the allowance (above 0%) still fails: a canary failing every call is rolled
 * back however little the stable serves.
 */
export function errorRateRule(points: number, minStableRequests: number): AnalysisRule {
  return {
    name: 'error-rate',
    evaluate(canary, stable) {
      const few = tooFewStable(stable.requests, minStableRequests, 'requests');
      if (few) {
        const alone = errorRate(canary);
        return alone * 100 > points
          ? { result: 'fail', reason: `canary error rate ${pct(alone)} exceeds ${points} points with no stable baseline (${few.reason})` }
          : few;
      }
      const c = errorRate(canary);
      const s = errorRate(stable);
      return c * 100 > s * 100 + points
        ? { result: 'fail', reason: `canary error rate ${pct(c)} exceeds stable ${pct(s)} by more than ${points} points` }
        : { result: 'pass', reason: `error rate ${pct(c)} vs stable ${pct(s)}` };
    },
  };
}

/**
 * Canary p99 latency no more than `ratio` × stable's (stable under 1 ms counts as 1 ms); no verdict
 * while the stable had fewer than `minStableRequests` successful requests (only those have a latency).
 */
export function latencyRule(ratio: number, minStableRequests: number): AnalysisRule {
  return {
    name: 'p99-latency',
    evaluate(canary, stable) {
      const c = latencyQuantile(canary, 0.99);
      const s = Math.max(1, latencyQuantile(stable, 0.99));
      if (canary.requests - canary.errors === 0) return { result: 'inconclusive', reason: 'no successful canary requests' };
      const few = tooFewStable(stable.requests - stable.errors, minStableRequests, 'successful requests');
      if (few) return few;
      return c > ratio * s
        ? { result: 'fail', reason: `canary p99 latency ${c} ms exceeds ${ratio}× stable p99 ${s} ms` }
        : { result: 'pass', reason: `p99 ${c} ms vs stable ${s} ms` };
    },
  };
}

/** The rules for `settings`, in the order they are reported. */
export function rulesFor(settings: AnalysisSettings): AnalysisRule[] {
  return [minRequestsRule(settings.minRequests), errorRateRule(settings.maxErrorRateIncreasePoints, settings.minRequests), latencyRule(settings.maxP99LatencyRatio, settings.minRequests)];
}

/**
 * Combines the rules' verdicts: any failure fails the window (even with little traffic — a canary
 * failing every call should not wait for volume); otherwise any inconclusive rule makes it
 * inconclusive; otherwise it passes.
 */
export function judge(rules: AnalysisRule[], canary: VersionWindow, stable: VersionWindow): Verdict {
  const verdicts = rules.map((r) => ({ rule: r.name, ...r.evaluate(canary, stable) }));
  const failed = verdicts.filter((v) => v.result === 'fail' && canary.requests > 0);
  if (failed.length) return { result: 'fail', reason: failed.map((v) => `${v.rule}: ${v.reason}`).join('; ') };
  const open = verdicts.filter((v) => v.result === 'inconclusive');
  if (open.length) return { result: 'inconclusive', reason: open.map((v) => `${v.rule}: ${v.reason}`).join('; ') };
  return { result: 'pass', reason: verdicts.map((v) => `${v.rule}: ${v.reason}`).join('; ') };
}
