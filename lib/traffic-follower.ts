// Follows what the registry says each model serves (its traffic split) and how (its serving
// config): on every traffic or config event, at start-up, after a NATS reconnect and every resync
// interval, so a missed event changes nothing. Pods use it to load, unload and configure versions;
// routers to split traffic.
//
// The control plane only goes forward: every model record carries its KV revision, and a model's
// state is passed on only when its revision is not older than the one passed on last. A full sync
// is slow (it reads every model) and may answer after an event about one model was applied; the
// older snapshot of that model is then dropped instead of undoing the newer split.
//
// An event's read of its model is retried until it succeeds: a registry that restarts leaves the
// follower's gRPC channel in reconnect backoff for seconds after it listens again, and a read that
// failed once left a router routing by the old split until the next resync (27 s in a hostile
// test, while the rollout analysis judged the step it had not applied).
import * as grpc from '@grpc/grpc-js';
import { followEvents, type EventFollower, type TrafficWeight } from './events';
import { unary } from './grpc/client';
import { retry } from './retry';
import type { ModelOut, RegistryClient } from './grpc/types';
import type { JetStreamClient, NatsConnection } from './nats';
import type { Logger } from './log';

/** Receives a model's current traffic split and record; an empty split (no record) means the model is gone. */
export type TrafficListener = (model: string, traffic: TrafficWeight[], record?: ModelOut) => void | Promise<void>;

const trafficOf = (m: ModelOut): TrafficWeight[] => m.traffic.map((t) => ({ version: t.version, weight: t.weight }));

/** A record's KV revision as a number; 0 when the registry did not say. */
const revisionOf = (r: string | number | undefined): number => {
  const n = Number(r ?? 0);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
};

/**
 * True when a record at `revision` may be passed on after one at `held` was: it is the same or
 * newer (the same one again re-asserts it, as every resync does), or either revision is unknown.
 */
export function isCurrent(held: number | undefined, revision: string | number | undefined): boolean {
  const r = revisionOf(revision);
  return held === undefined || held === 0 || r === 0 || r >= held;
}

/** How a TrafficFollower keeps up; every field has its default. */
export interface TrafficFollowerOptions {
  /** Full resync period (INFERMESH_REGISTRY_RESYNC_INTERVAL_MS); default 30 s. */
  resyncIntervalMs?: number;
  /** Per-call deadline of a read from the registry; default 10 s. */
  callDeadlineMs?: number;
  /** Bytes of events fetched ahead (INFERMESH_EVENT_FOLLOW_AHEAD_BYTES); default followEvents'. */
  eventAheadBytes?: number;
}

