// What the web console shows and does, without HTTP: the models with their versions, rollouts and
// charts, the pods, the events, each answer cut to what the caller may read; the rollout actions,
// checked with the same table of scopes as the gRPC API (../access.ts) and done by the same
// Rollouts. The charts are the closed windows the rollout analysis judges (RolloutController),
// kept per model; pages are told of changes through one broadcast, fed by one event follower, the
// controller and the pod view, whatever the number of models or pages.
import { errors } from '../../../lib/errors';
import type { Logger } from '../../../lib/log';
import type { MeshEvent } from '../../../lib/events';
import { errorRate, LATENCY_BUCKETS_MS, latencyQuantile, type VersionWindow } from '../../../lib/window-stats';
import { modelToProto, versionToProto } from '../grpc-handlers';
import { statusToProto } from '../rollout/grpc-handlers';
import type { Registry } from '../registry';
import type { Rollouts } from '../rollout/rollouts';
import type { RolloutController } from '../rollout/rollout-controller';
import type { PodView } from '../pod-view';
import type { Caller, RegistryRpc } from '../access';
import { MODEL_NAME } from '../records';

/** One closed window of one version, as the charts draw it. */
export interface WindowVersionPoint {
  version: number;
  requests: number;
  errors: number;
  /** Requests per second over the window. */
  rps: number;
  /** Errors over requests, 0..1. */
  error_rate: number;
  /**
   * Latency quantiles of the successful requests, in ms: the upper bound of their bucket, as the
   * analysis reads them (0 without any). A quantile in the last bucket, which has no upper bound,
   * is its lower bound with `p50_over` / `p99_over` set: "more than".
   */
  p50_ms: number;
  p99_ms: number;
  p50_over: boolean;
  p99_over: boolean;
}

/** One closed window of one model, every version in it (merged over routers). */
export interface WindowPoint {
  /** Epoch ms. */
  start: number;
  ms: number;
  versions: WindowVersionPoint[];
}

/** A stored event with its stream sequence. */
export interface SequencedEvent {
  sequence: number;
  event: MeshEvent;
}

/** The rollout actions of the console, and the RPC whose scope each needs. */
export const ACTION_RPC = Object.freeze({
  start: 'StartRollout',
  weight: 'SetRolloutWeight',
  promote: 'PromoteRollout',
  rollback: 'RollbackRollout',
  pause: 'PauseRollout',
  resume: 'ResumeRollout',
} satisfies Record<string, RegistryRpc>);

/** A rollout action as a page posts it. */
export type RolloutAction = keyof typeof ACTION_RPC;

/** What a page sends to act on a model's rollout (JSON). */
export interface ActionRequest {
  action: RolloutAction;
  /** start: the canary version. */
  version?: number;
  /** start, weight: the canary's share in percent. */
  weight?: number;
  /** start: the weights to step through under analysis. */
  steps?: number[];
  /** start: let the analysis step, promote and roll back. */
  automatic?: boolean;
  /** promote, rollback, pause: why (kept in the history and the event). */
  reason?: string;
}

/** What travels to a live page. */
export type LiveMessage =
  | { kind: 'event'; model: string; data: SequencedEvent }
  | { kind: 'window'; model: string; data: { model: string; point: WindowPoint } }
  | { kind: 'pods' };

/** A page's live stream as the hub sees it. */
export interface LiveClient {
  /** Whether the message is for this page (its caller may read it, its filter takes it). */
  wants(m: LiveMessage): boolean;
  send(m: LiveMessage): void;
}

/** Settings of the console's API. */
export interface ConsoleApiOptions {
  /** Closed windows kept per model (INFERMESH_CONSOLE_WINDOWS_KEPT). */
  windowsKept: number;
  /** Events kept for pages that open (the newest), and read back from the stream at start. */
  eventsKept: number;
  /** Bytes of those events, as JSON, at most (INFERMESH_CONSOLE_EVENTS_KEPT_BYTES). */
  eventsKeptBytes: number;
  /** Pages are told of pod changes at most this often. */
  podsEveryMs: number;
}

