// infermesh.registry.v1 handlers: check the caller (access.ts), decode, call the Registry or the
// key store, encode. No logic of their own.
import { Metadata, type ServerReadableStream } from '@grpc/grpc-js';
import { ErrorCode, MeshError, errors } from '../../lib/errors';
import { loadConfig, type Config } from '../../lib/config';
import { authorizationOfMetadata } from '../../lib/auth';
import { clientStreamHandler, serverStreamHandler, unaryHandler } from '../../lib/grpc/handlers';
import { SendTally, StreamSender, type SendLimits } from '../../lib/grpc/stream-send';
import type { Logger } from '../../lib/log';
import type { Model, PushVersionRequestOut, RegistryHandlers, ServingConfigOut, Version } from '../../lib/grpc/types';
import type { UpdateModelRequest__Output as UpdateModelRequestOut } from '../../lib/grpc/generated/infermesh/registry/v1/UpdateModelRequest';
import type { Event } from '../../lib/grpc/generated/infermesh/registry/v1/Event';
import type { MeshEvent } from '../../lib/events';
import type { ModelChanges, ModelView, Registry } from './registry';
import { warmupFromProto, warmupToProto } from './warmup-config';
import type { ModelRecord, ServingConfig, VersionRecord } from './records';
import { ALL_MODELS, type Caller, type RegistryAccess } from './access';
import type { KeyStore, KeyView } from './keys';
import type { ApiKey } from '../../lib/grpc/generated/infermesh/registry/v1/ApiKey';
import type { PodView } from './pod-view';
import { idleBounded } from './artifact-upload';

/** ModelRecord (with its KV revision when known) → protocol Model. */
export function modelToProto(m: ModelRecord & { revision?: number; placement?: ModelView['placement']; placementRevision?: number }): Model {
  const b = m.config.dynamicBatching;
  return {
    name: m.name,
    description: m.description,
    labels: m.labels,
    config: {
      ...(b ? {
        dynamic_batching: {
          enabled: b.enabled ?? false,
          max_batch_size: b.maxBatchSize ?? 0,
          max_queue_delay_us: b.maxQueueDelayUs ?? 0,
          preferred_batch_sizes: b.preferredBatchSizes ?? [],
          max_queue_size: b.maxQueueSize ?? 0,
        },
      } : {}),
      warmup: warmupToProto(m.config.warmup),
    },
    latest_version: m.latestVersion,
    traffic: m.traffic,
    created_at: m.createdAt,
    revision: String(m.revision ?? 0),
    placement: (m.placement ?? []).map((p) => ({ version: p.version, pods: p.pods, memory_bytes: String(p.memoryBytes) })),
    placed: m.placement !== undefined,
    placement_revision: String(m.placementRevision ?? 0),
  };
}

/** VersionRecord → protocol Version. */
export function versionToProto(v: VersionRecord): Version {
  return {
    model: v.model,
    version: v.version,
    sha256: v.sha256,
    size_bytes: String(v.sizeBytes),
    created_at: v.createdAt,
    inputs: v.inputs,
    outputs: v.outputs,
    state: v.state === 'ARCHIVED' ? 'VERSION_STATE_ARCHIVED' : 'VERSION_STATE_AVAILABLE',
  };
}

function configFromProto(c: ServingConfigOut | null): ServingConfig {
  const b = c?.dynamic_batching;
  const warmup = c?.warmup.length ? { warmup: warmupFromProto(c.warmup) } : {};
  if (!b) return warmup;
  return {
    ...warmup,
    dynamicBatching: {
      enabled: b.enabled,
      maxBatchSize: b.max_batch_size || undefined,
      maxQueueDelayUs: Number(b.max_queue_delay_us) || undefined,
      preferredBatchSizes: b.preferred_batch_sizes.length ? b.preferred_batch_sizes : undefined,
      maxQueueSize: b.max_queue_size || undefined,
    },
  };
}

/** A stored event → protocol Event (common fields, and the whole event as JSON). */
export function eventToProto(event: MeshEvent, seq: number): Event {
  return { sequence: String(seq), id: event.id, time: event.time, model: event.model, type: event.type, json: JSON.stringify(event) };
}

const UPDATABLE = ['description', 'labels', 'config'] as const;

