// How long a process has truly not heard from a pod. Routers and the registry forget a pod when no
// heartbeat came for a TTL; but a loop held up past the TTL (a long GC pause, a throttled
// container, a synchronous stall) comes back to its timers before it reads the heartbeats that
// queued on its socket meanwhile, and a sweep then would forget pods that never stopped speaking.
// This clock notices such a stall (a gap of more than two ticks between its readings) and, until
// the loop has gone once through its sockets (an immediate, which runs after them), says it has
// heard only up to where the stall began. A pod is judged silent over what was read, then: one
// still speaking is heard first, and one that did stop is forgotten at most a TTL plus the stall
// after its last heartbeat. Monotonic, so a wall clock stepped back or forth changes nothing.
import { performance } from 'node:perf_hooks';

/** The two readings a silence is judged with. */
export interface HeardClock {
  /** Now, in ms: when a heartbeat that arrives now was heard. */
  now(): number;
  /** Up to when everything that arrived has been read: now(), or where a stall not yet caught up on began. */
  heardUntil(): number;
}

/** A clock that judges on `now` alone, as if every stall were caught up on at once (tests, and the default). */
export function plainHeardClock(now: () => number): HeardClock {
  return { now, heardUntil: now };
}

export class ListeningClock implements HeardClock {
  private lastMs: number;
  /** Where a stall began, from its discovery until the loop has read its sockets after it. */
  private stallFrom: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stallCount = 0;

  /**
   * `tickMs`: how often the clock is read while nothing else reads it (start()); a gap of more than
   * two ticks between readings is a stall, one tick late being what a busy loop normally runs.
   * `time`: a monotonic clock in ms (default performance.now). `afterReads`: runs a function once the
   * loop has read its sockets (default setImmediate: the check phase follows the poll phase).
   */
  constructor(
    private readonly tickMs: number,
    private readonly time: () => number = () => performance.now(),
    private readonly afterReads: (fn: () => void) => void = (fn) => setImmediate(fn),
  ) {
    this.lastMs = time();
  }

  readonly now = (): number => {
    const t = this.time();
    if (this.stallFrom !== undefined) return t;
    if (t - this.lastMs > 2 * this.tickMs) {
      this.stallFrom = this.lastMs;
      this.stallCount++;
      this.afterReads(() => {
        this.stallFrom = undefined;
        this.lastMs = this.time();
      });
    } else if (t > this.lastMs) this.lastMs = t;
    return t;
  };

  readonly heardUntil = (): number => {
    const t = this.now();
    return this.stallFrom ?? t;
  };

  /** Between a stall's discovery and the loop's next read of its sockets: a judgement now would miss what is queued. */
  get catchingUp(): boolean {
    this.now();
    return this.stallFrom !== undefined;
  }

  /** Stalls noticed so far. */
  get stalls(): number {
    return this.stallCount;
  }

  /** Reads the clock every tick, so that an idle loop is not taken for a stalled one; unref'd. */
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

/**
 * Whether heartbeats can arrive (NATS connected and answering, lib/nats.ts NatsLiveness), for a
 * view that judges pods' silences: while they cannot, no silence is held against a pod; when they
 * can again, each pod's silence counts on from where it stood, not from zero. A fresh TTL for every
 * pod at each return would let a NATS that is late now and then (a probe late once a TTL) keep a
 * dead pod in view for ever.
 */
export class HeardPause {
  /** When heartbeats stopped being able to arrive, on the heard clock (undefined: they can). */
  private since: number | undefined;

  constructor(private readonly heard: HeardClock) {}

  /** Whether heartbeats cannot arrive now. */
  get paused(): boolean {
    return this.since !== undefined;
  }

  /**
   * Heartbeats can (`available`) or cannot arrive from now on. On their return, how a pod's
   * last-heard time moves on: by how long they could not arrive, and no later than now (a pod heard
   * during the pause was silent only since); undefined otherwise.
   */
  set(available: boolean): ((heardAt: number) => number) | undefined {
    if (!available) {
      this.since ??= this.heard.now();
      return undefined;
    }
    if (this.since === undefined) return undefined;
    const resumed = this.heard.now();
    const paused = resumed - this.since;
    this.since = undefined;
    return (heardAt) => Math.min(heardAt + paused, resumed);
  }
}
