// Rollouts: starting a canary, moving its weight, promoting, rolling back, pausing; and applying
// the controller's window verdicts. State lives in the model's KV record (compare-and-set), every
// change is a rollout.changed event plus a traffic.changed event, stored in the record's outbox by
// the same compare-and-set (so no change is ever left unannounced), and a bounded history is kept.
import { MeshError, ErrorCode } from '../../../lib/errors';
import type { EventInput, RolloutChangedEvent, TrafficWeight } from '../../../lib/events';
import type { Logger } from '../../../lib/log';
import type { ReportRouting, VersionWindow } from '../../../lib/window-stats';
import { DEFAULT_MAX_UNCOUNTED_WINDOWS, emptyWindow } from '../../../lib/window-stats';
import { announcing, type ModelRecord, type VersionRecord } from '../records';
import { judge, rulesFor } from './analysis-rules';
import { applyWindow, canaryTrafficOf, cutText, stableReference, trafficOf, unsyncedRouting, withBaseline, type Rollout, type RolloutAnalysis, type RolloutHistoryEntry } from './rollout-state';
import { analysisOf, checkReason, checkSteps, checkVersion, checkWeight, MAX_ROLLOUT_REASON_CHARS } from './rollout-validation';
import type { RolloutAnalysisTarget } from './rollout-controller';

/** What rollouts need from the registry's storage. */
export interface RolloutStore {
  getModel(name: string): Promise<ModelRecord>;
  getVersion(model: string, version: number): Promise<VersionRecord>;
  listModels(): Promise<ModelRecord[]>;
  /** Every model's name, without reading the records (default: listModels()'s names). */
  modelNames?(): Promise<string[]>;
  /** Whether a version exists and is AVAILABLE (checked inside the compare-and-set, so archive cannot slip past). */
  servable(model: string, version: number): Promise<boolean>;
  /**
   * Compare-and-set loop over the model's record; the events a mutation adds to its outbox
   * (announcing()) are published once its write won, or by a later flush. `announces`: every
   * write of this mutation adds events (the store may prepare for them once, before the loop).
   */
  updateModel(name: string, mutate: (m: ModelRecord) => ModelRecord | Promise<ModelRecord>, announces?: boolean): Promise<ModelRecord>;
  /** FAILED_PRECONDITION for a version no pod could hold (placement). */
  checkPlaceable(model: string, sizeBytes: number): void;
}

/** Options of start(). */
export interface StartOptions {
  weight: number;
  steps: number[];
  automatic: boolean;
  analysis: Partial<RolloutAnalysis>;
}

/** A model's traffic, rollout and history. */
export interface RolloutStatus {
  model: string;
  traffic: TrafficWeight[];
  rollout?: Rollout;
  history: RolloutHistoryEntry[];
}

/** Options of Rollouts. */
export interface RolloutsOptions {
  /** Windows in a row not counted before a rollout is paused (INFERMESH_ROLLOUT_MAX_UNCOUNTED_WINDOWS; default DEFAULT_MAX_UNCOUNTED_WINDOWS, 10). */
  maxUncountedWindows?: number;
}

/**
 * History lines kept, the oldest dropped: with each line's reason cut to MAX_ROLLOUT_REASON_CHARS,
 * the history stays under about 300 KB however its reasons were made (50 × 1024 characters, 6 bytes
 * each at worst as JSON), beside the model's metadata (INFERMESH_MAX_MODEL_METADATA_BYTES, 256 KiB),
 * so the record, and every write a rollback needs, fits NATS's 1 MiB max_payload.
 */
const HISTORY_LIMIT = 50;

/** `entry` with its reason cut to MAX_ROLLOUT_REASON_CHARS (lines stored before the cut are cut on the next write). */
const boundedEntry = (entry: RolloutHistoryEntry): RolloutHistoryEntry =>
  entry.reason.length <= MAX_ROLLOUT_REASON_CHARS ? entry : { ...entry, reason: cutText(entry.reason, MAX_ROLLOUT_REASON_CHARS) };

/** The principal named in the events of the rollout steps the registry's own analysis takes. */
export const CONTROLLER_PRINCIPAL = 'controller';
/**
 * What a rollout counts afresh from when set by hand or resumed: no passes or failures, windows from
 * now, and no run of windows not counted (routers get the full allowance to follow the new step).
 */
const afresh = (now: number): Partial<Rollout> => ({ passes: 0, fails: 0, stepStartedAt: now, unsyncedSince: undefined, unsyncedWindows: undefined });
const active = (r: Rollout | undefined): r is Rollout => r !== undefined && (r.phase === 'progressing' || r.phase === 'paused');

