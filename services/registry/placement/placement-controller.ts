// The placement controller: which pods hold which served versions (docs/placement.md). Every
// registry replica follows the models, the placements and the pods' heartbeats; one of them, the
// holder of a JetStream KV lease, plans (plan.ts) and writes each model's placement record and a
// placement.changed event for each version whose copies changed. Pods load what is placed on them;
// routers ask (subjects.placementDemand) for a version no pod holds and wait for it.
import type { KvEntry } from '@nats-io/kv';
import type { KV, NatsConnection } from '../../../lib/nats';
import { decodePlacementDemand, subjects, type PlacementReason, type PodModel } from '../../../lib/events';
import type { Logger } from '../../../lib/log';
import { ErrorCode, MeshError } from '../../../lib/errors';
import type { Registry } from '../registry';
import { keys, type ModelRecord, type PlacementLease, type PlacementRecord } from '../records';
import type { PodSeen } from '../pod-view';
import type { PlacementPods } from './placement-pods';
import { plan, tooBigForEveryPod, versionKey, type PlanPod, type PlanVersion } from './plan';

/** The controller's settings (INFERMESH_PLACEMENT_*). */
export interface PlacementOptions {
  minCopies: number;
  requestsPerCopy: number;
  minResidencyMs: number;
  evictIdleMs: number;
  leaseMs: number;
  intervalMs: number;
  /** Assumed beyond an artifact's size for a version no pod has measured, until some are (bytes). */
  versionOverheadBytes: number;
  /** Percent of each pod's budget left free (INFERMESH_PLACEMENT_MEMORY_RESERVE_PERCENT). */
  memoryReservePercent: number;
  /**
   * How long a replica that starts leading, or whose NATS connection came back, gathers the pods'
   * heartbeats before it plans (INFERMESH_POD_TTL_MS): a pod it has not heard from yet is not gone.
   */
  warmupMs: number;
}

/** What the controller is built from. */
export interface PlacementDeps {
  kv: KV;
  nc: NatsConnection;
  registry: Registry;
  /** The pods it may place on, from their heartbeats (proven by their certificates with TLS on). */
  pods: PlacementPods;
  /** This replica's name in the lease. */
  replica: string;
  log: Logger;
  options: PlacementOptions;
  now?: () => number;
}

/** A demand stands this long unless a router repeats it (routers repeat theirs every second while requests wait). */
const demandTtlMs = (intervalMs: number) => Math.max(3 * intervalMs, 5_000);

interface Served {
  /** The KV revision of the model record this came from. */
  revision: number;
  traffic: number[];
  /** Versions of a rollout in progress (stable and canary): never evicted. */
  pinned: Set<number>;
}

interface RateSample {
  requests: number;
  at: number;
  rate: number;
}

const encoder = new TextEncoder();

export class PlacementController {
  private readonly models = new Map<string, Served>();
  private readonly placement = new Map<string, PlacementRecord>();
  /** The KV revision of each model's placement record (a deletion's too): writes are compare-and-sets at it. */
  private readonly placementRevisions = new Map<string, number>();
  /**
   * Epoch ms from which this leader has a view to plan from: every model and placement record read
   * (a full read after it took the lease or NATS came back), and a pod TTL of heartbeats heard.
   */
  private viewFrom = Number.POSITIVE_INFINITY;
  private viewEpoch = 0;
  /** key -> epoch ms until which a router's demand stands. */
  private readonly demands = new Map<string, number>();
  /** `${pod}\n${key}` -> the pod's latest request count and the smoothed rate. */
  private readonly rates = new Map<string, RateSample>();
  /** `${pod}\n${key}` -> when this leader placed it (residency); copies it found placed count as old. */
  private readonly placedAt = new Map<string, number>();
  /** key -> artifact size (versions are immutable); undefined while being read. */
  private readonly sizes = new Map<string, number | undefined>();
  private readonly stops: (() => void)[] = [];
  private leaseRevision = 0;
  private leaderUntil = 0;
  private planning: Promise<void> | undefined;
  private again = false;
  private soon: NodeJS.Timeout | undefined;
  /** Lease renewals and full reads under way (stop() waits for them). */
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly deps: PlacementDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Whether this replica leads placement now. */
  get leading(): boolean {
    return this.leaderUntil > this.now();
  }

