// What routers and the registry decide alike about the pods heartbeats claim. Heartbeats come from
// the pod NATS identity, which every pod shares, so one compromised pod can announce any number of
// pods: each costs a TLS handshake with the address it names (the identity probe) and a line of
// log when it fails. One policy bounds both: the pods a view keeps (newPodRefusal), the probes in
// flight and waiting (ProbeQueue, one per process's TLS material), how soon a failed proof is tried
// again, and the warnings about refused claims (ClaimWarnings: a line per interval, saying how many
// it stands for, not a line per pod). What a proven pod's heartbeat claims is asked of the pod
// (lib/heartbeat-confirmation.ts), at most once per interval, within a deadline, limited here too.
// lib/config.ts makes each limit an INFERMESH_* setting, its default taken from here.
import { performance } from 'node:perf_hooks';
import type { Logger } from './log';

/**
 * The limits on proving claims (INFERMESH_IDENTITY_PROBE_*, INFERMESH_IDENTITY_RETRY_MS,
 * INFERMESH_REFUSED_CLAIM_LOG_INTERVAL_MS, INFERMESH_HEARTBEAT_CONFIRM_*).
 */
export interface ClaimLimits {
  /** Identity probes (TLS handshakes) in flight at once. */
  identityProbeConcurrency: number;
  /** Probes waiting for one of those; beyond it a new claim is refused until one ends. */
  identityProbeQueue: number;
  /** A probe's handshake must end within this (ms). */
  identityProbeTimeoutMs: number;
  /** A claim whose proof failed (not listening yet, the wrong certificate) is tried again this often (ms). */
  identityRetryMs: number;
  /** A warning about refused claims is logged at most this often, per kind (ms; 0: each one). */
  refusedClaimLogIntervalMs: number;
  /** Least time between two questions to one proven pod about what its heartbeats claim (ms; 0: one at a time). */
  heartbeatConfirmIntervalMs: number;
  /** Deadline of such a question (ms); a goodbye that gets no answer within it twice in a row is honoured. */
  heartbeatConfirmTimeoutMs: number;
  /**
   * Most time between two questions about the versions of a proven pod whose answers keep
   * contradicting its heartbeats (ms): the wait doubles from the interval with each, up to this.
   */
  heartbeatConfirmBackoffMs: number;
  /**
   * Signature checks of heartbeats in one proven pod's name per second, for those going on from
   * the process a view knows, and as many for those naming another (lib/heartbeat-signatures.ts).
   */
  heartbeatVerifiesPerSecond: number;
}

/**
 * Defaults. A handshake takes milliseconds, so 64 at once prove thousands of pods a second, and a
 * flood of addresses that never answer holds 64 sockets, not one per pod; 1,024 waiting is Envoy's
 * circuit-breaker default for pending requests (max_pending_requests); 5 s is Envoy's default
 * connect_timeout; a failed proof is tried again as often as the TLS files are read
 * (INFERMESH_TLS_RELOAD_INTERVAL_MS: a certificate put right is seen within 5 s); one warning each
 * 5 s is Linux's printk_ratelimit. A proven pod is asked about its heartbeats' claims four times a
 * second at most (a real change, a version being unloaded, still leaves routing well within
 * INFERMESH_UNLOAD_GRACE_MS' 2 s), each question within 1 s (Kubernetes' probe timeoutSeconds); one
 * whose answers keep contradicting its heartbeats is asked its versions once a second at most, so a
 * real change under such a flood still leaves routing within that grace. A pod signs a heartbeat a
 * second, one at once for each change (a tick's changes share one) and one per discover answer (at
 * most one a second): 20 checks a second leave it room while it loads several versions, and cost a
 * view at most 40 checks a second per pod a forger floods, of 80 to 300 µs each (RSA 2048, ECDSA
 * P-256, Ed25519 over a 2 KB heartbeat, measured with node:crypto on a busy 2-core machine): about
 * 1% of a core.
 */
export const DEFAULT_CLAIM_LIMITS: Readonly<ClaimLimits> = Object.freeze({
  identityProbeConcurrency: 64,
  identityProbeQueue: 1_024,
  identityProbeTimeoutMs: 5_000,
  identityRetryMs: 5_000,
  refusedClaimLogIntervalMs: 5_000,
  heartbeatConfirmIntervalMs: 250,
  heartbeatConfirmTimeoutMs: 1_000,
  heartbeatConfirmBackoffMs: 1_000,
  heartbeatVerifiesPerSecond: 20,
});

