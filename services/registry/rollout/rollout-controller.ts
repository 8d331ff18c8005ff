// The rollout controller: gathers the per-version windows every router publishes, and once a window
// is over (plus a moment for late reports) hands the canary's and stable's merged windows of each
// model with a running rollout to the registry, which judges them and moves the rollout. Every
// registry replica runs one; the rollout record's compare-and-set and its lastWindow make each
// window count once, whichever replica gets there first.
import type { NatsConnection } from '../../../lib/nats';
import type { Logger } from '../../../lib/log';
import { DEFAULT_MAX_ROUTER_REPORTS, MAX_WINDOW_VERSIONS, WINDOW_SUBJECT_ALL, decodeWindowReport, emptyWindow, merge, type ReportRouting, type VersionWindow, type WindowReport } from '../../../lib/window-stats';

/** What the controller needs from the registry. */
export interface RolloutAnalysisTarget {
  /** Models whose rollout is progressing under automatic analysis. */
  analysedModels(): Promise<string[]>;
  /**
   * Every model the registry holds: reports about any other are dropped. Without it (or before its
   * first answer) every model's reports are kept.
   */
  knownModels?(): Promise<string[]>;
  /**
   * Judges one closed window of `model` (windows per version, merged over routers; `routing`: each
   * report's router and the splits it says it routed by; `incomplete`: why the window holds only
   * part of the routers' reports, which must not be counted).
   */
  analyseWindow(model: string, windowStart: number, windows: Map<number, VersionWindow>, routing: ReportRouting[], incomplete?: string): Promise<void>;
}

/** One model's window while its reports come in. */
interface OpenWindow {
  versions: Map<number, VersionWindow>;
  routing: ReportRouting[];
  /** The routers already merged: a second report of one is dropped, never counted twice. */
  routers: Set<string>;
  /** Reports of further routers refused past the bound. */
  refused: number;
  /** Reports refused for naming versions past MAX_WINDOW_VERSIONS, the window's with them. */
  refusedVersions: number;
}

/** Receives every closed window of every model, merged over routers (the console draws them). */
export type ClosedWindowListener = (model: string, windowStart: number, windows: ReadonlyMap<number, VersionWindow>) => void;

