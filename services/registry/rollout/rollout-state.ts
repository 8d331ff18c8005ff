// A rollout's state and the pure rules that move it: what traffic it implies, and what one analysed
// window does to it (count a pass or a failure, step forward, promote, roll back). No I/O here: the
// registry stores the state with compare-and-set and publishes the decisions.
import type { TrafficWeight } from '../../../lib/events';
import { DEFAULT_MAX_UNCOUNTED_WINDOWS, sameSplit, type ReportRouting, type VersionWindow } from '../../../lib/window-stats';
import { DEFAULT_ANALYSIS, type AnalysisSettings, type Verdict } from './analysis-rules';

/** Analysis settings of a rollout: the rules' thresholds and how many windows decide. */
export interface RolloutAnalysis extends AnalysisSettings {
  /** Consecutive failing windows that roll the canary back. */
  windowsToFail: number;
  /** Consecutive passing windows that move it to the next step (or promote it after the last). */
  windowsToAdvance: number;
  /** How long the canary's share may go to other versions because no pod has it ready. */
  readyTimeoutMs: number;
}

/** Defaults: 2 failing windows roll back, 3 passing windows step forward, 5 minutes to become ready. */
export const DEFAULT_ROLLOUT_ANALYSIS: RolloutAnalysis = { ...DEFAULT_ANALYSIS, windowsToFail: 2, windowsToAdvance: 3, readyTimeoutMs: 300_000 };

/** progressing: analysis may act; paused: weights hold; promoted / rolled_back: finished. */
export type RolloutPhase = 'progressing' | 'paused' | 'promoted' | 'rolled_back';

/** A model's rollout (stored in its KV record). */
export interface Rollout {
  stable: number;
  canary: number;
  /** The canary's share of traffic, in percent. */
  weight: number;
  /** Planned canary weights; after the last one passes, the canary is promoted. */
  steps: number[];
  /** Index in `steps` of the current weight (-1 when set by hand off the plan). */
  step: number;
  phase: RolloutPhase;
  /** Whether window analysis moves the rollout (otherwise only commands do). */
  automatic: boolean;
  analysis: RolloutAnalysis;
  /** Consecutive passing / failing windows at the current step. */
  passes: number;
  fails: number;
  /** windowStart of the last window analysed (a window is counted once, whichever replica sees it). */
  lastWindow: number;
  /** Epoch ms when the current step began; windows that started earlier are not counted for it. */
  stepStartedAt: number;
  /**
   * windowStart of the first of the windows in a row in which the canary served nothing and its
   * share went elsewhere because no pod had it ready; unset while it serves.
   */
  unreadySince?: number;
  /**
   * The stable version's last window of this rollout in which it served at least min_requests (and
   * when it began): what the canary is compared with while the stable gets too little traffic, as
   * at a step of 100% (see stableReference). Unset until there is one.
   */
  baseline?: { windowStart: number; window: VersionWindow };
  /**
   * windowStart of the first of the windows in a row not counted because a router routed by
   * another split than the step's (it had not followed the step yet); unset while windows count.
   */
  unsyncedSince?: number;
  /** How many windows in a row, since unsyncedSince, were not counted; unset while windows count. */
  unsyncedWindows?: number;
  reason: string;
}

/** One line of a rollout's history. */
export interface RolloutHistoryEntry {
  time: string;
  /** A change (as in its rollout.changed event), or `not_counted`: windows began not to count (unsyncedRouting). */
  action: 'started' | 'weight' | 'step' | 'promoted' | 'rolled_back' | 'paused' | 'resumed' | 'not_counted';
  stable: number;
  canary: number;
  weight: number;
  reason: string;
}

/** The traffic split a rollout implies. While it runs, the canary is listed even at weight 0, so pods load it. */
export function trafficOf(r: Rollout): TrafficWeight[] {
  switch (r.phase) {
    case 'promoted': return [{ version: r.canary, weight: 100 }];
    case 'rolled_back': return [{ version: r.stable, weight: 100 }];
    default: return [{ version: r.stable, weight: 100 - r.weight }, { version: r.canary, weight: r.weight }];
  }
}

/** The stable window a canary's window is compared with (stableReference). */
export interface StableReference {
  window: VersionWindow;
  /** When it began: the window judged, or the baseline's, earlier, when the stable had too few requests. */
  windowStart: number;
}