/**
 * UpdateModel's request → the fields to replace: those named in update_mask, or without a mask
 * those set (a non-empty description or labels, a config message).
 */
export function changesFromProto(r: UpdateModelRequestOut): ModelChanges {
  const mask = r.update_mask.length > 0
    ? r.update_mask
    : UPDATABLE.filter((f) => (f === 'description' ? r.description !== '' : f === 'labels' ? Object.keys(r.labels).length > 0 : r.config !== null));
  const changes: ModelChanges = {};
  for (const path of mask) {
    if (path === 'description') changes.description = r.description;
    else if (path === 'labels') changes.labels = r.labels;
    else if (path === 'config') changes.config = configFromProto(r.config);
    else throw errors.invalidArgument(`update_mask: unknown field '${path}' (use ${UPDATABLE.join(', ')})`);
  }
  if (mask.length === 0) throw errors.invalidArgument('nothing to update: set a description, labels or config, or name them in update_mask');
  return changes;
}

/** The chunks of a push stream after its header; rejects anything out of order. */
async function* pushChunks(it: AsyncIterator<PushVersionRequestOut>): AsyncGenerator<Uint8Array> {
  for (let r = await it.next(); !r.done; r = await it.next()) {
    if (r.value.content !== 'chunk' || !r.value.chunk) throw errors.invalidArgument('push stream: only the first message may be a header');
    yield r.value.chunk;
  }
}

/**
 * The largest start_sequence a watch may ask for, 2^53 - 1: event sequences are JavaScript numbers
 * here (and in the NATS client), exact only up to it.
 */
const MAX_START_SEQUENCE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * WatchEvents' start_sequence (a uint64, a decimal string with lib/grpc's `longs: String`; parsed
 * exactly, as a Long or number would be too) → the stream sequence to deliver after; 0 and 1 both
 * mean the oldest. Above MAX_START_SEQUENCE it is INVALID_ARGUMENT: no sequence there can be
 * served, and rounded to a number it would be another (2^64 - 1 was INTERNAL from JetStream).
 */
export function afterSequenceOf(startSequence: string): number {
  const start = BigInt(String(startSequence));
  if (start > MAX_START_SEQUENCE) {
    throw errors.invalidArgument(`start_sequence ${start} is above ${MAX_START_SEQUENCE} (2^53 - 1), the largest event sequence the registry serves`);
  }
  return start > 0n ? Number(start) - 1 : 0;
}

/** KeyView → protocol ApiKey (a view has no hash; nothing here could show a secret). */
export function keyToProto(k: KeyView): ApiKey {
  return { id: k.id, name: k.name, grants: k.grants, created_at: k.createdAt, created_by: k.createdBy, revoked_at: k.revokedAt ?? '' };
}

/** Limits on what one caller, and every caller together, may hold at once on a replica. */
export interface SlotLimits {
  perCaller: number;
  total: number;
}

/** Limits on open WatchEvents streams, each of which holds a consumer on the event stream. */
export interface WatchLimits extends SlotLimits {
  /** Streams one caller (watcherOf) may hold open: INFERMESH_REGISTRY_MAX_WATCHES_PER_CALLER, default 16. */
  perCaller: number;
  /** Streams of every caller together: INFERMESH_REGISTRY_MAX_WATCHES, default half of INFERMESH_EVENT_STREAM_MAX_CONSUMERS. */
  total: number;
}

/** The WatchEvents limits a configuration sets. */
export function watchLimitsOf(config: Pick<Config, 'registryMaxWatchesPerCaller' | 'registryMaxWatches'>): WatchLimits {
  return { perCaller: config.registryMaxWatchesPerCaller, total: config.registryMaxWatches };
}

/** Limits on pushes in progress, each of which stages up to INFERMESH_MAX_ARTIFACT_BYTES on disk. */
export interface UploadLimits extends SlotLimits {
  /** Pushes one caller (watcherOf) may have in progress: INFERMESH_REGISTRY_MAX_UPLOADS_PER_CALLER, default 5. */
  perCaller: number;
  /** Pushes of every caller together: INFERMESH_REGISTRY_MAX_UPLOADS, default 16. */
  total: number;
  /** The longest a push may send nothing: INFERMESH_REGISTRY_UPLOAD_IDLE_TIMEOUT_MS, default 60 s (0: for ever). */
  idleTimeoutMs: number;
}