/** The version carrying most of a traffic split (the stable one). */
function mainVersion(traffic: TrafficWeight[]): number | undefined {
  return [...traffic].sort((a, b) => b.weight - a.weight || b.version - a.version)[0]?.version;
}

export class Rollouts implements RolloutAnalysisTarget {
  private readonly maxUncountedWindows: number;

  constructor(private readonly store: RolloutStore, private readonly now: () => number = Date.now, private readonly log?: Logger, options: RolloutsOptions = {}) {
    this.maxUncountedWindows = options.maxUncountedWindows ?? DEFAULT_MAX_UNCOUNTED_WINDOWS;
  }

  /**
   * Applies `change` to the model's running rollout (FAILED_PRECONDITION without one), records it and
   * announces it in the name of `by` (the principal, for the audit).
   */
  private async change(model: string, action: RolloutChangedEvent['action'], change: (r: Rollout) => Rollout, reason: string, by: string): Promise<RolloutStatus> {
    const m = await this.store.updateModel(model, (cur) => {
      if (!active(cur.rollout)) throw new MeshError(ErrorCode.FailedPrecondition, `model '${model}' has no rollout in progress`);
      const changed = change(cur.rollout);
      return this.announced(this.withRollout(cur, changed, action, reason), action, changed, by);
    }, true);
    return statusOf(m);
  }

  private withRollout(m: ModelRecord, r: Rollout, action: RolloutHistoryEntry['action'], reason: string): ModelRecord {
    const entry: RolloutHistoryEntry = { time: new Date(this.now()).toISOString(), action, stable: r.stable, canary: r.canary, weight: r.weight, reason };
    return { ...m, rollout: r, traffic: trafficOf(r), rolloutHistory: [...(m.rolloutHistory ?? []), entry].slice(-HISTORY_LIMIT).map(boundedEntry) };
  }

  /** `m` (written with rollout `r`) with its rollout.changed and traffic.changed events in its outbox, in the name of `by`. */
  private announced(m: ModelRecord, action: RolloutChangedEvent['action'], r: Rollout, by: string): ModelRecord {
    const events: EventInput[] = [
      { type: 'rollout.changed', model: m.name, action, stable: r.stable, canary: r.canary, weight: r.weight, phase: r.phase, reason: r.reason, principal: by },
      { type: 'traffic.changed', model: m.name, traffic: m.traffic, principal: by },
    ];
    return announcing(m, ...events);
  }

  /** Starts a canary of `version` beside the version serving now. */
  async start(model: string, version: number, opts: StartOptions, by: string): Promise<RolloutStatus> {
    checkVersion(version); // before getVersion, which reads 0 as the latest
    checkWeight(opts.weight);
    const steps = [...opts.steps];
    checkSteps(steps);
    const analysis = analysisOf(opts.analysis);
    const record = await this.store.getVersion(model, version); // NOT_FOUND for a version that never existed
    this.store.checkPlaceable(model, record.sizeBytes);
    const m = await this.store.updateModel(model, async (cur) => {
      if (!(await this.store.servable(model, version))) throw new MeshError(ErrorCode.FailedPrecondition, `model '${model}' version ${version} is archived or deleted`);
      if (active(cur.rollout)) {
        throw new MeshError(ErrorCode.FailedPrecondition, `model '${model}' already has a rollout of version ${cur.rollout.canary} in progress; promote or roll it back first`);
      }
      const stable = mainVersion(cur.traffic);
      if (stable === undefined) throw new MeshError(ErrorCode.FailedPrecondition, `model '${model}' serves no version yet`);
      if (stable === version) throw new MeshError(ErrorCode.FailedPrecondition, `model '${model}' version ${version} is already the one serving`);
      const started: Rollout = {
        stable, canary: version, weight: opts.weight, steps, step: steps.indexOf(opts.weight), phase: 'progressing',
        automatic: opts.automatic, analysis, passes: 0, fails: 0, lastWindow: 0, stepStartedAt: this.now(),
        reason: `canary of version ${version} at ${opts.weight}%`,
      };
      return this.announced(this.withRollout(cur, started, 'started', started.reason), 'started', started, by);
    }, true);
    return statusOf(m);
  }

  /** Sets the canary's weight by hand; analysis counts afresh from here. */
  async setWeight(model: string, weight: number, by: string): Promise<RolloutStatus> {
    checkWeight(weight);
    const reason = `weight set to ${weight}%`;
    return this.change(model, 'weight', (r) => ({ ...r, ...afresh(this.now()), weight, step: r.steps.indexOf(weight), reason }), reason, by);
  }