/**
 * What the canary's window starting at `windowStart` is compared with: the stable's same window
 * when it served at least min_requests in it; else the baseline, the last window of this rollout in
 * which it did (the stable at a step of 100% gets nothing, and an empty window is no baseline: it
 * reads 0 errors and a p99 of 0 ms, and a healthy canary was rolled back for a p99 of 16 ms
 * against it); else the same window, on which the comparisons give no verdict (analysis-rules.ts).
 */
export function stableReference(r: Rollout, stable: VersionWindow, windowStart: number): StableReference {
  if (stable.requests >= r.analysis.minRequests || !r.baseline) return { window: stable, windowStart };
  return r.baseline;
}

/**
 * `next` (the rollout after the window starting at `windowStart` was applied) keeping that window
 * as its baseline when the stable served at least min_requests in it.
 */
export function withBaseline(next: Rollout, stable: VersionWindow, windowStart: number): Rollout {
  return stable.requests >= next.analysis.minRequests ? { ...next, baseline: { windowStart, window: stable } } : next;
}

/** What one window did to a rollout. */
export interface WindowOutcome {
  rollout: Rollout;
  /** Set when the rollout's traffic changed, or (paused) it stopped for windows not counted. */
  action?: 'step' | 'promoted' | 'rolled_back' | 'paused';
  /** Set when the window was not counted because routers routed by another split: why. */
  notCounted?: string;
}

/** Longest router name a reason quotes (a name may be 253 characters; a reason is for people). */
const REASON_ROUTER_CHARS = 64;
/** Versions of a split a reason lists (the registry's splits have one or two). */
const REASON_SPLIT_VERSIONS = 4;
/** Routers a not-counted reason names. */
const REASON_ROUTERS = 3;
/** Longest not-counted reason: what the above allow, whatever numbers the reports carry. */
const NOT_COUNTED_REASON_CHARS = 512;