/** The PushVersion limits a configuration sets. */
export function uploadLimitsOf(config: Pick<Config, 'registryMaxUploadsPerCaller' | 'registryMaxUploads' | 'registryUploadIdleTimeoutMs'>): UploadLimits {
  return { perCaller: config.registryMaxUploadsPerCaller, total: config.registryMaxUploads, idleTimeoutMs: config.registryUploadIdleTimeoutMs };
}

/** The bounds of PullArtifact and WatchEvents streams a configuration sets. */
export function sendLimitsOf(config: Pick<Config, 'registryMaxStreamBufferBytes' | 'registrySendTimeoutMs'>): SendLimits {
  return { maxBufferBytes: config.registryMaxStreamBufferBytes, sendTimeoutMs: config.registrySendTimeoutMs };
}

/** Bytes an artifact chunk takes on the wire: its data, the field's tag and length, the gRPC prefix. */
const chunkSize = (m: { data: Buffer }) => m.data.length + 16;

/** Bytes an event takes on the wire: its strings, with room for the fields' tags and lengths. */
const eventSize = (e: Event) => Buffer.byteLength(e.json ?? '') + (e.id?.length ?? 0) + (e.model?.length ?? 0) + (e.type?.length ?? 0) + (e.time?.length ?? 0) + 64;

/**
 * Whom a WatchEvents stream or a push counts against: the authenticated caller (`key:<id>`,
 * `jwt:<subject>`, a service's SPIFFE ID), or with authentication off the client's address
 * (without its port): there every caller is `anonymous`, and one client must not take everyone's share.
 */
export function watcherOf(caller: Caller, peer: string): string {
  return caller.principal.kind === 'anonymous' ? `peer:${peer.replace(/:\d+$/, '')}` : caller.name;
}

/** How a CallerSlots names what it holds and its settings, in its refusals. */
interface SlotNames {
  /** What `n` of them are: `${n} event watches open`. */
  held: (n: number) => string;
  perCallerSetting: string;
  totalSetting: string;
  /** What the caller at its limit should do. */
  makeRoom: string;
}

/**
 * Admission of long-lived calls: at most `perCaller` held by one caller (watcherOf) and `total` by
 * all. admit() takes a slot, or throws Overloaded (RESOURCE_EXHAUSTED) naming the setting that
 * refused it; the function it returns gives the slot back (once). Watches and pushes are admitted
 * by the same rule, each with its own settings.
 */
export class CallerSlots {
  private open = 0;
  private readonly openOf = new Map<string, number>();

  constructor(private readonly limits: SlotLimits, private readonly names: SlotNames) {}

  /** Slots held now, every caller's together. */
  get size(): number {
    return this.open;
  }

  admit(holder: string): () => void {
    const mine = this.openOf.get(holder) ?? 0;
    const n = this.names;
    if (mine >= this.limits.perCaller) {
      throw new MeshError(ErrorCode.Overloaded, `this caller has ${n.held(mine)}, the most it may (${n.perCallerSetting}): ${n.makeRoom}`);
    }
    if (this.open >= this.limits.total) {
      throw new MeshError(ErrorCode.Overloaded, `the registry has ${n.held(this.open)}, the most it serves at once (${n.totalSetting}); try again later`);
    }
    this.open++;
    this.openOf.set(holder, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.open--;
      const left = (this.openOf.get(holder) ?? 1) - 1;
      if (left > 0) this.openOf.set(holder, left);
      else this.openOf.delete(holder);
    };
  }
}

/**
 * Admission of WatchEvents streams, so neither one caller nor all of them together fill the event
 * stream's consumer table, which routers and pods need too.
 */
export class WatchSlots extends CallerSlots {
  constructor(limits: WatchLimits) {
    super(limits, {
      held: (n) => `${n} event watches open`,
      perCallerSetting: 'INFERMESH_REGISTRY_MAX_WATCHES_PER_CALLER',
      totalSetting: 'INFERMESH_REGISTRY_MAX_WATCHES',
      makeRoom: 'cancel one first',
    });
  }
}

/**
 * Admission of pushes, each staging its bytes on the registry's disk until they are stored: one key
 * holds at most perCaller × INFERMESH_MAX_ARTIFACT_BYTES of it, every caller total × that.
 */