  start(): void {
    const demand = this.deps.nc.subscribe(subjects.placementDemand, {
      callback: (err, msg) => {
        if (err) return;
        try {
          const d = decodePlacementDemand(msg.data);
          // Only a version some model serves: the demands kept are bounded by what is served.
          if (!this.models.get(d.model)?.traffic.includes(d.version)) return;
          const key = versionKey(d.model, d.version);
          const fresh = !this.demands.has(key);
          this.demands.set(key, this.now() + demandTtlMs(this.deps.options.intervalMs));
          // A router's repeat keeps the demand; only a new one plans at once.
          if (fresh && this.leading) this.planSoon();
        } catch (e) {
          this.deps.log.debug('skipping malformed placement demand', { err: e });
        }
      },
    });
    this.stops.push(() => demand.unsubscribe());
    this.follow(keys.models, (e) => this.onModel(e));
    this.follow(keys.placements, (e) => this.onPlacement(e));
    // A pod that came or went changes what fits where: plan at once.
    this.stops.push(this.deps.pods.onChange(() => {
      if (this.leading) this.planSoon();
    }));
    const lease = setInterval(() => this.track(this.renewLease()), Math.max(100, Math.floor(this.deps.options.leaseMs / 3))).unref();
    const tick = setInterval(() => {
      const now = this.now();
      for (const [k, until] of this.demands) if (until <= now) this.demands.delete(k);
      if (this.leading) this.planSoon();
    }, this.deps.options.intervalMs);
    this.stops.push(() => clearInterval(lease), () => clearInterval(tick));
    // Back from a NATS outage: the pods' heartbeats and the records' changes were missed meanwhile.
    void (async () => {
      for await (const st of this.deps.nc.status()) if (st.type === 'reconnect' && this.leading) this.gatherView();
    })().catch(() => undefined);
    this.track(this.renewLease());
  }

  /** Keeps `work` (a lease renewal, a full read) until it settles, so stop() can wait for it. */
  private track(work: Promise<void>): void {
    const settled = work.catch((err: unknown) => this.deps.log.warn('placement: background work failed', { err: String(err) }));
    this.inFlight.add(settled);
    void settled.finally(() => this.inFlight.delete(settled));
  }

  /** Stops following and planning, and gives up the lease so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.soon);
    for (const s of this.stops.splice(0)) s();
    await this.planning;
    // A lease renewal or a full read under way ends before the connection is closed under it.
    await Promise.all([...this.inFlight]);
    if (this.leading) {
      this.leaderUntil = 0;
      await this.deps.kv.update(keys.placementLease, encoder.encode(JSON.stringify({ schema: 1, holder: this.deps.replica, until: 0 } satisfies PlacementLease)), this.leaseRevision).catch(() => undefined);
    }
  }

  /** Watches `key` in the registry bucket, from its current values on, again after a failure. */
  private follow(key: string, apply: (e: KvEntry) => void): void {
    let watch: { stop(): void } | undefined;
    this.stops.push(() => watch?.stop());
    void (async () => {
      while (!this.stopped) {
        try {
          const w = await this.deps.kv.watch({ key });
          watch = w;
          if (this.stopped) w.stop();
          for await (const e of w) apply(e);
        } catch (err) {
          if (!this.stopped) this.deps.log.warn('placement: watch failed; retrying', { key, err: String(err) });
        }
        if (!this.stopped) await new Promise((r) => setTimeout(r, 1_000));
      }
    })();
  }

  private onModel(e: KvEntry): void {
    const name = keys.modelOf(e.key);
    if (name === undefined) return;
    if (e.operation !== 'PUT') {
      if ((this.models.get(name)?.revision ?? 0) < e.revision) this.models.delete(name);
    } else {
      try {
        this.setModel(name, e.json<ModelRecord>(), e.revision);
      } catch (err) {
        this.deps.log.warn('placement: unreadable model record', { model: name, err: String(err) });
        return;
      }
    }
    if (this.leading) this.planSoon();
  }

  /** Takes a model's record unless an older one than what is held (a full read races the watch). */
  private setModel(name: string, m: Pick<ModelRecord, 'traffic' | 'rollout'>, revision: number): void {
    if ((this.models.get(name)?.revision ?? 0) > revision) return;
    const rollout = m.rollout && (m.rollout.phase === 'progressing' || m.rollout.phase === 'paused') ? m.rollout : undefined;
    this.models.set(name, {
      revision,
      traffic: m.traffic.map((t) => t.version),
      pinned: new Set(rollout ? [rollout.stable, rollout.canary] : []),
    });
  }

