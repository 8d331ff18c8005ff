// The pods placement may put versions on, from their heartbeats. Heartbeats come from the pod NATS
// identity, which every pod shares, so with TLS on a heartbeat counts only once the address it
// names has proven, with its certificate, the identity it claims (as routers require before they
// send traffic: `claimedPodIdentity`, `probeIdentities`), and a proven pod stays at its address
// while its heartbeats keep coming: a heartbeat that names it elsewhere, or says goodbye for it
// from elsewhere, is ignored. Without TLS there is nothing to prove, and every heartbeat counts.
// Heartbeats can invent any number of pods: the view keeps INFERMESH_REGISTRY_MAX_PODS, the proofs
// share the process's bounded probes, and refusals are a warning line per interval, as routers do
// (lib/pod-claims.ts).
import type { Heartbeat } from '../../../lib/events';
import { plainHeardClock, type HeardClock } from '../../../lib/listening-clock';
import type { Logger } from '../../../lib/log';
import { claimLimitsOf, ClaimWarnings, newPodRefusal } from '../../../lib/pod-claims';
import { claimedPodIdentity, type TlsFiles } from '../../../lib/tls';
import type { PodSeen } from '../pod-view';

/** How long a failed proof stands before the address is tried again. */
const RETRY_MS = 5_000;
/**
 * Proofs remembered at most, or INFERMESH_REGISTRY_MAX_PODS if more (claims come from heartbeats,
 * which a pod can invent: when full, those not proven are forgotten first).
 */
const MAX_PROOFS = 1_024;

interface Proof {
  /** undefined while the probe runs. */
  proven: boolean | undefined;
  at: number;
  warned: boolean;
}

export class PlacementPods {
  private readonly pods = new Map<string, PodSeen>();
  private readonly proofs = new Map<string, Proof>();
  private readonly listeners = new Set<() => void>();
  private readonly warnings: ClaimWarnings;
  private frozen = false;

  /**
   * `ttlMs`: a pod with no counted heartbeat for this long is gone (INFERMESH_POD_TTL_MS);
   * `maxPods`: pods kept at most (INFERMESH_REGISTRY_MAX_PODS); `tls`: the registry's TLS material,
   * whose CA the pods' certificates must chain to (undefined: TLS off); `now`: the wall clock a
   * heartbeat's time is kept on; `heard`: the clock the TTL is judged on (the registry's
   * ListeningClock, so a stall of its own loop does not lose pods that kept speaking; default `now` alone).
   * `probe`: the identity probe of an address (default the TLS material's bounded probes,
   * TlsFiles.probes; undefined: refused, every probe taken).
   */
  constructor(
    private readonly ttlMs: number,
    private readonly maxPods: number,
    private readonly tls: TlsFiles | undefined,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly probe: (address: string, files: TlsFiles) => Promise<string[]> | undefined = (address, files) => files.probes.probe(address),
    private readonly heard: HeardClock = plainHeardClock(now),
  ) {
    this.warnings = new ClaimWarnings(log, claimLimitsOf(tls?.settings).refusedClaimLogIntervalMs);
  }

  /** Calls `fn` when a pod comes or goes. */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Takes a heartbeat (`bytes` on the wire), if it counts. */
  update(hb: Heartbeat, bytes: number): void {
    const held = this.pods.get(hb.pod);
    const fresh = held !== undefined && this.heard.heardUntil() - held.heardAt < this.ttlMs;
    if (this.tls && fresh && held.heartbeat.address !== hb.address) return;
    if (hb.state !== 'serving') {
      if (held && (!this.tls || held.heartbeat.address === hb.address)) this.remove(hb.pod);
      return;
    }
    // A full view spends no probe on a pod it could not take.
    const full = held ? undefined : newPodRefusal(this.pods.size, this.maxPods);
    if (full !== undefined) {
      this.warnings.warn('placement: a heartbeat of a pod not yet known is ignored', { pod: hb.pod, address: hb.address, reason: `${full} (INFERMESH_REGISTRY_MAX_PODS)` });
      return;
    }
    if (this.tls && !this.proven(hb)) return;
    this.pods.set(hb.pod, { heartbeat: hb, seenAt: this.now(), heardAt: this.heard.now(), bytes });
    if (!held) this.changed();
  }

  /**
   * While NATS is unreachable, or does not answer (lib/nats.ts NatsLiveness), no heartbeat can
   * arrive: no pod is gone for its silence, so no version is moved off it. When it is back, every
   * pod gets a fresh TTL.
   */
  setHeartbeatsAvailable(available: boolean): void {
    if (available && this.frozen) for (const p of this.pods.values()) p.heardAt = this.heard.now();
    this.frozen = !available;
  }

  /** The pods counted now (serving, heard within the TTL), by name. */
  list(): PodSeen[] {
    const limit = this.frozen ? -Infinity : this.heard.heardUntil() - this.ttlMs;
    let gone = false;
    for (const [name, p] of this.pods) {
      if (p.heardAt < limit) {
        this.pods.delete(name);
        gone = true;
      }
    }
    if (gone) this.changed();
    return [...this.pods.values()].sort((a, b) => (a.heartbeat.pod < b.heartbeat.pod ? -1 : a.heartbeat.pod > b.heartbeat.pod ? 1 : 0));
  }

  private remove(name: string): void {
    if (this.pods.delete(name)) this.changed();
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }

  /**
   * Makes room among the proofs: invented claims, which never prove anything, go, and the pods that
   * proved their addresses keep their proofs, so a flood of claims does not make every real pod
   * prove itself again while the probes are taken (its heartbeats would not count meanwhile, and
   * placement would drop it after the TTL). All go only when every one is proven.
   */
  private forgetProofs(): void {
    for (const [key, proof] of this.proofs) if (proof.proven !== true) this.proofs.delete(key);
    if (this.proofs.size >= Math.max(MAX_PROOFS, this.maxPods)) this.proofs.clear();
  }

  /** Whether `hb`'s address proved the identity it claims; starts the proof when none is known. */
  private proven(hb: Heartbeat): boolean {
    const identity = claimedPodIdentity(hb);
    const key = `${hb.address} ${identity}`;
    const now = this.now();
    let proof = this.proofs.get(key);
    if (proof?.proven) return true;
    if (proof && (proof.proven === undefined || now - proof.at < RETRY_MS)) return false;
    const probe = this.probe(hb.address, this.tls!);
    if (!probe) {
      // Tried again at the pod's next heartbeat.
      const load = this.tls?.probes?.load;
      this.warnings.warn('placement: pods wait to prove their addresses: every identity probe is taken', { pod: hb.pod, address: hb.address, ...(load && { running: load.running, waiting: load.waiting }) });
      return false;
    }
    if (!proof) {
      if (this.proofs.size >= Math.max(MAX_PROOFS, this.maxPods)) this.forgetProofs();
      this.proofs.set(key, (proof = { proven: undefined, at: now, warned: false }));
    }
    const p = proof;
    p.proven = undefined;
    p.at = now;
    void probe.then((ids) => ids.includes(identity), () => false).then((ok) => {
      p.proven = ok;
      p.at = this.now();
      // Marked warned only once its line was written: one kept back within the interval is tried again.
      if (!ok && !p.warned) p.warned = this.warnings.warn('placement: a heartbeat\'s address does not prove the identity it claims; no versions are placed there', { pod: hb.pod, address: hb.address, identity });
    });
    return false;
  }
}
