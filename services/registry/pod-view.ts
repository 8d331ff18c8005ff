// The pods as the registry sees them, for people (ListPods, the console) and for placement: each
// pod's latest heartbeat, kept while heartbeats come and shown draining while it drains. Routing
// does not read this; the routers' membership decides where calls go, with health checks and TLS
// identities.
import type { Heartbeat } from '../../lib/events';
import { HeardPause, plainHeardClock, type HeardClock } from '../../lib/listening-clock';
import type { Pod__Output as Pod } from '../../lib/grpc/generated/infermesh/registry/v1/Pod';
import type { Caller } from './access';

/** A pod as its latest heartbeat says, and when that came. */
export interface PodSeen {
  heartbeat: Heartbeat;
  /** Epoch ms of the latest heartbeat. */
  seenAt: number;
  /** When it came on the view's heard clock (monotonic: what the TTL is judged on). */
  heardAt: number;
  /** The heartbeat's size on the wire (what the view's byte budget counts). */
  bytes: number;
}

/** Receives the pods after every heartbeat and every pod that goes (listeners throttle what they pass on). */
export type PodViewListener = (pods: readonly PodSeen[]) => void;

export class PodView {
  private readonly pods = new Map<string, PodSeen>();
  private readonly listeners = new Set<PodViewListener>();
  private bytes = 0;
  private readonly pause: HeardPause;

  /**
   * `ttlMs`: a pod with no heartbeat for this long is forgotten (INFERMESH_POD_TTL_MS, as the
   * routers); `maxPods` and `maxBytes`: pods and heartbeat bytes kept at most, a heartbeat that
   * does not fit ignored (INFERMESH_REGISTRY_MAX_PODS, _MAX_POD_BYTES: a bound on memory whatever
   * arrives on the subject). `now`: the wall clock a heartbeat's time is shown on; `heard`: the
   * clock silences are judged on (the registry's ListeningClock, so a stall of its own loop is not
   * taken for pods gone; default `now` alone).
   */
  constructor(private readonly ttlMs: number, private readonly maxPods: number, private readonly maxBytes: number, private readonly now: () => number = Date.now, private readonly heard: HeardClock = plainHeardClock(now)) {
    this.pause = new HeardPause(heard);
  }

  /** Applies a heartbeat of `bytes` on the wire: `stopped` forgets the pod at once. */
  update(hb: Heartbeat, bytes: number): void {
    const before = this.pods.get(hb.pod);
    if (hb.state === 'stopped') {
      if (before) this.forget(hb.pod, before);
      return;
    }
    if (!before && this.pods.size >= this.maxPods) return;
    if (this.bytes - (before?.bytes ?? 0) + bytes > this.maxBytes) return;
    this.bytes += bytes - (before?.bytes ?? 0);
    this.pods.set(hb.pod, { heartbeat: hb, seenAt: this.now(), heardAt: this.heard.now(), bytes });
    this.changed();
  }

  private forget(name: string, p: PodSeen): void {
    this.pods.delete(name);
    this.bytes -= p.bytes;
    this.changed();
  }

  /**
   * While NATS is unreachable, or does not answer (lib/nats.ts NatsLiveness), no heartbeat can
   * arrive: no pod is forgotten for its silence. When it is back, each pod's silence counts again
   * from where it stood (HeardPause), so a NATS that is late now and then keeps no dead pod.
   */
  setHeartbeatsAvailable(available: boolean): void {
    const shift = this.pause.set(available);
    if (shift) for (const p of this.pods.values()) p.heardAt = shift(p.heardAt);
  }

  /** Forgets pods whose heartbeats stopped; call it about once a TTL. */
  expire(): void {
    if (this.pause.paused) return;
    const limit = this.heard.heardUntil() - this.ttlMs;
    for (const [name, p] of this.pods) {
      if (p.heardAt < limit) this.forget(name, p);
    }
  }

  /** Every pod known, by name. */
  list(): PodSeen[] {
    return [...this.pods.values()].sort((a, b) => (a.heartbeat.pod < b.heartbeat.pod ? -1 : a.heartbeat.pod > b.heartbeat.pod ? 1 : 0));
  }

  /**
   * The pods as `caller` may see them (ListPods and the console): only to a caller that reads some
   * model (PERMISSION_DENIED otherwise), each pod's versions only of the models it may read.
   */
  visibleTo(caller: Caller): Pod[] {
    caller.checkReadsSome('listing the pods');
    return podsToProto(this.list(), (model) => caller.may('ListPods', model));
  }

  /** Calls `listener` on every change until the returned function is called. */
  onChange(listener: PodViewListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    const pods = this.list();
    for (const l of this.listeners) l(pods);
  }
}

/** Pods in ListPods' form, each pod's versions only of the models `mayRead`. */
function podsToProto(pods: readonly PodSeen[], mayRead: (model: string) => boolean): Pod[] {
  return pods.map(({ heartbeat: hb, seenAt }) => ({
    name: hb.pod,
    address: hb.address,
    state: hb.state,
    versions: hb.models.filter((m) => mayRead(m.name)).map((m) => ({ model: m.name, version: m.version, state: m.state, provider: m.provider ?? '', reason: m.reason ?? '', memory_bytes: String(m.memoryBytes ?? 0) })),
    inflight: hb.inflight,
    seen_at: new Date(seenAt).toISOString(),
    identity: hb.identity ?? '',
    memory_budget_bytes: String(hb.memory?.budgetBytes ?? 0),
    memory_used_bytes: String(hb.memory?.usedBytes ?? 0),
    rss_bytes: String(hb.memory?.rssBytes ?? 0),
  }));
}