/** Checks a posted action's shape; INVALID_ARGUMENT naming the field otherwise. */
export function parseAction(body: unknown): ActionRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw errors.invalidArgument('the action must be a JSON object');
  const b = body as Record<string, unknown>;
  if (typeof b.action !== 'string' || !Object.hasOwn(ACTION_RPC, b.action)) {
    throw errors.invalidArgument(`"action" must be one of ${Object.keys(ACTION_RPC).join(', ')}`);
  }
  const nat = (k: string, max: number) => {
    const v = b[k];
    if (v === undefined) return undefined;
    if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > max) throw errors.invalidArgument(`"${k}" must be a whole number from 0 to ${max}`);
    return v as number;
  };
  const steps = b.steps;
  if (steps !== undefined && (!Array.isArray(steps) || steps.length > 100 || !steps.every((s) => Number.isSafeInteger(s) && s >= 0 && s <= 100))) {
    throw errors.invalidArgument('"steps" must be a list of at most 100 weights from 0 to 100');
  }
  if (b.automatic !== undefined && typeof b.automatic !== 'boolean') throw errors.invalidArgument('"automatic" must be true or false');
  if (b.reason !== undefined && typeof b.reason !== 'string') throw errors.invalidArgument('"reason" must be a string');
  return {
    action: b.action as RolloutAction,
    version: nat('version', 2 ** 32 - 1),
    weight: nat('weight', 100),
    steps: steps as number[] | undefined,
    automatic: b.automatic as boolean | undefined,
    reason: b.reason as string | undefined,
  };
}

/** The largest finite bucket bound: a quantile beyond it is "more than" this. */
const LAST_BOUND_MS = Math.max(...LATENCY_BUCKETS_MS.filter(Number.isFinite));

/** A closed window as the charts draw it. */
export function windowPoint(start: number, ms: number, windows: ReadonlyMap<number, VersionWindow>): WindowPoint {
  return {
    start,
    ms,
    versions: [...windows.values()].sort((a, b) => a.version - b.version).map((w) => {
      const p50 = latencyQuantile(w, 0.5);
      const p99 = latencyQuantile(w, 0.99);
      return {
        version: w.version,
        requests: w.requests,
        errors: w.errors,
        rps: w.requests / (ms / 1000),
        error_rate: errorRate(w),
        p50_ms: Number.isFinite(p50) ? p50 : LAST_BOUND_MS,
        p99_ms: Number.isFinite(p99) ? p99 : LAST_BOUND_MS,
        p50_over: !Number.isFinite(p50),
        p99_over: !Number.isFinite(p99),
      };
    }),
  };
}