export class UploadSlots extends CallerSlots {
  constructor(limits: SlotLimits) {
    super(limits, {
      held: (n) => `${n} pushes in progress`,
      perCallerSetting: 'INFERMESH_REGISTRY_MAX_UPLOADS_PER_CALLER',
      totalSetting: 'INFERMESH_REGISTRY_MAX_UPLOADS',
      makeRoom: 'let one finish first',
    });
  }
}

/**
 * The registry's gRPC handlers over `registry` and `keys`. Every handler first asks `access` for its
 * caller, checked for the RPC's scope (SCOPE_OF) on the model it names, and names that caller in
 * what it changes; lists show only what the caller may read.
 */
export function registryHandlers(
  registry: Registry,
  keys: KeyStore,
  access: RegistryAccess,
  pods: PodView,
  log: Logger,
  recheckMs: number,
  // Defaults: the settings' defaults (the registry service passes its configuration's).
  watchLimits: WatchLimits = watchLimitsOf(loadConfig({})),
  uploadLimits: UploadLimits = uploadLimitsOf(loadConfig({})),
  sendLimits: SendLimits = sendLimitsOf(loadConfig({})),
  /** What the open PullArtifact and WatchEvents streams hold together (the service reports it). */
  sends: SendTally = new SendTally(),
): RegistryHandlers {
  const watches = new WatchSlots(watchLimits);
  const uploads = new UploadSlots(uploadLimits);
  return {
    CreateModel: unaryHandler(log, async (call) => {
      const r = call.request;
      const caller = await access.authorize(call, 'CreateModel', r.name);
      return modelToProto(await registry.createModel({ name: r.name, description: r.description, labels: r.labels, config: configFromProto(r.config) }, caller.name));
    }),
    GetModel: unaryHandler(log, async (call) => {
      await access.authorize(call, 'GetModel', call.request.name);
      return modelToProto(await registry.getModel(call.request.name));
    }),
    ListModels: unaryHandler(log, async (call) => {
      const caller = await access.caller(call);
      return { models: (await registry.listModels()).filter((m) => caller.may('ListModels', m.name)).map(modelToProto) };
    }),
    PushVersion: clientStreamHandler(log, async (call: ServerReadableStream<PushVersionRequestOut, Version>) => {
      // Authenticated before anything is read; authorized on the header's model before any byte is stored.
      const caller = await access.caller(call);
      // Every message, the header too, within the idle timeout: a quiet client holds nothing for ever.
      const it = idleBounded((call as AsyncIterable<PushVersionRequestOut>)[Symbol.asyncIterator](), uploadLimits.idleTimeoutMs);
      const first = await it.next();
      if (first.done || first.value.content !== 'header' || !first.value.header) {
        throw errors.invalidArgument('push stream must start with a header naming the model');
      }
      const h = first.value.header;
      caller.check('PushVersion', h.model);
      // A uint64, exact (a number would round 2^64 - 1 and echo another value); 0: not announced, refused.
      const sizeBytes = BigInt(h.size_bytes);
      // The slot is held until the staged bytes are removed (pushVersion returns after that).
      const release = uploads.admit(watcherOf(caller, call.getPeer()));
      try {
        return versionToProto(await registry.pushVersion(h.model, pushChunks(it), { expectedSha256: h.expected_sha256, sizeBytes }, caller.name));
      } finally {
        release();
      }
    }),
    ListVersions: unaryHandler(log, async (call) => {
      await access.authorize(call, 'ListVersions', call.request.model);
      return { versions: (await registry.listVersions(call.request.model)).map(versionToProto) };
    }),
    GetVersion: unaryHandler(log, async (call) => {
      await access.authorize(call, 'GetVersion', call.request.model);
      return versionToProto(await registry.getVersion(call.request.model, call.request.version));
    }),
    PullArtifact: serverStreamHandler(log, async (call) => {
      await access.authorize(call, 'PullArtifact', call.request.model);
      const { chunks } = await registry.openArtifact(call.request.model, call.request.version);
      // The store is read only as the client takes what was written (the sender waits past its
      // bound); leaving the loop (a cancel, a reset, a failed read) closes the store consumer.
      const sender = new StreamSender(call, { limits: sendLimits, sizeOf: chunkSize, tally: sends, log, what: 'PullArtifact' });
      try {
        for await (const c of chunks) await sender.write({ data: Buffer.from(c.buffer, c.byteOffset, c.byteLength) });
        // The last chunks, unread, are still under the send timeout.
        await sender.drained();
      } finally {
        sender.close();
      }
    }),
    UpdateModel: unaryHandler(log, async (call) => {
      const r = call.request;
      const caller = await access.authorize(call, 'UpdateModel', r.name);
      return modelToProto(await registry.editModel(r.name, changesFromProto(r), Number(r.expected_revision) || undefined, caller.name));
    }),
    ArchiveVersion: unaryHandler(log, async (call) => {
      const caller = await access.authorize(call, 'ArchiveVersion', call.request.model);
      return versionToProto(await registry.archiveVersion(call.request.model, call.request.version, caller.name));
    }),
    DeleteVersion: unaryHandler(log, async (call) => {
      const caller = await access.authorize(call, 'DeleteVersion', call.request.model);
      const { record, artifactDeleted } = await registry.deleteVersion(call.request.model, call.request.version, caller.name);
      return { version: versionToProto(record), artifact_deleted: artifactDeleted };
    }),
    WatchEvents: serverStreamHandler(log, async (call) => {
      const r = call.request;
      const caller = r.model ? await access.authorize(call, 'WatchEvents', r.model) : await access.caller(call);
      // Unfiltered, as the console's live stream: only for a caller that reads some model. Any
      // other (an infer-only key) would hold a consumer on the event stream that delivers it nothing.
      if (!r.model) caller.checkReadsSome('watching events');
      const afterSeq = r.only_new ? undefined : afterSequenceOf(r.start_sequence);
      // Each open watch holds a consumer on the event stream until it ends (it is deleted then):
      // its slot is given back only once that is done.
      const release = watches.admit(watcherOf(caller, call.getPeer()));
      // Without a model filter, the caller sees the events of the models it may read, and key
      // events only with the scope that manages keys.
      const visible = (e: MeshEvent) => caller.mayReadEvent(e);
      const cancelled = new AbortController();
      const onCancel = () => cancelled.abort();
      let refused: unknown;
      let stopChecking = () => undefined as void;
      // A client that takes nothing for the send timeout is reset: the watch ends with it.
      const sender = new StreamSender(call, { limits: sendLimits, sizeOf: eventSize, tally: sends, log, what: 'WatchEvents', onOver: onCancel });
      try {
        call.on('cancelled', onCancel);
        // A client that cancelled while it was authenticated is not watched at all.
        if (call.cancelled) cancelled.abort();
        // A key revoked (or a JWT expired) while the watch is open ends it, as it would end any new call.
        stopChecking = access.recheck(authorizationOfMetadata(call.metadata), caller, recheckMs, (err) => {
          refused = err;
          cancelled.abort();
        });
        await registry.watchEvents(
          { afterSeq, model: r.model || undefined },
          (event, seq) => (visible(event) ? sender.write(eventToProto(event, seq)) : Promise.resolve()),
          cancelled.signal,
          // Response headers tell the client the stream is live: every later event will come.
          () => call.sendMetadata(new Metadata()),
        );
      } finally {
        stopChecking();
        call.off('cancelled', onCancel);
        sender.close();
        release();
      }
      // The watch ended because its caller is no longer let in: the stream ends with that status.
      if (refused !== undefined) throw refused;
    }),
    CreateKey: unaryHandler(log, async (call) => {
      const caller = await access.authorize(call, 'CreateKey', ALL_MODELS);
      const { token, key } = await keys.create(call.request.name, call.request.grants, caller.name);
      return { token, key: keyToProto(key) };
    }),
    ListKeys: unaryHandler(log, async (call) => {
      await access.authorize(call, 'ListKeys', ALL_MODELS);
      return { keys: (await keys.list()).map(keyToProto) };
    }),
    RevokeKey: unaryHandler(log, async (call) => {
      const caller = await access.authorize(call, 'RevokeKey', ALL_MODELS);
      return keyToProto(await keys.revoke(call.request.id, caller.name));
    }),
    ListPods: unaryHandler(log, async (call) => {
      // A caller that reads some model sees the pods; of their versions only the models it may read.
      return { pods: pods.visibleTo(await access.caller(call)) };
    }),
  };
}
