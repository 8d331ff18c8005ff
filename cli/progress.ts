// `infermesh push` progress on a terminal: bytes sent of the total, a bar, the rate and the time
// left, redrawn in place on one line at most ten times a second, then a final line. The CLI makes
// one only when stderr is a terminal, so piped output carries none of it.
import { formatBytes, formatDuration, formatRate } from './format';

/** Where progress is drawn: a terminal's stream (process.stderr). */
export interface ProgressStream {
  write(text: string): unknown;
}

/** Options of a PushProgress; by default the wall clock and ten redraws a second. */
export interface ProgressOptions {
  /** Milliseconds since some origin; default performance.now (below a millisecond: a first chunk can take less). */
  now?: () => number;
  /** Least time between two redraws, in ms; default 100. */
  redrawIntervalMs?: number;
}

const BAR_CELLS = 24;
const CLEAR_TO_END = '\x1b[K';

/**
 * One progress line: `12.0 MB / 64.0 MB  [#####-------------------]  19%  45.2 MB/s  1.1 s left`;
 * without a total, `12.0 MB sent  45.2 MB/s`. The rate is the average since the start.
 */
export function progressLine(sentBytes: number, totalBytes: number | undefined, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? (sentBytes * 1000) / elapsedMs : NaN;
  if (!totalBytes) return `${formatBytes(sentBytes)} sent  ${formatRate(rate)}`;
  const fraction = Math.min(1, sentBytes / totalBytes);
  const filled = Math.round(fraction * BAR_CELLS);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_CELLS - filled)}]`;
  const left = sentBytes >= totalBytes ? 'sent, the registry is checking it' : `${formatDuration(rate > 0 ? ((totalBytes - sentBytes) * 1000) / rate : NaN)} left`;
  return `${formatBytes(sentBytes)} / ${formatBytes(totalBytes)}  ${bar}  ${String(Math.floor(fraction * 100)).padStart(3)}%  ${formatRate(rate)}  ${left}`;
}

/** Draws a push's progress on one terminal line, redrawn in place. */
export class PushProgress {
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly started: number;
  private lastDraw = -Infinity;
  private sent = 0;
  private drawn = false;

  constructor(private readonly stream: ProgressStream, opts: ProgressOptions = {}) {
    this.now = opts.now ?? (() => performance.now());
    this.intervalMs = opts.redrawIntervalMs ?? 100;
    this.started = this.now();
  }

  /** Bytes handed to the registry so far (client/registry.ts PushOptions.onProgress); redraws when due. */
  update(sentBytes: number, totalBytes: number | undefined): void {
    this.sent = sentBytes;
    const t = this.now();
    // The last byte is always drawn: the registry's checks that follow can take a while.
    if (t - this.lastDraw < this.intervalMs && !(totalBytes && sentBytes >= totalBytes)) return;
    this.lastDraw = t;
    this.drawn = true;
    this.stream.write(`\r${progressLine(sentBytes, totalBytes, t - this.started)}${CLEAR_TO_END}`);
  }

  /**
   * Ends the line: when `ok`, `64.0 MB sent and stored in 1.4 s (45.7 MB/s)` (the time until the
   * registry answered); else only a line break after what was drawn, so an error starts a line.
   */
  finish(ok: boolean): void {
    const elapsed = this.now() - this.started;
    if (ok) this.stream.write(`\r${formatBytes(this.sent)} sent and stored in ${formatDuration(elapsed)} (${formatRate(elapsed > 0 ? (this.sent * 1000) / elapsed : NaN)})${CLEAR_TO_END}\n`);
    else if (this.drawn) this.stream.write('\n');
  }
}