/** `text` cut to `max` characters, the cut marked. */
export function cutText(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

const splitText = (traffic: readonly TrafficWeight[]) => {
  if (traffic.length === 0) return 'no split';
  const listed = traffic.slice(0, REASON_SPLIT_VERSIONS).map((t) => `v${t.version} ${t.weight}%`).join(', ');
  return traffic.length > REASON_SPLIT_VERSIONS ? `${listed}, … (${traffic.length} versions)` : listed;
};

/** What a router says it routed by, in a few words: its first split, and its last when it changed. */
function routedByText(x: ReportRouting): string {
  const splits = x.routedBy ?? [];
  const text = (i: number) => `${splitText(splits[i]!.traffic)} (revision ${splits[i]!.revision})`;
  if (splits.length <= 1) return splits.length ? text(0) : 'no split';
  return `${text(0)} then ${splits.length > 2 ? `${splits.length - 2} more then ` : ''}${text(splits.length - 1)}`;
}

/**
 * Why a window cannot be judged at the rollout's current step: the routers whose report says they
 * routed the model by another split than the step's for some of the window (they had not followed
 * the step yet, or followed it during the window), with what they routed by; undefined when every
 * router routed by the step's split. A report without `routedBy` (a router from before it was
 * reported) is taken as routed by the step, as every report was before. The reason goes into the
 * rollout's history and a log line each window, so it counts the routers and names only a few,
 * their names cut: a few hundred characters whatever the reports say.
 */
export function unsyncedRouting(r: Rollout, routing: readonly ReportRouting[]): string | undefined {
  const step = trafficOf(r);
  const off = routing.filter((x) => x.routedBy !== undefined && !(x.routedBy.length === 1 && sameSplit(x.routedBy[0]!.traffic, step)));
  if (off.length === 0) return undefined;
  const routers = off.slice(0, REASON_ROUTERS).map((x) => `${cutText(x.router, REASON_ROUTER_CHARS)} by ${routedByText(x)}`);
  const reason = `window not counted: the step is ${splitText(step)}, but ${off.length} of ${routing.length} router reports routed otherwise: ${routers.join('; ')}${off.length > REASON_ROUTERS ? '; …' : ''}`;
  return cutText(reason, NOT_COUNTED_REASON_CHARS);
}

/**
 * What the canary's traffic looked like in a window: it `served` requests; it served none and its
 * share went to other versions because no pod had it ready (`unready`); or it got no share at all
 * (`none`: too little traffic for the split to pick it).
 */
export type CanaryTraffic = 'served' | 'unready' | 'none';

/** Classifies the canary's window. */
export function canaryTrafficOf(w: { requests: number; unready: number }): CanaryTraffic {
  return w.requests > 0 ? 'served' : w.unready > 0 ? 'unready' : 'none';
}

/**
 * Applies one window's verdict (the window started at `windowStart`; `now` is when it is applied).
 * After a step, windows that began before it are not counted: part of them ran at the old weight.
 * Windows in which the canary was `unready` are not judged; once it has not served since the first
 * of them for `readyTimeoutMs` (windows with no canary share in between do not reset the clock), the
 * canary is rolled back. A window some router routed by another split (`unsynced`, why) is not
 * counted; after `maxUncountedWindows` of them in a row the rollout is paused, for an operator to
 * look at those routers and resume it: a router whose report stays wrong would hold it for ever.
 */
export function applyWindow(
  r: Rollout, verdict: Verdict, windowStart: number, now: number, canary: CanaryTraffic = 'served', unsynced?: string,
  maxUncountedWindows = DEFAULT_MAX_UNCOUNTED_WINDOWS,
): WindowOutcome {
  if (r.phase !== 'progressing' || !r.automatic || windowStart <= r.lastWindow || windowStart < r.stepStartedAt) return { rollout: r };
  // Routers that routed by another split: the window is neither a pass nor a failure, nor does it
  // move the ready clock; the first of such windows in a row is noted in the history.
  if (unsynced !== undefined) {
    const uncounted = (r.unsyncedWindows ?? 0) + 1;
    const held: Rollout = { ...r, lastWindow: windowStart, unsyncedSince: r.unsyncedSince ?? windowStart, unsyncedWindows: uncounted };
    if (uncounted >= maxUncountedWindows) {
      const reason = `paused: ${uncounted} windows in a row were not counted (INFERMESH_ROLLOUT_MAX_UNCOUNTED_WINDOWS is ${maxUncountedWindows}); resume it once the routers follow the step. The last ${unsynced}`;
      return { rollout: { ...held, phase: 'paused', reason }, action: 'paused', notCounted: unsynced };
    }
    return { rollout: held, notCounted: unsynced };
  }
  const next: Rollout = { ...r, lastWindow: windowStart, unsyncedSince: undefined, unsyncedWindows: undefined, unreadySince: canary === 'served' ? undefined : r.unreadySince };
  if (canary === 'unready') {
    const since = r.unreadySince ?? windowStart;
    // Rollouts stored before the setting existed take the default.
    const limit = r.analysis.readyTimeoutMs || DEFAULT_ROLLOUT_ANALYSIS.readyTimeoutMs;
    if (now - since >= limit) {
      const reason = `rolled back: no pod had version ${r.canary} ready for ${Math.round((now - since) / 1000)} s (limit ${Math.round(limit / 1000)} s); its share went to version ${r.stable}`;
      return { rollout: { ...next, phase: 'rolled_back', weight: 0, reason }, action: 'rolled_back' };
    }
    return { rollout: { ...next, unreadySince: since } };
  }
  if (verdict.result === 'inconclusive') return { rollout: next };
  if (verdict.result === 'fail') {
    next.fails = r.fails + 1;
    next.passes = 0;
    if (next.fails >= r.analysis.windowsToFail) {
      return { rollout: { ...next, phase: 'rolled_back', weight: 0, reason: `rolled back after ${next.fails} failing windows: ${verdict.reason}` }, action: 'rolled_back' };
    }
    return { rollout: { ...next, reason: verdict.reason } };
  }
  next.passes = r.passes + 1;
  next.fails = 0;
  if (next.passes < r.analysis.windowsToAdvance) return { rollout: next };
  const following = r.steps.findIndex((w) => w > r.weight);
  if (following < 0) {
    return { rollout: { ...next, phase: 'promoted', weight: 100, reason: `promoted after ${next.passes} passing windows at ${r.weight}%: ${verdict.reason}` }, action: 'promoted' };
  }
  return {
    rollout: { ...next, weight: r.steps[following]!, step: following, passes: 0, fails: 0, stepStartedAt: now, reason: `${next.passes} passing windows at ${r.weight}%: stepping to ${r.steps[following]}%` },
    action: 'step',
  };
}
