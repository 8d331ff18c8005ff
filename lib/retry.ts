// Retries for calls to NATS/JetStream, which stall for seconds while a cluster elects a new leader.

/** Options for retry(); defaults: 6 attempts, 200 ms first delay doubling up to 3 s. */
export interface RetryOptions {
  attempts?: number;
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** Which errors are worth another try (default: all). */
  retryable?: (err: unknown) => boolean;
}

/** Runs `fn` until it resolves, retrying retryable failures with exponential backoff. */
export async function retry<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 6;
  let delay = opts.firstDelayMs ?? 200;
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || (opts.retryable && !opts.retryable(err))) throw err;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, opts.maxDelayMs ?? 3_000);
    }
  }
}
