// Counts each model version's requests, server-side errors and latencies in windows aligned to the
// epoch, and hands every closed window to `publish` (the router sends it on NATS for the rollout
// controller). The same outcomes feed the router's cumulative metrics. No sockets here.
import type { Attributes, Counter, Histogram } from '@opentelemetry/api';
import { DURATION_BUCKETS_S, meterOf } from '../../lib/metrics';
import type { TrafficWeight } from '../../lib/events';
import { emptyWindow, MAX_ROUTED_SPLITS, record, sameSplit, type RoutedSplit, type VersionWindow, type WindowReport } from '../../lib/window-stats';

/** What a router routes a model by before it has read the model's split. */
const NO_SPLIT: RoutedSplit = Object.freeze({ revision: 0, traffic: [] });

/**
 * How a request ended for its version: served (`ok`), failed on the server's side (`error`), or
 * still at the version when its client's deadline passed (`deadline_exceeded`: an error of the
 * version's in its window, apart in the metric).
 */
export type VersionOutcome = 'ok' | 'error' | 'deadline_exceeded';

type OutcomeAttributes = { version: Attributes } & Record<VersionOutcome, Attributes>;

export class VersionStats {
  private windowStart: number;
  private readonly current = new Map<string, Map<number, VersionWindow>>();
  /** Each model's split in force. */
  private readonly splits = new Map<string, RoutedSplit>();
  /** The splits of the models whose split changed in the current window, in order (the first: the one in force when it began). */
  private readonly changed = new Map<string, RoutedSplit[]>();
  private timer: NodeJS.Timeout | undefined;
  /**
   * Metric attributes of the versions in each model's split, made once (the request path
   * allocates none); a model's go with it, a version's when it leaves the split (routedBy), so a
   * tenant pushing and deleting models does not grow every router. A version outside the split
   * (named by its request, or its model deleted while the call was in flight) gets attributes
   * made for its call alone, never kept. (The SDK keeps each series it has exported up to its
   * cardinality limit, 2,000 an instrument, past which new ones share an overflow series.)
   */
  private readonly attributes = new Map<string, Map<number, OutcomeAttributes>>();
  // Instruments are made per instance, after the SDK registered its meter provider.
  private readonly meter = meterOf('router');
  private readonly requests: Counter = this.meter.createCounter('infermesh.router.requests', {
    description: 'Requests routed, by model, version and outcome (ok; error: a server-side failure; deadline_exceeded: the client\'s deadline passed while the version had the request)',
  });
  private readonly duration: Histogram = this.meter.createHistogram('infermesh.router.request.duration.seconds', {
    description: 'Time from a request reaching the router to its answer, successful requests', unit: 's',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
  });
  private readonly unreadyRequests: Counter = this.meter.createCounter('infermesh.router.unready', {
    description: 'Requests the traffic split gave a version that went to another because no pod had it ready',
  });

  constructor(
    private readonly router: string,
    private readonly windowMs: number,
    private readonly publish: (report: WindowReport) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.windowStart = Math.floor(now() / windowMs) * windowMs;
  }

