// Per-version request outcomes in fixed time windows: routers publish them, the rollout controller
// merges them across routers and compares a canary with its stable version. Windows are aligned to
// the epoch (start = k × windowMs) so reports from every router about the same window line up.
// Latencies are counted in fixed buckets, so windows from several routers merge exactly.
import { nameToken } from './nats';
import type { TrafficWeight } from './events';
import { isPodIdentityName } from './tls';

/** Subject of a model's window reports (the name as one token, lib/nats.ts `nameToken`). */
export const windowSubject = (model: string) => `infermesh.metrics.${nameToken(model)}`;
/** Every model's window reports. */
export const WINDOW_SUBJECT_ALL = 'infermesh.metrics.>';

/** Upper bounds (ms) of the latency buckets; the last one catches everything slower. */
export const LATENCY_BUCKETS_MS: readonly number[] = [0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, Infinity];

/** One version's outcomes in one window. */
export interface VersionWindow {
  version: number;
  requests: number;
  /** Requests that failed for a server-side reason (not the client's bad input). */
  errors: number;
  /** Counts per latency bucket (LATENCY_BUCKETS_MS), successful requests only. */
  latency: number[];
  /**
   * Requests the traffic split gave this version that went to another one because no pod had it
   * ready (not counted in `requests`).
   */
  unready: number;
}

/** A traffic split a router routed a model by: its weights, and the KV revision of the model record it read them from (0: none). */
export interface RoutedSplit {
  revision: number;
  /** Empty: the router knew no split, and sent requests to the newest version ready. */
  traffic: TrafficWeight[];
}

/** What one router saw of one model in one window. */
export interface WindowReport {
  schema: 1;
  router: string;
  model: string;
  /** Epoch ms, a multiple of windowMs. */
  windowStart: number;
  windowMs: number;
  versions: VersionWindow[];
  /**
   * Every split the router routed the model by in the window, in order: the one in force when it
   * began, then each other one it followed during it (at most MAX_ROUTED_SPLITS, the first and the
   * latest kept). The rollout analysis judges a step only on windows routed by the step's split.
   * Added to schema 1 as an optional field: absent from routers that predate it.
   */
  routedBy?: RoutedSplit[];
}

/** The most splits a report lists for one window (more than one already says the split changed in it). */
export const MAX_ROUTED_SPLITS = 8;
/**
 * The most versions a reported split may list. The registry's splits list one version, or two
 * during a rollout; anything longer is not a split a router read from it, and each report's
 * splits are kept until its window is judged, so 16 bounds what one report holds (8 × 16 weights).
 */
export const MAX_SPLIT_VERSIONS = 16;

/**
 * Windows in a row a rollout's analysis may leave uncounted (some router routed by another split
 * than the step's, or the registry left reports out past its bounds) before it pauses the rollout
 * (INFERMESH_ROLLOUT_MAX_UNCOUNTED_WINDOWS):
 * 10 windows of 10 s are three times a router's resync (INFERMESH_REGISTRY_RESYNC_INTERVAL_MS, 30
 * s), by which one that missed the step's event has read it.
 */
export const DEFAULT_MAX_UNCOUNTED_WINDOWS = 10;

/**
 * Router reports the registry merges into one window of one model (INFERMESH_ROLLOUT_MAX_ROUTER_REPORTS):
 * a router reports once a window, so this is a model's routers, and 256 is far beyond a fleet's (no
 * peer bounds it: Argo Rollouts and Flagger query one Prometheus). Each report kept holds its
 * router's name and splits (at most MAX_ROUTED_SPLITS × MAX_SPLIT_VERSIONS weights); the window,
 * at most MAX_WINDOW_VERSIONS versions' counts.
 */
export const DEFAULT_MAX_ROUTER_REPORTS = 256;

/**
 * The most versions the registry keeps of one window of one model, every router's reports merged.
 * A router counts only requests its split chose a version for (VersionStats.record), and one
 * window's splits are at most MAX_ROUTED_SPLITS of MAX_SPLIT_VERSIONS each (the registry's have one
 * or two versions): a report naming more, up to a whole NATS message of them, holds memory and
 * nothing the analysis reads. Past it the report is left out and the window is not counted.
 */
export const MAX_WINDOW_VERSIONS = MAX_ROUTED_SPLITS * MAX_SPLIT_VERSIONS;

