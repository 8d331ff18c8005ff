// The rollout controller: gathers the per-version windows every router publishes, and once a window
// is over (plus a moment for late reports) hands the canary's and stable's merged windows of each
// model with a running rollout to the registry, which judges them and moves the rollout. Every
// registry replica runs one; the rollout record's compare-and-set and its lastWindow make each
// window count once, whichever replica gets there first.
import type { NatsConnection } from '../../../lib/nats';
import type { Logger } from '../../../lib/log';
import { WINDOW_SUBJECT_ALL, decodeWindowReport, emptyWindow, merge, type ReportRouting, type VersionWindow, type WindowReport } from '../../../lib/window-stats';

/** What the controller needs from the registry. */
export interface RolloutAnalysisTarget {
  /** Models whose rollout is progressing under automatic analysis. */
  analysedModels(): Promise<string[]>;
  /**
   * Judges one closed window of `model` (windows per version, merged over routers; `routing`: each
   * report's router and the splits it says it routed by).
   */
  analyseWindow(model: string, windowStart: number, windows: Map<number, VersionWindow>, routing: ReportRouting[]): Promise<void>;
}

/** Receives every closed window of every model, merged over routers (the console draws them). */
export type ClosedWindowListener = (model: string, windowStart: number, windows: ReadonlyMap<number, VersionWindow>) => void;

export class RolloutController {
  private readonly listeners = new Set<ClosedWindowListener>();
  private readonly windows = new Map<string, Map<number, { versions: Map<number, VersionWindow>; routing: ReportRouting[] }>>();
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
  ) {}

  /** Calls `listener` with each window once it is over, for every model, analysed or not; returns how to stop. */
  onClosedWindow(listener: ClosedWindowListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
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

  private add(report: WindowReport): void {
    let byWindow = this.windows.get(report.model);
    if (!byWindow) this.windows.set(report.model, (byWindow = new Map()));
    let closing = byWindow.get(report.windowStart);
    if (!closing) byWindow.set(report.windowStart, (closing = { versions: new Map(), routing: [] }));
    closing.routing.push({ router: report.router, routedBy: report.routedBy });
    const byVersion = closing.versions;
    for (const v of report.versions) {
      let w = byVersion.get(v.version);
      if (!w) byVersion.set(v.version, (w = emptyWindow(v.version)));
      merge(w, v);
    }
  }

  /** Analyses every window that is over. */
  async tick(now = Date.now()): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const due: [string, number, Map<number, VersionWindow>, ReportRouting[]][] = [];
      for (const [model, byWindow] of this.windows) {
        for (const [start, { versions, routing }] of byWindow) {
          if (start + this.windowMs + this.settleMs > now) continue;
          byWindow.delete(start);
          due.push([model, start, versions, routing]);
        }
        if (byWindow.size === 0) this.windows.delete(model);
      }
      if (due.length === 0) return;
      for (const [model, start, versions] of due) for (const l of this.listeners) l(model, start, versions);
      const analysed = new Set(await this.target.analysedModels());
      for (const [model, start, versions, routing] of due.sort((a, b) => a[1] - b[1])) {
        if (!analysed.has(model)) continue;
        this.log.debug('analysing window', { model, windowStart: start, requests: Object.fromEntries([...versions].map(([v, w]) => [v, w.requests])) });
        await this.target.analyseWindow(model, start, versions, routing).catch((err: unknown) => this.log.warn('window analysis failed', { model, err }));
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