export class RolloutController {
  private readonly listeners = new Set<ClosedWindowListener>();
  private readonly windows = new Map<string, Map<number, OpenWindow>>();
  /** The registry's models as last listed (undefined: not yet). */
  private known: ReadonlySet<string> | undefined;
  private listing = false;
  private listedAt = -Infinity;
  /** A report named a model not in the last list: it may be new, list again at the next tick. */
  private unknownSeen = false;
  /** Every window that ended (with settleMs) before this was handed on by a tick: a report for one is late. */
  private closedBefore = -Infinity;
  /** Reports dropped since the last warning, by why (logged once per tick, not once per report). */
  private dropped = new Map<string, number>();
  private sub: { unsubscribe(): void } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly target: RolloutAnalysisTarget,
    private readonly windowMs: number,
    private readonly log: Logger,
    /** How long after a window ends late reports are still waited for. */
    private readonly settleMs = Math.min(1_000, windowMs / 2),
    /**
     * The registry's listening clock: right after a stall of its loop the routers' reports may sit
     * unread on the socket, and a window judged then would miss them for good (a window counts
     * once), so the analysis waits for the next tick. Default: judged at every tick.
     */
    private readonly listening?: { readonly catchingUp: boolean },
    /** Router reports merged into one window of one model (INFERMESH_ROLLOUT_MAX_ROUTER_REPORTS). */
    private readonly maxRouterReports = DEFAULT_MAX_ROUTER_REPORTS,
  ) {}

  /** Windows whose reports are being gathered now, every model's. */
  get openWindows(): number {
    let n = 0;
    for (const byWindow of this.windows.values()) n += byWindow.size;
    return n;
  }

  /** Calls `listener` with each window once it is over, for every model, analysed or not; returns how to stop. */
  onClosedWindow(listener: ClosedWindowListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(now = Date.now()): void {
    // A window over and settled before the controller listens had its reports sent before: one
    // arriving now came late, as one after a tick closed its window does. Without this every window
    // since the epoch is open until the first tick, which waits while the registry catches up.
    this.closedBefore = Math.max(this.closedBefore, now);
    this.refreshKnown();
    this.sub = this.nc.subscribe(WINDOW_SUBJECT_ALL, {
      callback: (err, msg) => {
        if (err) return;
        try {
          this.add(decodeWindowReport(msg.data));
        } catch (e) {
          this.log.warn('skipping malformed window report', { err: e });
        }
      },
    });
    this.timer = setInterval(() => {
      if (this.listening?.catchingUp) return;
      this.tick().catch((err: unknown) => {
        if (!this.stopped) this.log.warn('rollout analysis failed; the next window retries', { err });
      });
    }, Math.max(50, Math.floor(this.windowMs / 4)));
  }

  /**
   * Merges one router's report into its model's window. What is kept stays bounded whatever arrives
   * (any router identity may publish reports): only models the registry holds, only windows of the
   * registry's length and grid that no tick has closed yet and begun by now (a router's clock a
   * window ahead allowed), one report per router, at most maxRouterReports routers and
   * MAX_WINDOW_VERSIONS versions a window; past either the report is left out and the window marked
   * incomplete and not counted, so a flood of made-up routers or versions can hold a rollout (and
   * pause it) but never pass it.
   */
  private add(report: WindowReport, now = Date.now()): void {
    if (this.known && !this.known.has(report.model)) {
      this.unknownSeen = true;
      return this.drop('model the registry does not hold');
    }
    // One window per windowMs, as the routers cut them: a start off that grid would be a window of
    // its own, holding only its sender's report, judged and counted beside the real one.
    if (report.windowMs !== this.windowMs || report.windowStart % this.windowMs !== 0) return this.drop('window not one of INFERMESH_ANALYSIS_WINDOW_MS');
    // After a stall of the loop the reports read late are still merged: no tick closed their window.
    if (report.windowStart + this.windowMs + this.settleMs <= this.closedBefore) return this.drop('window already judged');
    if (report.windowStart > now + this.windowMs) return this.drop('window not begun');
    let byWindow = this.windows.get(report.model);
    if (!byWindow) this.windows.set(report.model, (byWindow = new Map()));
    let closing = byWindow.get(report.windowStart);
    if (!closing) byWindow.set(report.windowStart, (closing = { versions: new Map(), routing: [], routers: new Set(), refused: 0, refusedVersions: 0 }));
    if (closing.routers.has(report.router)) return this.drop('second report of a router for one window');
    if (closing.routers.size >= this.maxRouterReports) {
      closing.refused++;
      return this.drop('router reports past INFERMESH_ROLLOUT_MAX_ROUTER_REPORTS');
    }
    const byVersion = closing.versions;
    const added = new Set<number>();
    for (const v of report.versions) if (!byVersion.has(v.version)) added.add(v.version);
    if (byVersion.size + added.size > MAX_WINDOW_VERSIONS) {
      closing.refusedVersions++;
      return this.drop('reports naming more versions a window than its splits may list');
    }
    closing.routers.add(report.router);
    closing.routing.push({ router: report.router, routedBy: report.routedBy });
    for (const v of report.versions) {
      let w = byVersion.get(v.version);
      if (!w) byVersion.set(v.version, (w = emptyWindow(v.version)));
      merge(w, v);
    }
  }

  private drop(why: string): void {
    this.dropped.set(why, (this.dropped.get(why) ?? 0) + 1);
  }

  /** Lists the registry's models again, in the background; a failed listing keeps the last one. */
  private refreshKnown(now = Date.now()): void {
    if (!this.target.knownModels || this.listing) return;
    this.listing = true;
    this.listedAt = now;
    this.unknownSeen = false;
    this.target.knownModels().then((names) => {
      this.known = new Set(names);
    }, (err: unknown) => {
      if (!this.stopped) this.log.debug('cannot list the models; window reports are filtered by the last list', { err });
    }).finally(() => {
      this.listing = false;
    });
  }

  /** Analyses every window that is over. */
  async tick(now = Date.now()): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      // Once a window, and at the next tick after a report of a model not listed (one just pushed
      // loses the reports of its first window, no more). One read of the bucket's keys each.
      if (this.unknownSeen || now - this.listedAt >= this.windowMs) this.refreshKnown(now);
      if (this.dropped.size > 0) {
        this.log.warn('window reports dropped', { reports: Object.fromEntries(this.dropped) });
        this.dropped = new Map();
      }
      const due: [string, number, OpenWindow][] = [];
      this.closedBefore = Math.max(this.closedBefore, now);
      for (const [model, byWindow] of this.windows) {
        for (const [start, open] of byWindow) {
          if (start + this.windowMs + this.settleMs > now) continue;
          byWindow.delete(start);
          due.push([model, start, open]);
        }
        if (byWindow.size === 0) this.windows.delete(model);
      }
      if (due.length === 0) return;
      for (const [model, start, { versions }] of due) for (const l of this.listeners) l(model, start, versions);
      const analysed = new Set(await this.target.analysedModels());
      for (const [model, start, { versions, routing, refused, refusedVersions }] of due.sort((a, b) => a[1] - b[1])) {
        if (!analysed.has(model)) continue;
        const incomplete = refused > 0
          ? `window not counted: ${refused} more router reports came than INFERMESH_ROLLOUT_MAX_ROUTER_REPORTS (${this.maxRouterReports}) allows, and were left out`
          : refusedVersions > 0
            ? `window not counted: ${refusedVersions} router reports would have taken it past ${MAX_WINDOW_VERSIONS} versions, more than its splits may list, and were left out`
            : undefined;
        this.log.debug('analysing window', { model, windowStart: start, requests: Object.fromEntries([...versions].map(([v, w]) => [v, w.requests])) });
        await this.target.analyseWindow(model, start, versions, routing, incomplete).catch((err: unknown) => this.log.warn('window analysis failed', { model, err }));
      }
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.sub?.unsubscribe();
  }
}