  /** The canary takes all traffic. */
  async promote(model: string, by: string, reason = 'promoted by hand'): Promise<RolloutStatus> {
    checkReason(reason);
    return this.change(model, 'promoted', (r) => ({ ...r, phase: 'promoted', weight: 100, reason }), reason, by);
  }

  /** All traffic back to the stable version. */
  async rollback(model: string, by: string, reason = 'rolled back by hand'): Promise<RolloutStatus> {
    checkReason(reason);
    return this.change(model, 'rolled_back', (r) => ({ ...r, phase: 'rolled_back', weight: 0, reason }), reason, by);
  }

  /** Holds the weights; analysis does not act. */
  async pause(model: string, by: string, reason = 'paused by hand'): Promise<RolloutStatus> {
    checkReason(reason);
    return this.change(model, 'paused', (r) => ({ ...r, phase: 'paused', reason }), reason, by);
  }

  resume(model: string, by: string): Promise<RolloutStatus> {
    const reason = 'resumed';
    return this.change(model, 'resumed', (r) => ({ ...r, ...afresh(this.now()), phase: 'progressing', reason }), reason, by);
  }

  /** Traffic in force, the latest rollout and its history. */
  async status(model: string): Promise<RolloutStatus> {
    return statusOf(await this.store.getModel(model));
  }

  async knownModels(): Promise<string[]> {
    return this.store.modelNames ? this.store.modelNames() : (await this.store.listModels()).map((m) => m.name);
  }

  async analysedModels(): Promise<string[]> {
    return (await this.store.listModels()).filter((m) => m.rollout?.phase === 'progressing' && m.rollout.automatic).map((m) => m.name);
  }

  /**
   * Judges one window of the canary against the stable version and moves the rollout; a window
   * some router routed by another split than the step's is not judged (unsyncedRouting), nor is one
   * the controller could not take every router's report of (`incomplete`, why).
   */
  async analyseWindow(model: string, windowStart: number, windows: Map<number, VersionWindow>, routing: ReportRouting[] = [], incomplete?: string): Promise<void> {
    let outcome: ReturnType<typeof applyWindow> | undefined;
    await this.store.updateModel(model, (cur) => {
      const r = cur.rollout;
      outcome = undefined;
      if (!r) return cur;
      const canary = windows.get(r.canary) ?? emptyWindow(r.canary);
      const stable = windows.get(r.stable) ?? emptyWindow(r.stable);
      const reference = stableReference(r, stable, windowStart);
      const verdict = judge(rulesFor(r.analysis), canary, reference.window);
      if (reference.windowStart !== windowStart) {
        verdict.reason += ` (stable as in its window of ${new Date(reference.windowStart).toISOString()}, its last with ${r.analysis.minRequests} requests or more: it served ${stable.requests} in this one)`;
      }
      const applied = applyWindow(r, verdict, windowStart, this.now(), canaryTrafficOf(canary), incomplete ?? unsyncedRouting(r, routing), this.maxUncountedWindows);
      if (applied.rollout === r) return cur;
      // A window not counted is no baseline either: part of its traffic went by another split.
      const o = applied.notCounted !== undefined ? applied : { ...applied, rollout: withBaseline(applied.rollout, stable, windowStart) };
      outcome = o;
      if (o.action) return this.announced(this.withRollout(cur, o.rollout, o.action, o.rollout.reason), o.action, o.rollout, CONTROLLER_PRINCIPAL);
      // The first window of a run not counted goes into the history, unless the line before says so
      // already: a router flapping in and out of sync begins a run every other window, and would
      // push the start and the steps out of the history's last lines. The log has every one.
      if (o.notCounted !== undefined && r.unsyncedSince === undefined && cur.rolloutHistory?.at(-1)?.action !== 'not_counted') {
        return this.withRollout(cur, o.rollout, 'not_counted', o.notCounted);
      }
      return { ...cur, rollout: o.rollout };
    });
    if (outcome?.notCounted !== undefined) this.log?.warn('rollout window not counted', { model, windowStart, reason: outcome.notCounted });
    if (outcome?.action === 'paused') this.log?.warn('rollout paused: windows in a row not counted', { model, reason: outcome.rollout.reason });
  }
}

function statusOf(m: ModelRecord): RolloutStatus {
  return { model: m.name, traffic: m.traffic, rollout: m.rollout, history: m.rolloutHistory ?? [] };
}
