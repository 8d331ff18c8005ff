// Follows what the registry says each model serves (its traffic split) and how (its serving
// config): on every traffic or config event, at start-up, after a NATS reconnect and every resync
// interval, so a missed event changes nothing. Pods use it to load, unload and configure versions;
// routers to split traffic.
import { followEvents, type EventFollower, type TrafficWeight } from './events';
import { unary } from './grpc/client';
import type { ModelOut, RegistryClient } from './grpc/types';
import type { JetStreamClient, NatsConnection } from './nats';
import type { Logger } from './log';

/** Receives a model's current traffic split and record; an empty split (no record) means the model is gone. */
export type TrafficListener = (model: string, traffic: TrafficWeight[], record?: ModelOut) => void | Promise<void>;

const trafficOf = (m: ModelOut): TrafficWeight[] => m.traffic.map((t) => ({ version: t.version, weight: t.weight }));

export class TrafficFollower {
  private events: EventFollower | undefined;
  private resync: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly known = new Set<string>();
  /** Resolves once the first full sync with the registry succeeded. */
  readonly synced: Promise<void>;
  private markSynced!: () => void;

  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly registry: RegistryClient,
    private readonly onModel: TrafficListener,
    private readonly log: Logger,
    /** Full resync period; default 30 s. */
    private readonly resyncIntervalMs = 30_000,
  ) {
    this.synced = new Promise((resolve) => (this.markSynced = resolve));
  }

  /** Subscribes to events first, then syncs everything (retrying until the registry answers). */
  async start(): Promise<void> {
    this.events = await followEvents(this.js, async (event) => {
      if (event.type === 'traffic.changed' || event.type === 'model.config.changed') await this.syncModel(event.model);
    }, { onBadEvent: (err, seq) => this.log.warn('skipping malformed event', { seq, err }) });
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
      models = (await unary<{ models: ModelOut[] }>((cb) => this.registry.ListModels({}, { deadline: Date.now() + 10_000 }, cb))).models;
    } catch (err) {
      if (!this.stopped) this.log.warn('registry unreachable; keeping what is known', { err: String(err) });
      return false;
    }
    const listed = new Set(models.map((m) => m.name));
    const gone = [...this.known].filter((n) => !listed.has(n));
    for (const n of gone) this.known.delete(n);
    for (const m of models) this.known.add(m.name);
    await Promise.all([...models.map((m) => this.onModel(m.name, trafficOf(m), m)), ...gone.map((n) => this.onModel(n, []))]);
    return true;
  }

  private async syncModel(name: string): Promise<void> {
    try {
      const m = await unary<ModelOut>((cb) => this.registry.GetModel({ name }, { deadline: Date.now() + 10_000 }, cb));
      this.known.add(name);
      await this.onModel(name, trafficOf(m), m);
    } catch (err) {
      this.log.warn('could not read model from registry; the next resync retries', { model: name, err: String(err) });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resync);
    await this.events?.stop();
  }
}
