// What every suite is given: timings, concurrencies, and the shared load generator.
import type { Digit } from '../tools/models/mnist-data';
import type { CallerCredentials } from './h2-unary';
import type { LoadGenerator, LoadSpec } from './load';

/** Settings shared by the suites. */
export interface SuiteOptions {
  /** Repository root (models/, bench/results/). */
  root: string;
  /** Load before each measured window. */
  warmupMs: number;
  /** Each measured window. */
  durationMs: number;
  /** Rounds of every point, interleaved with the other paths' (the row shows their median). */
  rounds: number;
  /** Unmeasured load on each target before its first point, so V8 has compiled the hot paths. */
  primeMs: number;
  /** Closed-loop callers of each measured point. */
  concurrencies: number[];
  /** HTTP/2 connections the load generator opens, at most (never more than the callers). */
  maxConnections: number;
  /** Real held-out digits, and a load generator that cycles through them as batch-1 requests. */
  digits: Digit[];
  load: LoadGenerator;
  /** Progress lines (to stderr). */
  progress: (line: string) => void;
}

/** Callers of the priming load. */
const PRIME_CONCURRENCY = 16;

/** Sends the priming load to `address` and discards what it measured. */
export async function prime(opts: SuiteOptions, address: string, credentials?: CallerCredentials): Promise<void> {
  if (opts.primeMs <= 0) return;
  await opts.load.run({ ...loadSpec(opts, address, PRIME_CONCURRENCY, {}, credentials), warmupMs: 0, durationMs: opts.primeMs });
}

/** The load spec of one point: `concurrency` callers on `address` (with `credentials`: TLS, token), watching `cpuWatch`. */
export function loadSpec(opts: SuiteOptions, address: string, concurrency: number, cpuWatch: Record<string, number[]>, credentials?: CallerCredentials): LoadSpec {
  return {
    ...(credentials && { credentials }),
    address,
    concurrency,
    connections: Math.min(concurrency, opts.maxConnections),
    warmupMs: opts.warmupMs,
    durationMs: opts.durationMs,
    cpuWatch,
  };
}