export class TrafficFollower {
  private events: EventFollower | undefined;
  private resync: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Models passed on, with the KV revision of the record passed on last (0: unknown). */
  private readonly held = new Map<string, { model: number; placement: number }>();
  /** Models whose event-driven read is running, and whether an event came for it since that read began. */
  private readonly reading = new Map<string, { again: boolean }>();
  /** Resolves once the first full sync with the registry succeeded. */
  readonly synced: Promise<void>;
  private markSynced!: () => void;
  private readonly resyncIntervalMs: number;
  private readonly callDeadlineMs: number;
  private readonly eventAheadBytes: number | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly registry: RegistryClient,
    private readonly onModel: TrafficListener,
    private readonly log: Logger,
    opts: TrafficFollowerOptions = {},
  ) {
    this.resyncIntervalMs = opts.resyncIntervalMs ?? 30_000;
    this.callDeadlineMs = opts.callDeadlineMs ?? 10_000;
    this.eventAheadBytes = opts.eventAheadBytes;
    this.synced = new Promise((resolve) => (this.markSynced = resolve));
  }

  /** Subscribes to events first, then syncs everything (retrying until the registry answers). */
  async start(): Promise<void> {
    this.events = await followEvents(this.js, async (event) => {
      if (event.type === 'traffic.changed' || event.type === 'model.config.changed' || event.type === 'placement.changed') this.readSoon(event.model);
    }, { aheadBytes: this.eventAheadBytes, onBadEvent: (err, seq) => this.log.warn('skipping malformed event', { seq, err }) });
    void (async () => {
      for await (const s of this.nc.status()) if (s.type === 'reconnect') void this.syncAll();
    })().catch(() => undefined);
    this.resync = setInterval(() => void this.syncAll(), this.resyncIntervalMs);
    void this.syncUntilDone();
  }

  private async syncUntilDone(): Promise<void> {
    while (!this.stopped) {
      if (await this.syncAll()) {
        this.markSynced();
        return;
      }
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }

  /** Reads every model from the registry; resolves false when the registry was unreachable. */
  async syncAll(): Promise<boolean> {
    let models: ModelOut[];
    try {
      models = (await unary<{ models: ModelOut[] }>((cb) => this.registry.ListModels({}, { deadline: Date.now() + this.callDeadlineMs }, cb))).models;
    } catch (err) {
      if (!this.stopped) this.log.warn('registry unreachable; keeping what is known', { err: String(err) });
      return false;
    }
    const listed = new Set(models.map((m) => m.name));
    // A model missing from a list may have been created after the list was read: only the
    // registry's own NOT_FOUND, read now, says it is gone.
    const missing = [...this.held.keys()].filter((n) => !listed.has(n));
    await Promise.all([...models.map((m) => this.apply(m)), ...missing.map((n) => this.syncModel(n))]);
    return true;
  }

  /** Passes `m` on unless a newer revision of it was passed on already. */
  private async apply(m: ModelOut): Promise<void> {
    // A state of the model is its record and its placement record (docs/placement.md): it is
    // passed on only when neither is older than what was passed on last.
    const revision = { model: revisionOf(m.revision), placement: revisionOf(m.placement_revision) };
    const held = this.held.get(m.name);
    if (!isCurrent(held?.model, revision.model) || !isCurrent(held?.placement, revision.placement)) {
      this.log.debug('ignoring an older state of a model', { model: m.name, revision, held });
      return;
    }
    this.held.set(m.name, revision);
    await this.onModel(m.name, trafficOf(m), m);
  }

  /**
   * Reads `name` from the registry for an event, without holding back the events of other models:
   * one read per model at a time, and an event that comes during it makes it read once more when
   * it is done (or, while it retries, at once: the newer event supersedes the older).
   */
  private readSoon(name: string): void {
    const running = this.reading.get(name);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: true };
    this.reading.set(name, state);
    void (async () => {
      while (state.again && !this.stopped) {
        state.again = false;
        await this.syncModel(name, () => !state.again);
      }
    })().finally(() => this.reading.delete(name));
  }

  /**
   * Reads one model and passes it on. With `retrying`, a failed read (other than NOT_FOUND) is
   * tried again with lib/retry's backoff while `retrying()` holds, for at most a resync interval
   * (the next full sync reads it then anyway); each call waits for the channel to connect
   * (waitForReady) within its deadline instead of failing at once while it backs off.
   */
  private async syncModel(name: string, retrying: () => boolean = () => false): Promise<void> {
    const giveUpAt = Date.now() + this.resyncIntervalMs;
    let m: ModelOut;
    try {
      m = await retry(
        () => unary<ModelOut>((cb) => this.registry.GetModel({ name }, new grpc.Metadata({ waitForReady: true }), { deadline: Date.now() + this.callDeadlineMs }, cb)),
        {
          attempts: Number.POSITIVE_INFINITY,
          retryable: (err) => {
            const again = (err as { code?: number }).code !== grpc.status.NOT_FOUND && !this.stopped && retrying() && Date.now() < giveUpAt;
            if (again) this.log.debug('could not read model from registry; retrying', { model: name, err: String(err) });
            return again;
          },
        },
      );
    } catch (err) {
      if ((err as { code?: number }).code === grpc.status.NOT_FOUND) {
        if (this.held.delete(name)) await this.onModel(name, []);
        return;
      }
      // Stopped, or superseded by a newer event whose read follows: nothing to say.
      if (this.stopped || this.reading.get(name)?.again === true) return;
      this.log.warn('could not read model from registry; the next resync retries', { model: name, err: String(err) });
      return;
    }
    await this.apply(m);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resync);
    await this.events?.stop();
  }
}
