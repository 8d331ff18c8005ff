// Retries for calls to NATS/JetStream, which stall for seconds while a cluster elects a new leader.

/** Options for retry(); defaults in DEFAULT_RETRY. */
export interface RetryOptions {
  attempts?: number;
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** Which errors are worth another try (default: all). */
  retryable?: (err: unknown) => boolean;
}

/** retry()'s defaults: 6 attempts, 200 ms first delay doubling up to 3 s (about 6 s of waits in all). */
export const DEFAULT_RETRY = Object.freeze({ attempts: 6, firstDelayMs: 200, maxDelayMs: 3_000 });

/**
 * How long one attempt of a JetStream request (a publish, a KV read or write) waits for its answer:
 * nats.js's default, which lib/nats.ts does not change.
 */
export const JETSTREAM_REQUEST_TIMEOUT_MS = 5_000;

/** The wait before attempt `attempt + 1` (attempt counts from 1): the backoff retry() follows. */
export function retryDelayMs(attempt: number, opts: Pick<RetryOptions, 'firstDelayMs' | 'maxDelayMs'> = {}): number {
  const first = opts.firstDelayMs ?? DEFAULT_RETRY.firstDelayMs;
  const max = opts.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs;
  return Math.min(first * 2 ** Math.min(attempt - 1, 52), max);
}

/**
 * The longest `attempts` attempts of up to `attemptMs` each take with retry()'s waits between them:
 * what a give-up that must outlast someone's retries has to cover (36 s for the defaults over
 * JETSTREAM_REQUEST_TIMEOUT_MS).
 */
export function retryWorstCaseMs(attemptMs: number, opts: Omit<RetryOptions, 'retryable'> = {}): number {
  const attempts = opts.attempts ?? DEFAULT_RETRY.attempts;
  let total = attempts * attemptMs;
  for (let i = 1; i < attempts; i++) total += retryDelayMs(i, opts);
  return total;
}

/** Runs `fn` until it resolves, retrying retryable failures with exponential backoff. */
export async function retry<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? DEFAULT_RETRY.attempts;
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || (opts.retryable && !opts.retryable(err))) throw err;
      await new Promise((r) => setTimeout(r, retryDelayMs(i, opts)));
    }
  }
}