export class ConsoleApi {
  private readonly windows = new Map<string, WindowPoint[]>();
  private readonly events: (SequencedEvent & { bytes: number })[] = [];
  private eventBytes = 0;
  private readonly clients = new Set<LiveClient>();
  private readonly stops: (() => void)[] = [];
  private podsTimer: NodeJS.Timeout | undefined;
  private podsAt = 0;
  private readonly following = new AbortController();
  private follower: Promise<void> | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly rollouts: Rollouts,
    private readonly pods: PodView,
    controller: RolloutController,
    private readonly windowMs: number,
    private readonly opts: ConsoleApiOptions,
    private readonly log: Logger,
  ) {
    this.stops.push(controller.onClosedWindow((model, start, versions) => this.addWindow(model, windowPoint(start, this.windowMs, versions))));
    this.stops.push(pods.onChange(() => this.podsChanged()));
  }

  /** Follows the event stream from the newest `eventsKept` events on (`lastSequence`: the stream's last). */
  start(lastSequence: number): void {
    const afterSeq = Math.max(0, lastSequence - this.opts.eventsKept);
    this.follower = this.registry.watchEvents({ afterSeq }, async (event, sequence) => this.addEvent({ sequence, event }), this.following.signal)
      .catch((err: unknown) => this.log.warn('the console stopped following events', { err }));
  }

  async stop(): Promise<void> {
    for (const s of this.stops) s();
    clearTimeout(this.podsTimer);
    this.following.abort();
    await this.follower;
  }

  /** Every model the caller may read, with its versions and rollout. */
  async models(caller: Caller): Promise<unknown[]> {
    const models = (await this.registry.listModels()).filter((m) => caller.may('ListModels', m.name));
    return Promise.all(models.map(async (m) => {
      const [versions, rollout] = await Promise.all([this.registry.listVersions(m.name), this.rollouts.status(m.name)]);
      return { model: modelToProto(m), versions: versions.map(versionToProto), rollout: statusToProto(rollout) };
    }));
  }

  /** One model: versions, rollout with its history, the windows kept, its recent events, and what the caller may do. */
  async model(caller: Caller, name: string): Promise<unknown> {
    caller.check('GetModel', name);
    const [model, versions, rollout] = await Promise.all([this.registry.getModel(name), this.registry.listVersions(name), this.rollouts.status(name)]);
    return {
      model: modelToProto(model),
      versions: versions.map(versionToProto),
      rollout: statusToProto(rollout),
      windows: this.windows.get(name) ?? [],
      window_ms: this.windowMs,
      events: this.recentEvents(caller, name),
      windows_kept: this.opts.windowsKept,
      may: { rollout: caller.may('StartRollout', name) },
    };
  }

  /** The pods, with the versions of models the caller may read (who reads no model sees none). */
  podList(caller: Caller): unknown {
    return { pods: this.pods.visibleTo(caller) };
  }

  /** The events kept that the caller may read, oldest first; `model`: only that model's. */
  recentEvents(caller: Caller, model: string | undefined): SequencedEvent[] {
    return this.events.filter((e) => caller.mayReadEvent(e.event) && (model === undefined || e.event.model === model)).map(({ sequence, event }) => ({ sequence, event }));
  }

  /** Does a rollout action for `caller` on `model`: the scope of its RPC first, then Rollouts. */
  async act(caller: Caller, model: string, a: ActionRequest): Promise<unknown> {
    caller.check(ACTION_RPC[a.action], model);
    const by = caller.name;
    switch (a.action) {
      case 'start':
        if (a.version === undefined) throw errors.invalidArgument('start needs "version", the canary');
        return statusToProto(await this.rollouts.start(model, a.version, { weight: a.weight ?? 0, steps: a.steps ?? [], automatic: a.automatic ?? false, analysis: {} }, by));
      case 'weight':
        if (a.weight === undefined) throw errors.invalidArgument('weight needs "weight", in percent');
        return statusToProto(await this.rollouts.setWeight(model, a.weight, by));
      case 'promote':
        return statusToProto(await this.rollouts.promote(model, by, a.reason || undefined));
      case 'rollback':
        return statusToProto(await this.rollouts.rollback(model, by, a.reason || undefined));
      case 'pause':
        return statusToProto(await this.rollouts.pause(model, by, a.reason || undefined));
      case 'resume':
        return statusToProto(await this.rollouts.resume(model, by));
    }
  }

  /** Adds a page's live stream; returns how to remove it. */
  attach(client: LiveClient): () => void {
    this.clients.add(client);
    return () => this.clients.delete(client);
  }

  private addWindow(model: string, point: WindowPoint): void {
    if (!MODEL_NAME.test(model)) return;
    let kept = this.windows.get(model);
    if (!kept) this.windows.set(model, (kept = []));
    kept.push(point);
    if (kept.length > this.opts.windowsKept) kept.splice(0, kept.length - this.opts.windowsKept);
    this.broadcast({ kind: 'window', model, data: { model, point } });
  }

  private addEvent(e: SequencedEvent): void {
    const bytes = JSON.stringify(e.event).length;
    this.events.push({ ...e, bytes });
    this.eventBytes += bytes;
    while (this.events.length > this.opts.eventsKept || (this.eventBytes > this.opts.eventsKeptBytes && this.events.length > 0)) {
      this.eventBytes -= this.events.shift()!.bytes;
    }
    this.broadcast({ kind: 'event', model: e.event.model, data: e });
  }

  private podsChanged(): void {
    if (this.podsTimer) return;
    const wait = Math.max(0, this.podsAt + this.opts.podsEveryMs - Date.now());
    this.podsTimer = setTimeout(() => {
      this.podsTimer = undefined;
      this.podsAt = Date.now();
      this.broadcast({ kind: 'pods' });
    }, wait);
    this.podsTimer.unref();
  }

  private broadcast(m: LiveMessage): void {
    for (const c of this.clients) {
      if (c.wants(m)) c.send(m);
    }
  }
}
