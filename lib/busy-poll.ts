// Busy polling of a thread's event loop: for a short window after its last piece of work, the loop
// keeps asking the kernel for events without waiting (an immediate keeps libuv's poll timeout at
// zero), so the next request finds the thread running instead of asleep in epoll_wait. Waking a
// sleeping thread costs tens of microseconds on bare metal and hundreds on a virtual machine whose
// idle CPUs halt; a request that follows the last answer within the window pays none of it. The
// same trade as onnxruntime's spinning intra-op threads (and Linux's net.core.busy_poll): CPU spent
// waiting for work while there is work about, none once the thread has been idle for the window.
// It polls only while its owner says the thread is quiet (nothing in flight elsewhere): under load
// the thread is woken by work anyway, and a polling thread would take a core from the threads that
// do that work, or from a client on the same machine.
import { performance } from 'node:perf_hooks';

export class BusyPoll {
  private readonly windowMs: number;
  private lastMs = 0;
  private polling = false;
  private stopped = false;
  private readonly tick = (): void => {
    if (!this.stopped && this.quiet() && this.now() - this.lastMs < this.windowMs) {
      setImmediate(this.tick);
    } else {
      this.polling = false;
    }
  };

  /**
   * `windowUs`: how long after the last touch the loop keeps polling (0: never polls). `quiet`: asked
   * on every turn of the loop; polling stops as soon as it says false (the thread has work in flight).
   * `now`: the clock the window is judged on, in ms (default performance.now).
   */
  constructor(
    windowUs: number,
    private readonly quiet: () => boolean = () => true,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.windowMs = windowUs / 1000;
  }

  /** Work was done on this thread now: poll until the window after it has passed, while quiet. */
  touch(): void {
    if (this.windowMs <= 0 || this.stopped || !this.quiet()) return;
    this.lastMs = this.now();
    if (this.polling) return;
    this.polling = true;
    setImmediate(this.tick);
  }

  /** Whether the loop is polling now. */
  get active(): boolean {
    return this.polling;
  }

  /** Stops polling for good (at shutdown, so that nothing keeps the loop turning). */
  stop(): void {
    this.stopped = true;
  }
}