  /** Publishes each window as it closes. */
  start(): void {
    const tick = () => {
      this.roll();
      const next = this.windowStart + this.windowMs - this.now();
      this.timer = setTimeout(tick, Math.max(1, next));
    };
    this.timer = setTimeout(tick, Math.max(1, this.windowStart + this.windowMs - this.now()));
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  /**
   * Records one request's outcome; the window counts anything but `ok` as an error. `split`: the
   * traffic split chose the version. Only those go into the window the rollout analysis judges: a
   * request that names its version goes where its caller chose, so a caller allowed only to infer
   * could fail a canary (or hide its failures, or the stable's health) with requests of its own
   * making, tiny deadlines or inputs the model fails on. Through the split, whatever a caller
   * sends falls on stable and canary by their weights. The metrics count every request.
   */
  record(model: string, version: number, outcome: VersionOutcome, latencyMs: number, split: boolean): void {
    const ok = outcome === 'ok';
    if (split) record(this.window(model, version), ok, latencyMs);
    const a = this.attributesOf(model, version);
    this.requests.add(1, a[outcome]);
    if (ok) this.duration.record(latencyMs / 1000, a.version);
  }

  /**
   * Notes the split the router routes `model` by from now on (read at the model record's KV
   * `revision`); each report says what its window was routed by, so the rollout analysis can tell
   * a window routed by a step from one a router spent on another split. A new revision with the
   * same weights is no change of the split. An empty split (the model deleted, every version
   * archived) lets go of the model's metric attributes; a version that leaves it, of its own.
   */
  routedBy(model: string, revision: number, traffic: readonly TrafficWeight[]): void {
    this.roll();
    this.forgetBeyond(model, traffic);
    const before = this.splits.get(model) ?? NO_SPLIT;
    const now: RoutedSplit = { revision, traffic: traffic.map((t) => ({ version: t.version, weight: t.weight })) };
    if (traffic.length === 0) this.splits.delete(model);
    else this.splits.set(model, now);
    if (sameSplit(before.traffic, now.traffic)) {
      const list = this.changed.get(model);
      if (list) list[list.length - 1] = now;
      return;
    }
    let list = this.changed.get(model);
    if (!list) this.changed.set(model, (list = [before]));
    list.push(now);
    // More than one already says the split changed: the first and the latest are kept.
    if (list.length > MAX_ROUTED_SPLITS) list.splice(1, 1);
  }

  /** Counts a request the split gave `version` that went elsewhere: no pod had it ready. */
  unready(model: string, version: number): void {
    this.window(model, version).unready++;
    this.unreadyRequests.add(1, this.attributesOf(model, version).version);
  }

  /** Models with metric attributes kept. */
  get attributedModels(): number {
    return this.attributes.size;
  }

  /** Drops the attributes of `model`'s versions not in `traffic`. */
  private forgetBeyond(model: string, traffic: readonly TrafficWeight[]): void {
    const byVersion = this.attributes.get(model);
    if (!byVersion) return;
    for (const version of byVersion.keys()) {
      if (!traffic.some((t) => t.version === version)) byVersion.delete(version);
    }
    if (byVersion.size === 0) this.attributes.delete(model);
  }

  /** The attributes of `model`'s `version`, kept while the version is in the model's split. */
  private attributesOf(model: string, version: number): OutcomeAttributes {
    const kept = this.attributes.get(model)?.get(version);
    if (kept) return kept;
    const v = { model, version: String(version) };
    const a: OutcomeAttributes = { version: v, ok: { ...v, outcome: 'ok' }, error: { ...v, outcome: 'error' }, deadline_exceeded: { ...v, outcome: 'deadline_exceeded' } };
    // Checked here, where they would be kept, not only when the split changes (routedBy): a call
    // routed before its version left the split records after.
    if (this.splits.get(model)?.traffic.some((t) => t.version === version) !== true) return a;
    let byVersion = this.attributes.get(model);
    if (!byVersion) this.attributes.set(model, (byVersion = new Map()));
    byVersion.set(version, a);
    return a;
  }

  private window(model: string, version: number): VersionWindow {
    this.roll();
    let versions = this.current.get(model);
    if (!versions) this.current.set(model, (versions = new Map()));
    let w = versions.get(version);
    if (!w) versions.set(version, (w = emptyWindow(version)));
    return w;
  }

  /** Closes the current window if its time is over, publishing one report per model. */
  roll(): void {
    const start = Math.floor(this.now() / this.windowMs) * this.windowMs;
    if (start === this.windowStart) return;
    for (const [model, versions] of this.current) {
      const routedBy = this.changed.get(model) ?? [this.splits.get(model) ?? NO_SPLIT];
      this.publish({ schema: 1, router: this.router, model, windowStart: this.windowStart, windowMs: this.windowMs, versions: [...versions.values()], routedBy });
    }
    this.current.clear();
    this.changed.clear();
    this.windowStart = start;
  }
}