/** The limits in `settings` (a service's Config), the defaults for those it lacks. */
export function claimLimitsOf(settings: Partial<ClaimLimits> | undefined): ClaimLimits {
  return {
    identityProbeConcurrency: settings?.identityProbeConcurrency ?? DEFAULT_CLAIM_LIMITS.identityProbeConcurrency,
    identityProbeQueue: settings?.identityProbeQueue ?? DEFAULT_CLAIM_LIMITS.identityProbeQueue,
    identityProbeTimeoutMs: settings?.identityProbeTimeoutMs ?? DEFAULT_CLAIM_LIMITS.identityProbeTimeoutMs,
    identityRetryMs: settings?.identityRetryMs ?? DEFAULT_CLAIM_LIMITS.identityRetryMs,
    refusedClaimLogIntervalMs: settings?.refusedClaimLogIntervalMs ?? DEFAULT_CLAIM_LIMITS.refusedClaimLogIntervalMs,
    heartbeatConfirmIntervalMs: settings?.heartbeatConfirmIntervalMs ?? DEFAULT_CLAIM_LIMITS.heartbeatConfirmIntervalMs,
    heartbeatConfirmTimeoutMs: settings?.heartbeatConfirmTimeoutMs ?? DEFAULT_CLAIM_LIMITS.heartbeatConfirmTimeoutMs,
    heartbeatConfirmBackoffMs: settings?.heartbeatConfirmBackoffMs ?? DEFAULT_CLAIM_LIMITS.heartbeatConfirmBackoffMs,
    heartbeatVerifiesPerSecond: settings?.heartbeatVerifiesPerSecond ?? DEFAULT_CLAIM_LIMITS.heartbeatVerifiesPerSecond,
  };
}

/**
 * Why a view that holds `known` pods, at most `max` (INFERMESH_ROUTER_MAX_PODS,
 * INFERMESH_REGISTRY_MAX_PODS), takes no heartbeat of a pod it does not know (undefined: it takes
 * it). A known pod's heartbeats always count; a new one waits until a pod goes.
 */
export function newPodRefusal(known: number, max: number): string | undefined {
  return known >= max ? `${known} pods are known, the most kept` : undefined;
}

interface Probe<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

/**
 * Probes of addresses, at most `concurrency` in flight and `queue` waiting, first come first
 * served; beyond that a probe is refused (the claim is tried again at a later heartbeat). A probe
 * of an address already running or waiting is shared, not made twice.
 */
export class ProbeQueue<T> {
  private running = 0;
  private readonly waiting: string[] = [];
  private readonly probes = new Map<string, Probe<T>>();

  constructor(private readonly run: (address: string) => Promise<T>, private readonly limits: Pick<ClaimLimits, 'identityProbeConcurrency' | 'identityProbeQueue'>) {}

  /** Whether probe(address) would be taken now. */
  admits(address: string): boolean {
    return this.probes.has(address) || this.running < this.limits.identityProbeConcurrency || this.waiting.length < this.limits.identityProbeQueue;
  }

  /** The probe of `address`, started now or when a slot frees; undefined: refused, every slot and place taken. */
  probe(address: string): Promise<T> | undefined {
    const known = this.probes.get(address);
    if (known) return known.promise;
    if (!this.admits(address)) return undefined;
    let resolve!: (value: T) => void;
    let reject!: (err: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.probes.set(address, { promise, resolve, reject });
    if (this.running < this.limits.identityProbeConcurrency) this.start(address);
    else this.waiting.push(address);
    return promise;
  }

  /** Probes in flight, and waiting. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  private start(address: string): void {
    const p = this.probes.get(address)!;
    this.running++;
    new Promise<T>((resolve) => resolve(this.run(address))).then(p.resolve, p.reject).finally(() => {
      this.running--;
      this.probes.delete(address);
      const next = this.waiting.shift();
      if (next !== undefined) this.start(next);
    });
  }
}

/**
 * Warnings about refused claims: each kind (its message) is logged at most once per `intervalMs`;
 * those in between are counted, and the next line of that kind says how many it stands for
 * (`alikeNotLogged`), so a flood of invented pods costs a line per interval, not a line per pod.
 */
export class ClaimWarnings {
  private readonly kinds = new Map<string, { at: number; alike: number }>();

  constructor(private readonly log: Logger, private readonly intervalMs: number, private readonly now: () => number = () => performance.now()) {}

  /**
   * Logs `message` unless one of its kind was logged within the interval (then counts it); true
   * when logged. `fields` may be a function, called only when the line is written.
   */
  warn(message: string, fields: Record<string, unknown> | (() => Record<string, unknown>)): boolean {
    const now = this.now();
    const kind = this.kinds.get(message);
    if (kind && now - kind.at < this.intervalMs) {
      kind.alike++;
      return false;
    }
    const written = typeof fields === 'function' ? fields() : fields;
    this.log.warn(message, kind?.alike ? { ...written, alikeNotLogged: kind.alike } : written);
    this.kinds.set(message, { at: now, alike: 0 });
    return true;
  }
}