  private onPlacement(e: KvEntry): void {
    const name = keys.placementModelOf(e.key);
    if (name === undefined) return;
    let record: PlacementRecord | undefined;
    if (e.operation === 'PUT') {
      try {
        record = e.json<PlacementRecord>();
      } catch {
        record = undefined;
      }
    }
    this.setPlacement(name, record, e.revision);
  }

  private setPlacement(name: string, record: PlacementRecord | undefined, revision: number): void {
    if ((this.placementRevisions.get(name) ?? 0) > revision) return;
    this.placementRevisions.set(name, revision);
    if (record) this.placement.set(name, record);
    else this.placement.delete(name);
  }

  /**
   * Before planning as a new leader, or after NATS came back: reads every model and placement
   * record, and asks every pod for a heartbeat, then waits a pod TTL for them. Until then it plans
   * nothing, since a record or a pod it has not seen yet would look gone.
   */
  private gatherView(): void {
    const epoch = ++this.viewEpoch;
    this.viewFrom = Number.POSITIVE_INFINITY;
    const started = this.now();
    try {
      this.deps.nc.publish(subjects.discover);
    } catch {
      // NATS away: the full read below fails too, and the next reconnect starts again.
    }
    this.track((async () => {
      for (;;) {
        if (this.stopped || epoch !== this.viewEpoch) return;
        try {
          for (const m of await this.deps.registry.listModels()) {
            this.setModel(m.name, m, m.revision);
            if (m.placementRevision !== undefined) this.setPlacement(m.name, m.placementRevision ? { schema: 1, model: m.name, versions: m.placement ?? [] } : undefined, m.placementRevision);
          }
          break;
        } catch (err) {
          if (this.stopped || epoch !== this.viewEpoch) return;
          this.deps.log.warn('placement: could not read the models; retrying', { err: String(err) });
          await new Promise((r) => setTimeout(r, 1_000));
        }
      }
      if (this.stopped || epoch !== this.viewEpoch) return;
      this.viewFrom = started + this.deps.options.warmupMs;
      const wait = Math.max(0, this.viewFrom - this.now());
      setTimeout(() => this.planSoon(), wait + 1).unref();
    })());
  }

  /** Takes or renews the lease: one compare-and-set; a lapsed lease of another replica is taken over. */
  private async renewLease(): Promise<void> {
    if (this.stopped) return;
    const { kv, replica, options, log } = this.deps;
    const now = this.now();
    const next = encoder.encode(JSON.stringify({ schema: 1, holder: replica, until: now + options.leaseMs } satisfies PlacementLease));
    const wasLeading = this.leading;
    try {
      const cur = await kv.get(keys.placementLease);
      if (!cur || cur.operation !== 'PUT') {
        this.leaseRevision = cur ? await kv.update(keys.placementLease, next, cur.revision) : await kv.create(keys.placementLease, next);
      } else {
        const lease = cur.json<PlacementLease>();
        if (lease.holder !== replica && lease.until > now) {
          this.leaderUntil = 0;
          return;
        }
        this.leaseRevision = await kv.update(keys.placementLease, next, cur.revision);
      }
      // Led until a little before the lease lapses by this replica's clock, so two never overlap
      // while clocks agree within that margin.
      this.leaderUntil = now + Math.floor(options.leaseMs * 0.8);
      if (!wasLeading && !this.stopped) {
        log.info('placement: leading; gathering the models and the pods before planning', { replica, afterMs: options.warmupMs });
        this.gatherView();
      }
    } catch (err) {
      // Another replica won the compare-and-set, or NATS is away: not leading.
      if (wasLeading) log.warn('placement: lease lost', { err: String(err) });
      this.leaderUntil = 0;
    }
  }