/** Whether two splits give every version the same weight (their order aside). */
export function sameSplit(a: readonly TrafficWeight[], b: readonly TrafficWeight[]): boolean {
  if (a.length !== b.length) return false;
  const weights = new Map(a.map((t) => [t.version, t.weight]));
  return b.every((t) => weights.get(t.version) === t.weight);
}

/** A report's routers and what each said it routed by (undefined: a router that predates `routedBy`). */
export interface ReportRouting {
  router: string;
  routedBy?: RoutedSplit[];
}

/** An empty window for `version`. */
export function emptyWindow(version: number): VersionWindow {
  return { version, requests: 0, errors: 0, latency: LATENCY_BUCKETS_MS.map(() => 0), unready: 0 };
}

/** Adds one request's outcome. */
export function record(w: VersionWindow, ok: boolean, latencyMs: number): void {
  w.requests++;
  if (!ok) {
    w.errors++;
    return;
  }
  const i = LATENCY_BUCKETS_MS.findIndex((b) => latencyMs <= b);
  w.latency[i < 0 ? LATENCY_BUCKETS_MS.length - 1 : i]!++;
}

/** Adds `from` into `into` (same version). */
export function merge(into: VersionWindow, from: VersionWindow): void {
  into.requests += from.requests;
  into.errors += from.errors;
  into.unready += from.unready;
  from.latency.forEach((n, i) => (into.latency[i] = (into.latency[i] ?? 0) + n));
}

/** Error rate in [0, 1]; 0 without requests. */
export function errorRate(w: VersionWindow): number {
  return w.requests === 0 ? 0 : w.errors / w.requests;
}

/** The latency quantile `q` (0..1), as the upper bound of its bucket; 0 without successes. */
export function latencyQuantile(w: VersionWindow, q: number): number {
  const total = w.latency.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  let seen = 0;
  for (let i = 0; i < w.latency.length; i++) {
    seen += w.latency[i]!;
    if (seen >= q * total) return LATENCY_BUCKETS_MS[i]!;
  }
  return LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1]!;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Serialises a report. */
export function encodeWindowReport(r: WindowReport): Uint8Array {
  return encoder.encode(JSON.stringify(r));
}

/**
 * Whether `name` may name a router in a report: its INFERMESH_POD_NAME, checked at boot as a pod
 * identity is (1 to 253 letters, digits, `.`, `-` or `_`, as a Kubernetes pod name or a host name
 * and pid). The name goes into the rollout's reasons, history and logs, so a report with any other
 * is refused rather than carried there.
 */
const isRouterName = isPodIdentityName;

/** Parses and validates a report; throws on anything malformed. */
export function decodeWindowReport(bytes: Uint8Array): WindowReport {
  const r = JSON.parse(decoder.decode(bytes)) as Partial<WindowReport>;
  const nat = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (r.schema !== 1 || typeof r.router !== 'string' || typeof r.model !== 'string' || !nat(r.windowStart) || !nat(r.windowMs) || !Array.isArray(r.versions)) {
    throw new Error('malformed window report');
  }
  if (!isRouterName(r.router)) throw new Error('malformed window report: bad router name');
  for (const v of r.versions) {
    if (!nat(v.version) || !nat(v.requests) || !nat(v.errors) || !Array.isArray(v.latency) || v.latency.length !== LATENCY_BUCKETS_MS.length || !v.latency.every(nat)) {
      throw new Error('malformed window report: bad version entry');
    }
    // Reports from routers that predate `unready` count none.
    v.unready ??= 0;
    if (!nat(v.unready)) throw new Error('malformed window report: bad unready count');
  }
  if (r.routedBy !== undefined) {
    const isSplit = (x: RoutedSplit) => x !== null && typeof x === 'object' && nat(x.revision) && Array.isArray(x.traffic) && x.traffic.length <= MAX_SPLIT_VERSIONS
      && x.traffic.every((t) => t !== null && typeof t === 'object' && nat(t.version) && nat(t.weight));
    if (!Array.isArray(r.routedBy) || r.routedBy.length > MAX_ROUTED_SPLITS || !r.routedBy.every(isSplit)) throw new Error('malformed window report: bad routedBy');
  }
  return r as WindowReport;
}
