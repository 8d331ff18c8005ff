// Time during which this process could hear: wall time less the stretches its event loop was held
// up. Pods are forgotten by routers and the registry when no heartbeat came for a TTL; but a loop
// held up past the TTL (a long GC, a throttled container, a synchronous stall) comes back to its
// timers before it reads the heartbeats that queued on its socket meanwhile, and a silence it could
// not hear would forget pods that never stopped speaking. Measured on this clock, a silence counts
// only the time the loop was free to read: a pod still speaking is heard first, and a pod that did
// stop is forgotten a TTL of listening after its last heartbeat, later than on the wall clock by
// what the loop lost.

export class ListeningClock {
  private lastMs: number;
  private awayMs = 0;
  private timer: NodeJS.Timeout | undefined;

  /**
   * `tickMs`: how often the clock is read while nothing else reads it (start()); a gap of more than
   * two ticks between readings counts as the loop away, less the one tick it would have waited anyway.
   * `wall`: the clock it follows (default Date.now).
   */
  constructor(private readonly tickMs: number, private readonly wall: () => number = Date.now) {
    this.lastMs = wall();
  }

  /** Listening time in ms: the wall clock less every stretch the loop was away so far. */
  readonly now = (): number => {
    const t = this.wall();
    const gap = t - this.lastMs;
    if (gap > 2 * this.tickMs) this.awayMs += gap - this.tickMs;
    // A wall clock stepped back counts nothing, and the clock never runs backwards.
    if (gap > 0) this.lastMs = t;
    return this.lastMs - this.awayMs;
  };

  /** Time lost to a held-up loop so far, in ms. */
  get lostMs(): number {
    return this.awayMs;
  }

  /** Reads the clock every tick, so that idle stretches are not taken for a loop away; unref'd. */
  start(): this {
    this.timer ??= setInterval(this.now, this.tickMs).unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** The tick of a clock that judges silences of `ttlMs`: a tenth of it, at least 50 ms. */
export function listeningTickMs(ttlMs: number): number {
  return Math.max(50, Math.floor(ttlMs / 10));
}