  /** Plans once the current plan (if any) is done; changes in the same tick share one plan. */
  planSoon(): void {
    if (this.stopped) return;
    if (this.planning) {
      this.again = true;
      return;
    }
    if (this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.planning = this.planOnce()
        .catch((err: unknown) => this.deps.log.warn('placement: plan failed; the next one retries', { err: String(err) }))
        .finally(() => {
          this.planning = undefined;
          if (this.again) {
            this.again = false;
            this.planSoon();
          }
        });
    }, 10);
  }

  /** One plan: the served versions and the pods as they are now, then the records that changed. */
  async planOnce(): Promise<void> {
    const now = this.now();
    if (!this.leading || now < this.viewFrom) return;
    const seen = this.placeable();
    const measured = this.measuredMemory(seen);
    const rates = this.ratesOf(seen, now);
    const overhead = this.overheadBytes(measured);
    for (const [k, until] of this.demands) if (until <= now) this.demands.delete(k);

    const versions: PlanVersion[] = [];
    const missingSizes: [string, number][] = [];
    for (const [model, served] of this.models) {
      for (const version of served.traffic) {
        const key = versionKey(model, version);
        if (!this.sizes.has(key)) missingSizes.push([model, version]);
        const size = this.sizes.get(key);
        const m = measured.get(key);
        versions.push({
          key, model, version,
          minCopies: this.deps.options.minCopies,
          memoryBytes: m?.memoryBytes ?? (size === undefined ? overhead : size + overhead),
          rate: rates.get(key) ?? 0,
          pinned: served.pinned.has(version),
          demanded: this.demands.has(key),
        });
      }
    }
    // Sizes are read once per version (immutable records); those still unread plan at the overhead alone this time.
    if (missingSizes.length > 0) this.track(this.readSizes(missingSizes));

    // A copy whose load failed on its pod is not a copy: the planner may put the version elsewhere.
    const failed = new Set<string>();
    for (const p of seen) for (const m of p.heartbeat.models) if (m.state === 'UNAVAILABLE') failed.add(`${p.heartbeat.pod}\n${versionKey(m.name, m.version)}`);
    // The versions placed on each pod, read once for every pod.
    const placedOn = new Map<string, string[]>();
    for (const [model, rec] of this.placement) {
      for (const v of rec.versions) {
        for (const pod of v.pods) {
          const list = placedOn.get(pod) ?? [];
          list.push(versionKey(model, v.version));
          placedOn.set(pod, list);
        }
      }
    }
    const live = new Set<string>();
    const pods: PlanPod[] = seen.map((p) => this.planPod(p, placedOn.get(p.heartbeat.pod) ?? [], now, live, failed));
    // Copies no pod holds or is placed with any more are forgotten.
    for (const id of this.placedAt.keys()) if (!live.has(id)) this.placedAt.delete(id);
    const current = new Map<string, string[]>();
    for (const [model, rec] of this.placement) {
      for (const v of rec.versions) {
        const key = versionKey(model, v.version);
        current.set(key, v.pods.filter((pod) => !failed.has(`${pod}\n${key}`)));
      }
    }
    const result = plan(versions, pods, current, {
      now,
      requestsPerCopy: this.deps.options.requestsPerCopy,
      minResidencyMs: this.deps.options.minResidencyMs,
      evictIdleMs: this.deps.options.evictIdleMs,
    });
    if (!this.leading) return;
    await this.write(versions, result.placement, result.changes, now);
    for (const u of result.unmet) {
      if (this.demands.has(u.key)) this.deps.log.info('placement: no room for a version asked for; waiting for copies to become idle', u);
    }
  }

  /**
   * A pod as the planner sees it: its budget and, per version placed or loaded there, its facts. A
   * copy this replica has not seen placed (it took over the lease, or the copy was loaded before)
   * counts from when it first saw it, so a new leader evicts nothing that is not idle and settled.
   */
  private planPod(p: PodSeen, placed: readonly string[], now: number, live: Set<string>, failed: ReadonlySet<string>): PlanPod {
    const hb = p.heartbeat;
    const holds: PlanPod['holds'] = new Map();
    const held = new Map<string, PodModel>(hb.models.map((m) => [versionKey(m.name, m.version), m]));
    const facts = (key: string, m: PodModel | undefined) => {
      const id = `${hb.pod}\n${key}`;
      live.add(id);
      let placedAt = this.placedAt.get(id);
      if (placedAt === undefined) this.placedAt.set(id, (placedAt = now));
      return {
        placedAtMs: placedAt,
        // Not loaded yet: as used as it is recent, and busy (a load under way is not evicted for
        // another), until the load has had twice the residency to show up.
        lastUsedMs: m?.idleMs !== undefined ? p.seenAt - m.idleMs : now,
        inflight: m?.inflight ?? (m || now - placedAt > 2 * this.deps.options.minResidencyMs ? 0 : 1),
        ...(m?.memoryBytes ? { memoryBytes: m.memoryBytes } : {}),
      };
    };
    for (const key of placed) if (!failed.has(`${hb.pod}\n${key}`)) holds.set(key, facts(key, held.get(key)));
    // Versions the pod has loaded without being placed there: the planner prefers it for them (no load).
    for (const [key, m] of held) if (!holds.has(key) && m.state === 'READY') holds.set(key, facts(key, m));
    // What set-aside session workers hold stays in the process until they exit, and the pod waits
    // for it before a load it would not fit beside (behind which its other loads queue): copies fit
    // beside it. At most the pod's budget, as one version's measurement is.
    const memory = hb.memory!;
    const heldBytes = Math.min(memory.setAsideBytes ?? 0, memory.budgetBytes);
    return { name: hb.pod, budgetBytes: this.effectiveBudget(memory.budgetBytes), heldBytes, holds };
  }

  /** A pod's budget as placement fills it: less the reserve. */
  private effectiveBudget(budgetBytes: number): number {
    return Math.floor((budgetBytes * (100 - this.deps.options.memoryReservePercent)) / 100);
  }

  /**
   * The pods placement may use: serving, and reporting a memory budget (a pod that reports none,
   * or 0, would look endlessly roomy and draw every copy).
   */
  private placeable(): PodSeen[] {
    return this.deps.pods.list().filter((p) => p.heartbeat.state === 'serving' && (p.heartbeat.memory?.budgetBytes ?? 0) > 0);
  }

  /**
   * Why no pod could hold a version of `sizeBytes`, or undefined: what placement would plan it at
   * (its size and the overhead of versions measured so far) is more than every pod's budget less
   * the reserve. With no pod known, undefined: nothing to judge by.
   */
  refusal(sizeBytes: number): string | undefined {
    const pods = this.placeable();
    if (pods.length === 0) return undefined;
    const planned = sizeBytes + this.overheadBytes(this.measuredMemory(pods));
    const largest = Math.max(...pods.map((p) => this.effectiveBudget(p.heartbeat.memory!.budgetBytes)));
    if (!tooBigForEveryPod(planned, [{ budgetBytes: largest }])) return undefined;
    return `would take about ${planned} bytes loaded, more than any inference pod's memory budget for models (the largest: ${largest} bytes after INFERMESH_PLACEMENT_MEMORY_RESERVE_PERCENT; INFERMESH_MODEL_MEMORY_MB); no pod could load it`;
  }

  /**
   * Per version, the median of what the pods measured loading it, each measurement at most its
   * pod's budget: one pod's report, true or not, moves neither far.
   */
  private measuredMemory(pods: readonly PodSeen[]): Map<string, { memoryBytes: number }> {
    const all = new Map<string, number[]>();
    for (const p of pods) {
      const budget = p.heartbeat.memory?.budgetBytes ?? 0;
      for (const m of p.heartbeat.models) {
        if (!m.memoryBytes) continue;
        const key = versionKey(m.name, m.version);
        const list = all.get(key) ?? [];
        list.push(Math.min(m.memoryBytes, budget));
        all.set(key, list);
      }
    }
    const out = new Map<string, { memoryBytes: number }>();
    for (const [key, list] of all) {
      list.sort((a, b) => a - b);
      out.set(key, { memoryBytes: list[(list.length - 1) >> 1]! });
    }
    return out;
  }

  /**
   * What a version not yet measured is assumed to cost beyond its artifact: the 90th percentile of
   * those measured (an estimate short of the truth overfills a pod; one over it leaves room unused),
   * else the setting.
   */
  private overheadBytes(measured: ReadonlyMap<string, { memoryBytes: number }>): number {
    const over: number[] = [];
    for (const [key, m] of measured) {
      const size = this.sizes.get(key);
      if (size !== undefined) over.push(Math.max(0, m.memoryBytes - size));
    }
    if (over.length < 3) return this.deps.options.versionOverheadBytes;
    over.sort((a, b) => a - b);
    return over[Math.min(over.length - 1, Math.floor(over.length * 0.9))]!;
  }

  /**
   * Requests per second to each version over every pod, smoothed, from the change in each pod's
   * request count between heartbeats; samples of pods or versions no longer reported are dropped.
   */
  private ratesOf(pods: readonly PodSeen[], now: number): Map<string, number> {
    const out = new Map<string, number>();
    const live = new Set<string>();
    for (const p of pods) {
      for (const m of p.heartbeat.models) {
        if (m.requests === undefined) continue;
        const key = versionKey(m.name, m.version);
        const id = `${p.heartbeat.pod}\n${key}`;
        live.add(id);
        out.set(key, (out.get(key) ?? 0) + this.sample(id, m.requests, p.seenAt, now));
      }
    }
    for (const id of this.rates.keys()) if (!live.has(id)) this.rates.delete(id);
    return out;
  }

  private sample(id: string, requests: number, at: number, now: number): number {
    const prev = this.rates.get(id);
    if (!prev || requests < prev.requests) {
      this.rates.set(id, { requests, at, rate: 0 });
      return 0;
    }
    if (at > prev.at) {
      // Smoothed over about the minimum residency (at least a second), so copies follow load, not its noise.
      const rate = ((requests - prev.requests) * 1000) / (at - prev.at);
      const weight = 1 - Math.exp(-(at - prev.at) / Math.max(1_000, this.deps.options.minResidencyMs));
      prev.rate = prev.rate * (1 - weight) + rate * weight;
      prev.requests = requests;
      prev.at = at;
    }
    // No heartbeat of it for many intervals: no rate to speak of.
    return now - prev.at > 10 * this.deps.options.intervalMs ? 0 : prev.rate;
  }

  private async readSizes(list: readonly [string, number][]): Promise<void> {
    for (const [model, version] of list) {
      if (this.stopped) return;
      const key = versionKey(model, version);
      if (this.sizes.has(key)) continue;
      this.sizes.set(key, undefined);
      try {
        const rec = await this.deps.registry.findVersion(model, version);
        if (rec) this.sizes.set(key, rec.sizeBytes);
        else this.sizes.delete(key);
      } catch {
        this.sizes.delete(key);
      }
    }
    this.planSoon();
  }

  /** Writes the placement records that changed and an event per version whose copies changed. */
  private async write(versions: readonly PlanVersion[], next: ReadonlyMap<string, string[]>, changes: readonly { key: string; pod: string; action: 'placed' | 'removed' | 'evicted'; reason: PlacementReason }[], now: number): Promise<void> {
    const byModel = new Map<string, PlacementRecord['versions']>();
    const memory = new Map(versions.map((v) => [v.key, v.memoryBytes]));
    for (const v of versions) {
      const pods = next.get(v.key);
      if (!pods || pods.length === 0) continue;
      const list = byModel.get(v.model) ?? [];
      list.push({ version: v.version, pods: [...pods].sort(), memoryBytes: memory.get(v.key) ?? 0 });
      byModel.set(v.model, list);
    }
    const models = new Set([...byModel.keys(), ...this.placement.keys()]);
    const byKey = new Map<string, typeof changes[number][]>();
    for (const c of changes) {
      const list = byKey.get(c.key) ?? [];
      list.push(c);
      byKey.set(c.key, list);
      if (c.action === 'placed') this.placedAt.set(`${c.pod}\n${c.key}`, now);
      else this.placedAt.delete(`${c.pod}\n${c.key}`);
    }
    for (const model of models) {
      const list = (byModel.get(model) ?? []).sort((a, b) => a.version - b.version);
      const before = this.placement.get(model)?.versions ?? [];
      // Memory estimates move with every measurement: rewrite a record only when its copies moved.
      const same = list.length === before.length && list.every((v, i) => v.version === before[i]!.version && v.pods.join() === before[i]!.pods.join());
      if (same) continue;
      // Written only while this replica leads, and only over the record it planned from: a leader
      // that lost its lease during the plan, or whose view is behind, stops here (compare-and-set).
      if (!this.leading) return;
      const record: PlacementRecord = { schema: 1, model, versions: list };
      let revision: number;
      try {
        revision = await this.deps.registry.writePlacement(record, this.placementRevisions.get(model) ?? 0);
      } catch (err) {
        if (err instanceof MeshError && err.code === ErrorCode.Conflict) {
          this.deps.log.warn('placement: a record changed since this plan read it; planning again', { model });
          this.again = true;
          return;
        }
        throw err;
      }
      this.setPlacement(model, record, revision);
      const versionsChanged = new Set([...list.map((v) => v.version), ...before.map((v) => v.version)]);
      for (const version of versionsChanged) {
        const key = versionKey(model, version);
        const cs = byKey.get(key) ?? [];
        const pods = list.find((v) => v.version === version)?.pods ?? [];
        const oldPods = before.find((v) => v.version === version)?.pods ?? [];
        if (pods.join() === oldPods.join()) continue;
        const reason = cs[0]?.reason ?? 'not_served';
        await this.deps.registry.publish({
          type: 'placement.changed', model, version, pods,
          placed: pods.filter((p) => !oldPods.includes(p)),
          removed: oldPods.filter((p) => !pods.includes(p)),
          evicted: cs.filter((c) => c.action === 'evicted').map((c) => c.pod),
          reason,
          principal: 'controller',
        });
      }
      this.deps.log.info('placement changed', { model, versions: list.map((v) => `${v.version}:${v.pods.join('+')}`).join(' ') });
    }
  }
}
