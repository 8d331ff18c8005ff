// The registry's domain: models, immutable versions, content-addressed artifacts and the traffic
// split, stored in JetStream (KV + Object Store) and announced as events. Holds no state of its own,
// so replicas can run side by side: every read-modify-write is a compare-and-set on the KV revision.
import fs from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { Readable } from 'node:stream';
import { kvDeleteIfNeverWritten, kvKeys, resources, type JetStreamClient, type KV, type ObjectStore } from '../../lib/nats';
import { settings } from '../../lib/config';
import { errors, MeshError, ErrorCode, shownName } from '../../lib/errors';
import { checkText, escapeControls } from '../../lib/text';
import { decodeEvent, followEvents, newEvent, publishEvent, subjects, type EventFollower, type EventInput, type MeshEvent } from '../../lib/events';
import { readOnnxSignature, OnnxFormatError } from '../../lib/onnx';
import { JETSTREAM_REQUEST_TIMEOUT_MS, retry, retryDelayMs } from '../../lib/retry';
import { meterOf } from '../../lib/metrics';
import { isKeyId } from '../../lib/auth';
import type { Logger } from '../../lib/log';
import { UploadStaging } from './artifact-upload';
import { checkWarmup } from './warmup-config';
import { readArtifact } from './artifact-reader';
import { announcing, announcingVersionWrite, confirmingVersionWrite, isVersionWrite, keys, MODEL_NAME, MODEL_NAME_RULE, pendingEventOf, type ArtifactDeletion, type ModelRecord, type OutboxIndex, type OutboxRecord, type PendingEvent, type PlacementRecord, type ServingConfig, type VersionRecord, type VersionWriteInput, type VersionWriteMarker } from './records';

/** What the registry is built from. */
export interface RegistryDeps {
  kv: KV;
  artifacts: ObjectStore;
  js: JetStreamClient;
  log: Logger;
  /** Largest artifact accepted, in bytes. */
  maxArtifactBytes: number;
  /** Where pushes stage their bytes (INFERMESH_REGISTRY_UPLOAD_DIR); default the OS temp folder. */
  uploads?: UploadStaging;
  /** Most nodes a pushed model may have, graph, subgraphs and local functions together (INFERMESH_MAX_GRAPH_NODES; default 100 000). */
  maxGraphNodes?: number;
  /** Most a model's description and labels may take together, in UTF-8 bytes (INFERMESH_MAX_MODEL_METADATA_BYTES; default 256 KiB). */
  maxModelMetadataBytes?: number;
  /** Most a model's warm-up samples may take as stored, in bytes (INFERMESH_MAX_WARMUP_CONFIG_BYTES). */
  maxWarmupConfigBytes: number;
  /** Most runs of a model's warm-up, every sample's count together (INFERMESH_MAX_WARMUP_RUNS). */
  maxWarmupRuns: number;
  /** Most elements of a model's warm-up samples, all inputs together (INFERMESH_MAX_WARMUP_ELEMENTS). */
  maxWarmupElements: number;
  /** Bytes of events each watch fetches ahead of its reader (INFERMESH_EVENT_FOLLOW_AHEAD_BYTES; default 2 MiB). */
  eventFollowAheadBytes?: number;
  /** Whether versions are placed (INFERMESH_PLACEMENT): models are read with their placement. */
  placement?: boolean;
  /** With placement on: why a version of `sizeBytes` can be held by no pod (undefined: it may fit). */
  unplaceable?: (sizeBytes: number) => string | undefined;
  /** The NATS server's max_payload, which every record must fit in (its INFO; default 1 MiB, nats-server's). */
  maxPayloadBytes?: number;
  /** How often the periodic flush runs (INFERMESH_REGISTRY_OUTBOX_INTERVAL_MS; default 10 s): events younger wait on their own write's publish. */
  outboxIntervalMs?: number;
  /** How long a write's call waits for its events to be published (INFERMESH_REGISTRY_OUTBOX_CALL_WAIT_MS; default 5 s). */
  outboxCallWaitMs?: number;
  /** The most one periodic flush spends publishing a record's events (INFERMESH_REGISTRY_OUTBOX_FLUSH_BUDGET_MS; default 60 s). */
  outboxFlushBudgetMs?: number;
  /** How long one attempt to publish an outbox's event waits (INFERMESH_REGISTRY_OUTBOX_PUBLISH_TIMEOUT_MS; default 5 s). */
  outboxPublishTimeoutMs?: number;
  /** Attempts a periodic flush makes to publish one event (INFERMESH_REGISTRY_OUTBOX_PUBLISH_ATTEMPTS; default 6). */
  outboxPublishAttempts?: number;
  /** How old a version's write's event must be before a flush gives the write up (INFERMESH_REGISTRY_OUTBOX_VERSION_WRITE_GRACE_MS; default 40 s). */
  outboxVersionWriteGraceMs?: number;
  /** The API keys bucket (KEYS_BUCKET), whose records keep outboxes too (keys.ts): flushed with the models'. */
  keys?: KV;
}

/**
 * What KeyStore stores its events through (Registry.keyOutbox): the outbox of each key's record,
 * stored with the record by the same write (announcing()).
 */
export interface KeyOutbox {
  /** Marks key `id` as having events pending: before a write stores them. */
  mark(id: string): Promise<void>;
  /** Publishes the events a write stored in key `id`'s record, within the call's wait (the rest is the flush's). */
  announce(id: string): Promise<void>;
}

/** A model's record with the revision it was read at (UpdateModel's compare-and-set takes it). */
export type ModelView = ModelRecord & {
  revision: number;
  /** With placement on: its versions' copies (none yet: an empty list), and that record's revision (0: none). */
  placement?: PlacementRecord['versions'];
  placementRevision?: number;
};

/** What UpdateModel replaces: each field given replaces the stored one; the others are kept. */
export interface ModelChanges {
  description?: string;
  labels?: Record<string, string>;
  config?: ServingConfig;
}

/** A SHA-256 as a client writes it: 64 hex digits, either case. */
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/**
 * The sha256 a push expects, lower-cased, or undefined when none is given (empty). Anything but 64
 * hex digits is INVALID_ARGUMENT giving its length only: the value is the caller's, of any size.
 */
function expectedSha256Of(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (!SHA256_HEX.test(value)) throw errors.invalidArgument(`expected_sha256 must be 64 hex digits (a SHA-256), got ${value.length} characters`);
  return value.toLowerCase();
}

/** Options of pushVersion(). */
export interface PushOptions {
  /**
   * Reject the bytes unless they hash to this: 64 hex digits, either case, checked before any
   * byte is received; empty or unset: not checked.
   */
  expectedSha256?: string;
  /**
   * The size the client announced (a uint64, exact): required (0 or unset: refused before reading,
   * see pushVersion); above the maximum, refused before reading; else the bytes must add up to it.
   */
  sizeBytes?: bigint;
}

/** Where a WatchEvents stream starts: after a stream sequence (0: from the oldest), or only new events. */
export interface WatchFrom {
  afterSeq?: number;
  /** Only this model's events; default every model's. */
  model?: string;
}

/** The outcome of deleteVersion(). */
export interface DeletedVersion {
  record: VersionRecord;
  /** False when another version (of any model) still has the same bytes, so they were kept. */
  artifactDeleted: boolean;
}

/** Fields of a new model. */
export interface NewModel {
  name: string;
  description?: string;
  labels?: Record<string, string>;
  config?: ServingConfig;
}

const encoder = new TextEncoder();
const encode = (v: unknown) => encoder.encode(JSON.stringify(v));

/** JetStream's "wrong last sequence": someone else wrote the key since we read it. */
function isConflict(err: unknown): boolean {
  return err instanceof Error && /wrong last sequence|key exists/i.test(err.message);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long a deletion may hold an artifact's marker before others treat it as abandoned (a crash). */
const ARTIFACT_DELETION_STALE_MS = 60_000;

const inTraffic = (m: ModelRecord, version: number) => m.traffic.some((t) => t.version === version);

/** nats-server's default max_payload. */
const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
/** What a KV write's headers may take beside its value within max_payload (its subject and expected revision). */
const KV_HEADER_ROOM_BYTES = 1024;
/**
 * The most a pending event kept whole may take: a rollout.changed with a reason of
 * MAX_ROLLOUT_REASON_CHARS (1024), each escaped in JSON at worst, and its fields. With
 * OUTBOX_SHARE of max_payload, it sets how many events a record's outbox may hold (32 at 1 MiB):
 * the rest of the record (description and labels, warm-up samples, rollout history) keeps its room.
 */
const PENDING_EVENT_MAX_BYTES = 8 * 1024;
const OUTBOX_SHARE = 1 / 4;
/** The longest model name (MODEL_NAME), and what JSON adds to each in the outbox index (its quotes and comma). */
const OUTBOX_INDEX_NAME_BYTES = 128 + 3;
/** What the outbox index takes besides its names (`{"schema":1,"models":[]}`, with room to spare). */
const OUTBOX_INDEX_FRAME_BYTES = 64;

/** How a flush publishes: within how long, and whether it retries a failed publish. */
interface FlushBudget {
  ms: number;
  retries: boolean;
}

/**
 * A record that keeps an outbox (OutboxRecord): a model's (keys.model in the registry's bucket), or
 * an API key's (its id in KEYS_BUCKET, written by KeyStore). Every path that stores, publishes or
 * indexes pending events takes one, so both kinds go through the same code.
 */
export type OutboxHome = { kind: 'model'; name: string } | { kind: 'key'; id: string };

/** How the logs and errors name a home. */
const homeFields = (home: OutboxHome) => (home.kind === 'model' ? { model: home.name } : { keyId: home.id });
const homeText = (home: OutboxHome) => (home.kind === 'model' ? `model '${home.name}'` : `API key ${home.id}`);

/** The compare-and-set that removed published events from a record: the revision it wrote over, and its own. */
interface Cleared {
  base: number;
  revision: number;
}

/** A caller's text as an error message quotes it: escaped (lib/text.ts) and cut when long. */
const quoted = (text: string) => `'${shownName(escapeControls(text))}'`;

/**
 * INVALID_ARGUMENT for a description or label holding what a terminal or log would act on (lib/text.ts),
 * each as the caller sent it: the description is free text, label keys and values are names.
 */
function checkMetadataText(description: string | undefined, labels: Record<string, string> | undefined): void {
  if (description !== undefined) checkText('description', description, 'text');
  for (const [k, v] of Object.entries(labels ?? {})) {
    checkText(`label key ${quoted(k)}`, k, 'name');
    checkText(`label ${quoted(k)} value`, v, 'name');
  }
}

/**
 * INVALID_ARGUMENT for a graph input or output whose name a name may not hold (lib/text.ts): it is
 * stored, listed and printed, and no Open Inference Protocol client could name such a tensor anyway.
 */
function checkTensorNames(signature: { inputs: readonly { name: string }[]; outputs: readonly { name: string }[] }): void {
  for (const t of signature.inputs) checkText(`artifact's input tensor ${quoted(t.name)}: its name`, t.name, 'name');
  for (const t of signature.outputs) checkText(`artifact's output tensor ${quoted(t.name)}: its name`, t.name, 'name');
}

/** What a model record's parts take, in bytes, for a refusal that says what is large. */
function partsOf(m: ModelRecord): string {
  const size = (v: unknown) => (v === undefined ? 0 : Buffer.byteLength(JSON.stringify(v)));
  return `description and labels ${size(m.description) + size(m.labels)}, serving config ${size(m.config)}, `
    + `rollout history ${size(m.rolloutHistory)}, events waiting to be published ${size(m.outbox)} (${m.outbox?.length ?? 0})`;
}

export class Registry {
  private readonly watchers = new Set<EventFollower>();

  private readonly events = meterOf('registry').createCounter('infermesh.registry.events', {
    description: 'Events published on the mesh event stream, by type',
  });

  private readonly uploads: UploadStaging;
  /** Each record's outbox flush in progress here (one at a time per record), by kind and name. */
  private readonly flushing = new Map<string, Promise<Cleared | undefined>>();
  private jsm: ReturnType<JetStreamClient['jetstreamManager']> | undefined;
  /** Whether the outbox index was found full since a model was last added to it (one warning per time). */
  private outboxIndexFullWarned = false;

  constructor(private readonly deps: RegistryDeps) {
    this.uploads = deps.uploads ?? new UploadStaging();
  }

  /**
   * INVALID_ARGUMENT for a name no model can have, before any record is read or written: every
   * call that names a model goes through it. A key is sent to NATS in a control line of a few KB,
   * and a longer one drops the registry's connection (a hostile test held a call 36 s that way).
   */
  private static checkName(name: string): void {
    if (!MODEL_NAME.test(name)) {
      throw errors.invalidArgument(`model name '${shownName(name)}' is invalid: use ${MODEL_NAME_RULE}`);
    }
  }

  private async read<T>(key: string, kv: KV = this.deps.kv): Promise<{ value: T; revision: number } | undefined> {
    const e = await retry(() => kv.get(key));
    if (!e || e.operation !== 'PUT') return undefined;
    return { value: e.json<T>(), revision: e.revision };
  }

  /**
   * Compare-and-set loop: applies `mutate` to the current value until a write wins; with
   * `expectedRevision`, one attempt only, and only if the record is still at that revision.
   * `mutate` may read other records: a write that wins proves this key did not change meanwhile.
   * Returning the current value unchanged skips the write. `base`: the revision the write was made
   * over (undefined: nothing written).
   */
  private async update<T>(key: string, mutate: (current: T) => T | Promise<T>, expectedRevision?: number, kv: KV = this.deps.kv): Promise<{ value: T; revision: number; base?: number }> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const cur = await this.read<T>(key, kv);
      if (!cur) throw new MeshError(ErrorCode.Internal, `record ${key} vanished`);
      if (expectedRevision !== undefined && cur.revision !== expectedRevision) {
        throw new MeshError(ErrorCode.Conflict, `${key} is at revision ${cur.revision}, not ${expectedRevision}: read it again and retry`);
      }
      const next = await mutate(cur.value);
      if (next === cur.value) return cur;
      const bytes = this.storable(key, next);
      try {
        return { value: next, revision: await kv.update(key, bytes, cur.revision), base: cur.revision };
      } catch (err) {
        if (!isConflict(err)) throw err;
        if (expectedRevision !== undefined) throw new MeshError(ErrorCode.Conflict, `${key} changed since revision ${expectedRevision}: read it again and retry`);
      }
    }
    throw new MeshError(ErrorCode.Conflict, `too many concurrent writers of ${key}; try again`);
  }

  /**
   * `value` encoded, when it fits in one NATS message: else RESOURCE_EXHAUSTED naming max_payload
   * and, for a model's record, what takes the room, before anything is written (nats.js would
   * refuse the write with an error a client could only see as INTERNAL).
   */
  private storable(key: string, value: unknown): Uint8Array {
    const bytes = encode(value);
    const maxPayload = this.deps.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    if (bytes.length <= maxPayload - KV_HEADER_ROOM_BYTES) return bytes;
    const parts = key.startsWith('models.') ? `: ${partsOf(value as ModelRecord)} bytes` : '';
    throw new MeshError(ErrorCode.Overloaded, `record ${key} would take ${bytes.length} bytes, more than one NATS message holds (the server's max_payload, ${maxPayload} bytes; 1 MiB by default)${parts}`);
  }

  /** The most events a model's outbox may hold: PENDING_EVENT_MAX_BYTES each, within OUTBOX_SHARE of max_payload. */
  private get maxPendingEvents(): number {
    return Math.max(1, Math.floor(((this.deps.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES) * OUTBOX_SHARE) / PENDING_EVENT_MAX_BYTES));
  }

  /** The most models the outbox index names: as many of the longest name as one NATS message holds (7 996 at 1 MiB). */
  private get maxOutboxIndexNames(): number {
    const room = (this.deps.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES) - KV_HEADER_ROOM_BYTES - OUTBOX_INDEX_FRAME_BYTES;
    return Math.max(1, Math.floor(room / OUTBOX_INDEX_NAME_BYTES));
  }

  /**
   * Compare-and-set loop over a model's record that may add events to its outbox (announcing()):
   * the model is marked in the outbox index before its events are stored, and the call waits for
   * one attempt to publish them (announce). A write that would leave more than maxPendingEvents
   * waiting (NATS has not taken the earlier ones) is refused UNAVAILABLE, before anything is written.
   * `announces`: the write adds events (its caller knows), so the mark is made once, before the
   * loop, and not between a read of the record and its compare-and-set, where the index's own read
   * and compare-and-set (a key every model's writes share) would widen the window in which other
   * writers of the record make it fail; a write that stores events unmarked (a rollout's analysis,
   * which acts on few of its windows) is marked there. `revision`: the record's revision as the
   * write left it (see announce). `publishLater`: the events announce a write still to be made (a
   * version's: VersionWriteMarker); its caller announces them once it is.
   */
  private async writeModel(
    name: string,
    mutate: (m: ModelRecord) => ModelRecord | Promise<ModelRecord>,
    opts: { expectedRevision?: number; announces?: boolean; publishLater?: boolean } = {},
  ): Promise<{ value: ModelRecord; revision: number; written: boolean }> {
    const home: OutboxHome = { kind: 'model', name };
    let marked = false;
    if (opts.announces) {
      await this.markPending(home);
      marked = true;
    }
    const { value, revision, base } = await this.update<ModelRecord>(keys.model(name), async (cur) => {
      const next = await mutate(cur);
      const pending = next.outbox?.length ?? 0;
      if (next === cur || pending === 0) return next;
      if (pending > this.maxPendingEvents && pending > (cur.outbox?.length ?? 0)) {
        throw new MeshError(ErrorCode.Unavailable, `model '${name}' has ${cur.outbox?.length ?? 0} events waiting to be published (NATS is not taking them); try again once it does`);
      }
      if (!marked) await this.markPending(home);
      marked = true;
      return next;
    }, opts.expectedRevision);
    if (base === undefined || !value.outbox?.length || opts.publishLater) return { value, revision, written: base !== undefined };
    return { value, revision: await this.announce(home, revision), written: true };
  }

  /**
   * Compare-and-set loop over a model's record (rollouts use it); events `mutate` adds with
   * announcing() are published once the write won (flushOutbox). `announces`: every write adds
   * events (the model is marked pending once, before the loop).
   */
  async updateModel(name: string, mutate: (m: ModelRecord) => ModelRecord | Promise<ModelRecord>, announces = false): Promise<ModelRecord> {
    Registry.checkName(name);
    return (await this.writeModel(name, mutate, { announces })).value;
  }

  /** Publishes an event on the stream, retrying while JetStream is unavailable. */
  async publish(input: EventInput): Promise<void> {
    const event = newEvent(input);
    await retry(() => publishEvent(this.deps.js, event));
    this.events.add(1, { type: event.type });
  }

  /**
   * One attempt to publish `event`, within `ms`: a publish NATS does not answer (a slow link) fails
   * then, whether nats.js's own timeout ends it or not.
   */
  private async publishWithin(event: MeshEvent, ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new MeshError(ErrorCode.Unavailable, `publishing a ${event.type} event took longer than ${ms} ms`)), ms);
    });
    try {
      await Promise.race([publishEvent(this.deps.js, event, ms), late]);
    } finally {
      clearTimeout(timer);
    }
    this.events.add(1, { type: event.type });
  }

  /** How long a write's call waits for its events (INFERMESH_REGISTRY_OUTBOX_CALL_WAIT_MS): one attempt each, no retry. */
  private get callFlush(): FlushBudget {
    return { ms: this.deps.outboxCallWaitMs ?? settings.registryOutboxCallWaitMs.default, retries: false };
  }

  /** What a periodic flush spends on a record's events (INFERMESH_REGISTRY_OUTBOX_FLUSH_BUDGET_MS), retries included. */
  private get periodicFlush(): FlushBudget {
    return { ms: this.deps.outboxFlushBudgetMs ?? settings.registryOutboxFlushBudgetMs.default, retries: true };
  }

  /** How long one attempt to publish an event waits for JetStream's answer (INFERMESH_REGISTRY_OUTBOX_PUBLISH_TIMEOUT_MS). */
  private get publishTimeoutMs(): number {
    return this.deps.outboxPublishTimeoutMs ?? settings.registryOutboxPublishTimeoutMs.default;
  }

  /** Attempts of one publish within a periodic flush (INFERMESH_REGISTRY_OUTBOX_PUBLISH_ATTEMPTS). */
  private get publishAttempts(): number {
    return this.deps.outboxPublishAttempts ?? settings.registryOutboxPublishAttempts.default;
  }

  /**
   * How old a version's write's event must be before a flush gives the write up (fences it)
   * (INFERMESH_REGISTRY_OUTBOX_VERSION_WRITE_GRACE_MS): longer than its registry keeps trying it
   * (createVersionRecord's retries; lib/config.ts refuses less), with room for replicas' clocks
   * that disagree, so a write held up by a JetStream leader election is made, not refused. Not the
   * flush interval: the model's later events wait behind it, and at an interval of an hour its
   * writes would be refused once its outbox filled; any write's own flush gives it up once it is
   * this old.
   */
  private get versionWriteGraceMs(): number {
    return this.deps.outboxVersionWriteGraceMs ?? settings.registryOutboxVersionWriteGraceMs.default;
  }

  private get outboxIntervalMs(): number {
    return this.deps.outboxIntervalMs ?? settings.registryOutboxIntervalMs.default;
  }

  /**
   * Publishes a record's pending announcements after a write that stored some, waiting
   * INFERMESH_REGISTRY_OUTBOX_CALL_WAIT_MS at most: the write is made, and the call that made it
   * succeeds; what is not published by then stays in the outbox for the next flush
   * (flushOutboxes). Resolves the revision to answer with: the one after the events were removed
   * when that removal was made over this write itself, else the write's own (a removal over another
   * writer's change would hand the caller a revision whose content it was not shown, and its next
   * compare-and-set would undo that change).
   */
  private async announce(home: OutboxHome, revision: number): Promise<number> {
    const budget = this.callFlush;
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), budget.ms)));
    const flushed = this.flushHome(home, budget).catch((err: unknown): 'pending' => {
      this.deps.log.warn('could not publish the events of a write; they stay in its outbox for the next flush', { ...homeFields(home), err });
      return 'pending';
    });
    const outcome = await Promise.race([flushed, waited]).finally(() => clearTimeout(timer));
    if (outcome === 'pending') {
      // Marked before the write too; again, in case a flush found its record empty and took the
      // mark off just before the write was stored.
      await this.markPending(home).catch((err: unknown) => this.deps.log.warn('could not mark a record as having events pending; the next flush at start-up finds them', { ...homeFields(home), err }));
      return revision;
    }
    return outcome?.base === revision ? outcome.revision : revision;
  }

  /**
   * What KeyStore stores its events through: the outbox of each key's record in KEYS_BUCKET
   * (RegistryDeps.keys), marked, published and flushed as a model's is.
   */
  keyOutbox(): KeyOutbox {
    return {
      mark: (id) => this.markPending({ kind: 'key', id }),
      announce: async (id) => {
        await this.announce({ kind: 'key', id }, 0);
      },
    };
  }

  /** Where a home's record is stored: its bucket and key. */
  private whereIs(home: OutboxHome): { kv: KV; key: string } {
    if (home.kind === 'model') return { kv: this.deps.kv, key: keys.model(home.name) };
    if (!this.deps.keys) throw new MeshError(ErrorCode.Internal, 'the registry was built without the API keys bucket');
    return { kv: this.deps.keys, key: home.id };
  }

  /**
   * Publishes the events in the outbox of a model's record, in order, then removes them from it.
   * A write stores its events with it (announcing()), so a registry killed, or a NATS that timed
   * out, between the write and the publish leaves them there, and the next flush, by any replica,
   * publishes them. Each is published once: its id is its JetStream message id, which the stream
   * stores once within its duplicate window (two minutes, lib/events.ts), and before publishing,
   * the last event stored on each of their subjects tells which of them a flush that died before
   * removing them had published already (later ones of a model's announcements are published only
   * after the earlier ones). Before each attempt the record is read again: an event no longer in
   * it was published by another flush (or replaced by a newer one), and this flush stops there,
   * as it does once `budget` is spent, so a copy it sends late falls within the duplicate window
   * of any other. A version's write not made yet stops it too (resolveVersionWrite). Resolves the
   * compare-and-set that removed them (undefined: none removed here).
   */
  flushOutbox(name: string, budget: FlushBudget = this.periodicFlush): Promise<Cleared | undefined> {
    return this.flushHome({ kind: 'model', name }, budget);
  }

  /** flushOutbox of any record that keeps an outbox (a model's or an API key's). */
  private flushHome(home: OutboxHome, budget: FlushBudget = this.periodicFlush): Promise<Cleared | undefined> {
    const id = home.kind === 'model' ? `model ${home.name}` : `key ${home.id}`;
    const previous = this.flushing.get(id) ?? Promise.resolve(undefined);
    const flush = previous.catch(() => undefined).then(() => this.flushOnce(home, budget));
    this.flushing.set(id, flush);
    void flush.catch(() => undefined).finally(() => {
      if (this.flushing.get(id) === flush) this.flushing.delete(id);
    });
    return flush;
  }

  private async flushOnce(home: OutboxHome, budget: FlushBudget): Promise<Cleared | undefined> {
    const { kv, key } = this.whereIs(home);
    const pending = (await this.read<OutboxRecord>(key, kv))?.value.outbox ?? [];
    if (pending.length === 0) return undefined;
    const deadline = Date.now() + budget.ms;
    const stored = await this.alreadyPublished(pending);
    // Those published or dropped, from the first: a version's write not made yet stops the flush
    // before it (its writer publishes it, and what follows, once it is made).
    let done = stored;
    for (const event of pending.slice(stored)) {
      const outcome = await this.publishPending(home, event.id, deadline, budget);
      if (outcome === 'gone') return undefined;
      if (outcome === 'wait') break;
      done++;
    }
    if (done === 0) return undefined;
    const removed = new Set(pending.slice(0, done).map((e) => e.id));
    const { revision, base } = await this.update<OutboxRecord>(key, (m) => {
      if (!m.outbox?.some((e) => removed.has(e.id))) return m;
      const { outbox, ...rest } = m;
      const left = outbox.filter((e) => !removed.has(e.id));
      return left.length ? { ...rest, outbox: left } : rest;
    }, undefined, kv);
    return base === undefined ? undefined : { base, revision };
  }

  /**
   * Publishes the pending event `id` of a record, read from the record as it is now (a
   * model.config.changed is built from it, a version's write resolved against the version's
   * record); 'gone' when it has left the outbox (another flush published it, or a newer one
   * replaced it), 'dropped' for a version's write that is never to be made, 'wait' for one not
   * made yet. Retries while `budget` allows and time is left.
   */
  private async publishPending(home: OutboxHome, id: string, deadline: number, budget: FlushBudget): Promise<'published' | 'dropped' | 'gone' | 'wait'> {
    const { kv, key } = this.whereIs(home);
    for (let attempt = 1; ; attempt++) {
      const cur = await this.read<OutboxRecord>(key, kv);
      const outbox = cur?.value.outbox ?? [];
      const pending = outbox.find((e) => e.id === id);
      if (!cur || !pending) return 'gone';
      const left = deadline - Date.now();
      if (left <= 0) throw new MeshError(ErrorCode.Unavailable, `publishing the events of ${homeText(home)} took longer than ${budget.ms} ms; the next flush goes on`);
      let event: MeshEvent;
      if (home.kind === 'key') {
        event = pending as MeshEvent;
      } else if (isVersionWrite(pending)) {
        const resolved = await this.resolveVersionWrite(home.name, pending, { value: cur.value as ModelRecord, revision: cur.revision });
        if (resolved === 'drop') return 'dropped';
        if (resolved === 'wait') return 'wait';
        event = resolved;
      } else {
        event = pendingEventOf(pending, cur.value as ModelRecord);
      }
      try {
        await this.publishWithin(event, Math.min(left, this.publishTimeoutMs));
        return 'published';
      } catch (err) {
        if (!budget.retries || attempt >= this.publishAttempts) throw err;
        await sleep(Math.max(0, Math.min(retryDelayMs(attempt), deadline - Date.now())));
      }
    }
  }

  /**
   * What a flush does with a version's write found in model `name`'s outbox (VersionWriteMarker):
   * the event to publish once the version's record shows the write; 'drop' once it cannot (the
   * record was written over `over` by something else, or this flush fenced it); 'wait' while the
   * write is not made and the marker is younger than INFERMESH_REGISTRY_OUTBOX_VERSION_WRITE_GRACE_MS (its writer is most
   * likely on its way, and publishes it once the write is made). A marker older than that whose
   * write is not made was left by a registry that stopped before it: the record is fenced (
   * rewritten as it is, or marked deleted if it never existed), so that write's compare-and-set can
   * no longer succeed, and the marker is dropped. Of markers of one write (same type, version and
   * `over`: writers that raced for one compare-and-set, of which one won), the first publishes. An
   * archive or deletion made is published once confirmed (its writer saw the version out of the
   * split after its write: confirmNotServing), for a traffic write may have put it in meanwhile,
   * and its writer then undoes it; one older than that unconfirmed (its registry stopped
   * between the write and the confirmation) is confirmed here the same way, against `model`, the
   * model's record as read: dropped if the version is in its split.
   */
  private async resolveVersionWrite(name: string, marker: VersionWriteMarker, model: { value: ModelRecord; revision: number }): Promise<MeshEvent | 'drop' | 'wait'> {
    const outbox = model.value.outbox ?? [];
    const sameWrite = (e: PendingEvent): e is VersionWriteMarker => isVersionWrite(e) && e.type === marker.type && e.version === marker.version && e.over === marker.over;
    // Made and held: published whatever was written at the version since (a deletion after an archive).
    if (marker.confirmed) return this.versionEventOf(name, marker);
    if (outbox.some((e) => sameWrite(e) && e.confirmed)) return 'drop';
    const first = outbox.find(sameWrite);
    if (first && first.id !== marker.id) return 'drop';
    const key = keys.version(name, marker.version);
    for (let attempt = 0; attempt < 100; attempt++) {
      const entry = await retry(() => this.deps.kv.get(key));
      const exists = entry?.operation === 'PUT';
      const unwritten = marker.over === 0 ? !entry : exists && entry.revision === marker.over;
      if (!unwritten) {
        const shown = marker.type === 'version.deleted' ? !exists
          : marker.type === 'version.archived' ? exists && entry.json<VersionRecord>().state === 'ARCHIVED'
            : exists;
        if (!shown) return 'drop';
        if (marker.type !== 'version.published' && !marker.confirmed) {
          if (Date.now() - Date.parse(marker.time) <= this.versionWriteGraceMs) return 'wait';
          if (inTraffic(model.value, marker.version)) {
            this.deps.log.warn('dropping the event of a version\'s write its registry did not confirm: the version is in the traffic split', { model: name, version: marker.version, type: marker.type, id: marker.id });
            return 'drop';
          }
          try {
            await this.deps.kv.update(keys.model(name), this.storable(keys.model(name), confirmingVersionWrite(model.value, marker.id)), model.revision);
          } catch (err) {
            if (isConflict(err)) return 'wait'; // the record changed: the next flush looks again
            throw err;
          }
        }
        return this.versionEventOf(name, marker);
      }
      if (Date.now() - Date.parse(marker.time) <= this.versionWriteGraceMs) return 'wait';
      try {
        if (marker.over === 0) await kvDeleteIfNeverWritten(this.deps.kv, key);
        else await this.deps.kv.update(key, entry!.value, marker.over);
        this.deps.log.warn('dropping the event of a version\'s write its registry did not make (it stopped between storing the event and the write)', { model: name, version: marker.version, type: marker.type, id: marker.id });
        return 'drop';
      } catch (err) {
        if (!isConflict(err)) throw err; // written meanwhile: look again
      }
    }
    throw new MeshError(ErrorCode.Conflict, `too many concurrent writers of ${key}; try again`);
  }

  /** The event a version's write's marker announces; a version.deleted's artifactDeleted read now. */
  private async versionEventOf(name: string, marker: VersionWriteMarker): Promise<MeshEvent> {
    const { over: _over, confirmed: _confirmed, ...event } = marker;
    if (event.type !== 'version.deleted') return event;
    return { ...event, artifactDeleted: !(await this.referenced(event.sha256, keys.versions(name))) };
  }

  /**
   * How many of `pending`, from the first, the stream holds already (or were dropped: versions'
   * writes never made): those up to the latest of them that is the last event stored on its
   * subject. Only a model's outbox publishes its events (its versions' included; placement.changed
   * aside, which is never in one), in order, so a later one stored means every earlier one was. A
   * subject that cannot be read counts nothing (the duplicate window still holds). Key events share
   * their subjects across keys: another key's event stored since counts nothing, so past the
   * duplicate window a flush that died between publishing a key's event and removing it may store
   * it twice (an audit line; routers follow the keys bucket, not these events).
   */
  private async alreadyPublished(pending: PendingEvent[]): Promise<number> {
    this.jsm ??= this.deps.js.jetstreamManager();
    const jsm = await this.jsm;
    let count = 0;
    for (const subject of new Set(pending.map((e) => subjects.event(e.model, e.type)))) {
      const last = await jsm.streams.getMessage(resources.eventStream, { last_by_subj: subject }).catch(() => null);
      let id: string | undefined;
      try {
        id = last ? decodeEvent(last.data).id : undefined;
      } catch {
        id = undefined;
      }
      count = Math.max(count, pending.findIndex((e) => e.id === id) + 1);
    }
    return count;
  }

  /**
   * Adds a record to the outbox index (keys.outboxIndex) unless it is there: done before a write
   * stores events, so a registry killed before it published them leaves a mark the periodic flush
   * of every replica reads. An index that names maxOutboxIndexNames records already (models and
   * keys together: NATS took none of their events for a while) takes no more, so that every write
   * does not fail on it: the record's events are then published by its next write, or by the full
   * read of every record a registry makes at start-up.
   */
  private async markPending(home: OutboxHome): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const cur = await this.read<OutboxIndex>(keys.outboxIndex);
      const models = cur?.value.models ?? [];
      const ids = cur?.value.keys ?? [];
      if (home.kind === 'model' ? models.includes(home.name) : ids.includes(home.id)) return;
      if (models.length + ids.length >= this.maxOutboxIndexNames) {
        if (!this.outboxIndexFullWarned) this.deps.log.warn('the outbox index is full: records with events pending past it are flushed by their next write or at a registry\'s start-up, not every interval', { ...homeFields(home), names: models.length + ids.length });
        this.outboxIndexFullWarned = true;
        return;
      }
      this.outboxIndexFullWarned = false;
      const index: OutboxIndex = home.kind === 'model' ? { schema: 1, models: [...models, home.name], ...(cur?.value.keys ? { keys: ids } : {}) } : { schema: 1, models, keys: [...ids, home.id] };
      const next = this.storable(keys.outboxIndex, index);
      try {
        await retry(() => (cur ? this.deps.kv.update(keys.outboxIndex, next, cur.revision) : this.deps.kv.create(keys.outboxIndex, next)), { retryable: (e) => !isConflict(e) });
        return;
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    }
    throw new MeshError(ErrorCode.Conflict, `too many concurrent writers of ${keys.outboxIndex}; try again`);
  }

  /**
   * Flushes the outboxes of records with events pending; resolves how many had some. `every-record`
   * (at start-up) reads every model's record and every API key's, so nothing a registry killed
   * between marking and writing left is missed; `marked` (every INFERMESH_REGISTRY_OUTBOX_INTERVAL_MS)
   * reads the outbox index and the records it names only, and takes off the index the records it
   * found with none (a write marks its record again before it stores more).
   */
  async flushOutboxes(which: 'every-record' | 'marked' = 'every-record'): Promise<number> {
    const index = await this.read<OutboxIndex>(keys.outboxIndex);
    const homes: OutboxHome[] = [];
    if (which === 'marked') {
      for (const name of index?.value.models ?? []) homes.push({ kind: 'model', name });
      if (this.deps.keys) for (const id of index?.value.keys ?? []) homes.push({ kind: 'key', id });
    } else {
      for (const k of await kvKeys(this.deps.kv, keys.models)) {
        const name = keys.modelOf(k);
        if (name !== undefined) homes.push({ kind: 'model', name });
      }
      if (this.deps.keys) for (const id of await kvKeys(this.deps.keys)) homes.push({ kind: 'key', id });
    }
    const settled = new Set<string>();
    const settledKeys = new Set<string>();
    let flushed = 0;
    const intervalMs = this.outboxIntervalMs;
    for (const home of homes) {
      const valid = home.kind === 'model' ? MODEL_NAME.test(home.name) : isKeyId(home.id);
      const { kv, key } = this.whereIs(home);
      const outbox = valid ? (await this.read<OutboxRecord>(key, kv).catch(() => undefined))?.value.outbox : undefined;
      if (!outbox?.length) {
        if (home.kind === 'model') settled.add(home.name);
        else settledKeys.add(home.id);
        continue;
      }
      // Events younger than an interval are most likely a write's own, its publish under way now:
      // only older ones (or a time that does not parse) say a registry or NATS failed.
      const ageMs = Date.now() - Math.min(...outbox.map((e) => Date.parse(e.time)));
      if (ageMs <= intervalMs) this.deps.log.debug('publishing the events of a write whose own publish may be under way', { ...homeFields(home), pending: outbox.length });
      else this.deps.log.warn('publishing the events a write left in its outbox (its registry stopped, or NATS failed, before it published them)', { ...homeFields(home), pending: outbox.length, ageMs });
      flushed++;
      await this.flushHome(home).catch((err: unknown) => this.deps.log.warn('publishing pending events failed; the next flush retries', { ...homeFields(home), err }));
    }
    // Over the index as it was read before the records: a record marked since keeps its mark.
    if (index) {
      const models = index.value.models.filter((n) => !settled.has(n));
      const ids = index.value.keys?.filter((id) => !settledKeys.has(id));
      if (models.length < index.value.models.length || (ids && ids.length < (index.value.keys?.length ?? 0))) {
        const kept: OutboxIndex = { schema: 1, models, ...(ids ? { keys: ids } : {}) };
        await this.deps.kv.update(keys.outboxIndex, encode(kept), index.revision).catch((err: unknown) => {
          if (!isConflict(err)) throw err;
        });
      }
    }
    return flushed;
  }

  /** INVALID_ARGUMENT for a serving config that must not be stored (see checkWarmup). */
  private checkConfig(config: ServingConfig | undefined): void {
    if (config?.warmup) checkWarmup(config.warmup, this.deps);
  }

  /**
   * INVALID_ARGUMENT for a description and labels over INFERMESH_MAX_MODEL_METADATA_BYTES together,
   * before anything is written: the model's record (with its rollout history) and the events that
   * carry them must stay within NATS's max_payload, or a write succeeds and its event, or a later
   * rollout step, fails.
   */
  private checkMetadata(description: string | undefined, labels: Record<string, string> | undefined): void {
    const max = this.deps.maxModelMetadataBytes ?? settings.maxModelMetadataBytes.default;
    let bytes = Buffer.byteLength(description ?? '');
    for (const [k, v] of Object.entries(labels ?? {})) bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
    if (bytes > max) throw errors.invalidArgument(`the model's description and labels take ${bytes} bytes, above INFERMESH_MAX_MODEL_METADATA_BYTES (${max})`);
  }

  /** Creates a model, or returns the existing one unchanged; `by` names the principal (audit). */
  async createModel(m: NewModel, by: string): Promise<ModelView> {
    Registry.checkName(m.name);
    this.checkConfig(m.config);
    this.checkMetadata(m.description, m.labels);
    checkMetadataText(m.description, m.labels);
    const record: ModelRecord = {
      schema: 1,
      name: m.name,
      description: m.description ?? '',
      labels: m.labels ?? {},
      config: m.config ?? {},
      latestVersion: 0,
      traffic: [],
      createdAt: new Date().toISOString(),
    };
    const key = keys.model(m.name);
    const existing = await this.read<ModelRecord>(key);
    if (existing) return this.withPlacement({ ...existing.value, revision: existing.revision });
    const bytes = this.storable(key, announcing(record, { type: 'model.created', model: m.name, principal: by }));
    let revision: number;
    try {
      await this.markPending({ kind: 'model', name: m.name });
      revision = await retry(() => this.deps.kv.create(key, bytes), { retryable: (e) => !isConflict(e) });
    } catch (err) {
      if (isConflict(err)) return this.getModel(m.name);
      throw err;
    }
    return { ...record, revision: await this.announce({ kind: 'model', name: m.name }, revision) };
  }

  /** The model's record; NOT_FOUND when it does not exist. */
  async getModel(name: string): Promise<ModelView> {
    Registry.checkName(name);
    const cur = await this.read<ModelRecord>(keys.model(name));
    if (!cur) throw errors.modelNotFound(name);
    return this.withPlacement({ ...cur.value, revision: cur.revision });
  }

  /** `m` with its placement when placement is on (read after the model, so never older than it). */
  private async withPlacement(m: ModelView): Promise<ModelView> {
    if (!this.deps.placement) return m;
    const p = await this.read<PlacementRecord>(keys.placement(m.name));
    return { ...m, placement: p?.value.versions ?? [], placementRevision: p?.revision ?? 0 };
  }

  /**
   * Writes where a model's versions are held (the placement controller's leader), over the record
   * at `expectedRevision` (0: none yet; a deleted one's revision is a revision too): Conflict when
   * another writer came first. Resolves to the record's new revision. A model no pod holds keeps a
   * record with no versions (not a deletion), so its revision still moves forward and followers
   * pass the change on.
   */
  async writePlacement(record: PlacementRecord, expectedRevision: number): Promise<number> {
    const key = keys.placement(record.model);
    try {
      return await retry(() => (expectedRevision > 0 ? this.deps.kv.update(key, encode(record), expectedRevision) : this.deps.kv.create(key, encode(record))), { retryable: (e) => !isConflict(e) });
    } catch (err) {
      if (isConflict(err)) throw new MeshError(ErrorCode.Conflict, `${key} changed since revision ${expectedRevision}`);
      throw err;
    }
  }

  /**
   * FAILED_PRECONDITION for a version no pod could hold: its artifact alone is larger than every
   * pod's memory budget (a push, and a rollout of an older version, are refused before it is served).
   */
  checkPlaceable(model: string, sizeBytes: number): void {
    const why = this.deps.unplaceable?.(sizeBytes);
    if (why) throw new MeshError(ErrorCode.FailedPrecondition, `model '${model}': an artifact of ${sizeBytes} bytes ${why}`);
  }

  /** A version's record, or undefined (the placement controller reads sizes). */
  async findVersion(model: string, version: number): Promise<VersionRecord | undefined> {
    Registry.checkName(model);
    return (await this.read<VersionRecord>(keys.version(model, version)))?.value;
  }

  /** Every model's name, in one read of the bucket's keys (a name just deleted may be listed). */
  async modelNames(): Promise<string[]> {
    const names: string[] = [];
    for (const k of await kvKeys(this.deps.kv, keys.models)) {
      const name = keys.modelOf(k);
      if (name !== undefined) names.push(name);
    }
    return names;
  }

  /** Every model, sorted by name. */
  async listModels(): Promise<ModelView[]> {
    const names = await this.modelNames();
    const models = await Promise.all(names.sort().map(async (n) => {
      const m = await this.read<ModelRecord>(keys.model(n));
      return m && this.withPlacement({ ...m.value, revision: m.revision });
    }));
    return models.flatMap((m) => (m ? [m] : []));
  }

  /**
   * Replaces a model's description, labels or serving config and publishes model.config.changed
   * (nothing is written or published when nothing changes). With `expectedRevision`, a
   * compare-and-set: ABORTED (Conflict) when the model was written since that revision.
   */
  async editModel(name: string, changes: ModelChanges, expectedRevision: number | undefined, by: string): Promise<ModelView> {
    Registry.checkName(name);
    this.checkConfig(changes.config);
    const before = await this.getModel(name);
    // Bounded as they will be stored: a change of one keeps the other as it is.
    this.checkMetadata(changes.description ?? before.description, changes.labels ?? before.labels);
    checkMetadataText(changes.description, changes.labels);
    // Whether the write announces, as the record read just now says (marked pending before the loop).
    const announces = (changes.description !== undefined && changes.description !== before.description)
      || (changes.labels !== undefined && !isDeepStrictEqual(changes.labels, before.labels))
      || (changes.config !== undefined && !isDeepStrictEqual(changes.config, before.config));
    let changed = false;
    const { value: m, revision } = await this.writeModel(name, (cur) => {
      const next: ModelRecord = {
        ...cur,
        description: changes.description ?? cur.description,
        labels: changes.labels ?? cur.labels,
        config: changes.config ?? cur.config,
      };
      changed = next.description !== cur.description || !isDeepStrictEqual(next.labels, cur.labels) || !isDeepStrictEqual(next.config, cur.config);
      return changed ? announcing(next, { type: 'model.config.changed', model: name, description: next.description, labels: next.labels, config: next.config, principal: by }) : cur;
    }, { expectedRevision, announces });
    const { outbox: _announced, ...record } = m;
    if (changed) this.deps.log.info('model updated', { model: name, revision });
    return { ...record, revision };
  }

  /**
   * Stores a new version from its bytes: validates it as ONNX, stores the artifact once per sha256,
   * assigns the next version number, makes it the version served, and publishes the events.
   * Nothing is stored when the bytes are rejected.
   */
  async pushVersion(model: string, chunks: AsyncIterable<Uint8Array>, opts: PushOptions, by: string): Promise<VersionRecord> {
    Registry.checkName(model);
    const want = expectedSha256Of(opts.expectedSha256);
    const max = this.deps.maxArtifactBytes;
    // Without it a push whose end was cut short could be stored as whole: grpc-js drops a message
    // the stream's end cuts off and ends the stream as if nothing were missing, and a cut ONNX file
    // may still parse. The size is the check every client can make cheaply (a sha256 must be computed
    // over the bytes before they are sent), and it refuses one above the maximum before any byte.
    if (!opts.sizeBytes) {
      throw errors.invalidArgument('size_bytes is required: the push header must give the artifact\'s size in bytes, so that an artifact cut short on the way is refused, not stored as whole (0 or unset: none given; an artifact is never empty)');
    }
    if (opts.sizeBytes > BigInt(max)) {
      throw errors.invalidArgument(`artifact is ${opts.sizeBytes} bytes, above the registry's maximum of ${max} bytes`);
    }
    // At most the maximum, so exact as a number.
    const announced = Number(opts.sizeBytes);
    this.checkPlaceable(model, announced);
    const upload = await this.uploads.receive(chunks, { maxBytes: max, announcedBytes: announced });
    try {
      if (upload.sizeBytes === 0) throw errors.invalidArgument('artifact is empty');
      this.checkPlaceable(model, upload.sizeBytes);
      if (announced !== upload.sizeBytes) {
        throw errors.invalidArgument(`artifact is ${upload.sizeBytes} bytes, but the client announced ${announced}`);
      }
      if (want !== undefined && want !== upload.sha256) {
        throw errors.invalidArgument(`artifact sha256 is ${upload.sha256}, but the client expected ${want}`);
      }
      const signature = await readOnnxSignature(upload.file, { maxGraphNodes: this.deps.maxGraphNodes }).catch((err: unknown) => {
        if (err instanceof OnnxFormatError) throw errors.invalidArgument(`artifact is not a servable ONNX model: ${err.message}`);
        throw err;
      });
      checkTensorNames(signature);
      await this.storeArtifact(upload.sha256, upload.file);
      await this.createModel({ name: model }, by);
      // The number is assigned, and version.published stored ahead of the version's record, by one
      // compare-and-set of the model's record; the record is then created only if nothing was
      // written at its key since (a flush fences a write its registry did not make in time).
      let version = 0;
      const assigned = await this.writeModel(model, (m) => {
        version = m.latestVersion + 1;
        const input: VersionWriteInput = { type: 'version.published', model, version, sha256: upload.sha256, sizeBytes: upload.sizeBytes, principal: by };
        return announcingVersionWrite({ ...m, latestVersion: version }, input, 0).record;
      }, { announces: true, publishLater: true });
      const record: VersionRecord = {
        schema: 1,
        model,
        version,
        sha256: upload.sha256,
        sizeBytes: upload.sizeBytes,
        createdAt: new Date().toISOString(),
        inputs: signature.inputs,
        outputs: signature.outputs,
        state: 'AVAILABLE',
      };
      await this.createVersionRecord(record);
      await this.keepArtifact(upload.sha256, upload.file);
      await this.announce({ kind: 'model', name: model }, assigned.revision);
      await this.serveLatest(model, version, by);
      this.deps.log.info('version published', { model, version, sha256: record.sha256, sizeBytes: record.sizeBytes, principal: by });
      return record;
    } finally {
      await upload.remove();
    }
  }

  /**
   * Creates a new version's record, unless anything was ever written at its key (expected revision
   * 0, not nats.js's create, which writes over a delete marker): a marker a flush left there fences
   * a push that took longer than the flush interval to get here (resolveVersionWrite), which is
   * then refused UNAVAILABLE. A retry whose first attempt was stored finds its own record.
   */
  private async createVersionRecord(record: VersionRecord): Promise<void> {
    const key = keys.version(record.model, record.version);
    const bytes = encode(record);
    try {
      // retry()'s defaults over nats.js's request timeout, named: the give-up a flush waits out
      // (INFERMESH_REGISTRY_OUTBOX_VERSION_WRITE_GRACE_MS) is checked against them at start.
      await retry(() => this.deps.kv.put(key, bytes, { previousSeq: 0, timeout: JETSTREAM_REQUEST_TIMEOUT_MS }), { retryable: (e) => !isConflict(e) });
    } catch (err) {
      if (!isConflict(err)) throw err;
      const stored = await this.read<VersionRecord>(key);
      if (stored && isDeepStrictEqual(stored.value, record)) return;
      throw new MeshError(ErrorCode.Unavailable, `model '${record.model}' version ${record.version} took too long to store and was given up; push it again`);
    }
  }

  /**
   * Routes all traffic to `version` when the model serves nothing yet (its first version; later
   * versions come in through a rollout), unless it was archived or deleted meanwhile. Whatever puts a version into a traffic split checks it
   * with servable() inside the compare-and-set of the model record, as here: archive and delete
   * write that record too, so one of the two sees the other.
   */
  private async serveLatest(model: string, version: number, by: string): Promise<void> {
    await this.updateModel(model, async (cur) => {
      if (cur.traffic.length > 0 || !(await this.servable(model, version))) return cur;
      const traffic = [{ version, weight: 100 }];
      return announcing({ ...cur, traffic }, { type: 'traffic.changed', model, traffic, principal: by });
    });
  }

  /** Whether a version exists and is AVAILABLE, so it may be put into a traffic split. */
  async servable(model: string, version: number): Promise<boolean> {
    Registry.checkName(model);
    const v = await this.read<VersionRecord>(keys.version(model, version));
    return v?.value.state === 'AVAILABLE';
  }

  /** Puts the artifact in the object store under its sha256, unless the same bytes are there. */
  private async storeArtifact(sha256: string, file: string): Promise<void> {
    const existing = await retry(() => this.deps.artifacts.info(sha256));
    if (existing && !existing.deleted) return;
    await retry(() => this.deps.artifacts.put({ name: sha256 }, Readable.toWeb(fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) as ReadableStream<Uint8Array>));
  }

  /**
   * Called once a new version's record is written. A deletion of the same bytes that marked them
   * before may have missed the record: wait until no deletion holds them, then put the bytes back
   * if one removed them. A deletion that marks them later sees the record and keeps them.
   */
  private async keepArtifact(sha256: string, file: string): Promise<void> {
    const deadline = Date.now() + ARTIFACT_DELETION_STALE_MS;
    while (Date.now() < deadline && (await this.read<ArtifactDeletion>(keys.artifactDeletion(sha256)))) await sleep(50);
    await this.storeArtifact(sha256, file);
  }

  /** Every version of a model, oldest first. */
  async listVersions(model: string): Promise<VersionRecord[]> {
    await this.getModel(model);
    const versions = (await kvKeys(this.deps.kv, keys.versions(model))).map((k) => Number(k.split('.').pop()));
    const records = await Promise.all(versions.sort((a, b) => a - b).map((v) => this.read<VersionRecord>(keys.version(model, v))));
    return records.flatMap((r) => (r ? [r.value] : []));
  }

  /** One version (0: the highest-numbered one that exists); NOT_FOUND when missing. */
  async getVersion(model: string, version: number): Promise<VersionRecord> {
    const m = await this.getModel(model);
    const v = version === 0 ? m.latestVersion : version;
    const cur = v > 0 ? await this.read<VersionRecord>(keys.version(model, v)) : undefined;
    if (cur) return cur.value;
    if (version === 0 && v > 0) {
      // The latest version was deleted: the newest one left.
      const newest = (await this.listVersions(model)).pop();
      if (newest) return newest;
    }
    throw errors.versionNotFound(model, version === 0 ? 'latest' : version);
  }

  /** A version's record and its artifact's bytes, read from the store as they are consumed. */
  async openArtifact(model: string, version: number): Promise<{ record: VersionRecord; chunks: AsyncGenerator<Uint8Array> }> {
    const record = await this.getVersion(model, version);
    const info = await retry(() => this.deps.artifacts.info(record.sha256));
    if (!info || info.deleted) throw new MeshError(ErrorCode.Internal, `artifact ${record.sha256} of ${model} v${record.version} is missing from the store`);
    return { record, chunks: readArtifact(this.deps.js, info, record.sha256) };
  }

  /**
   * Marks a version ARCHIVED, so it is never served again, and publishes version.archived;
   * archiving an archived version changes nothing. FAILED_PRECONDITION while it is in the model's
   * traffic split.
   */
  async archiveVersion(model: string, version: number, by: string): Promise<VersionRecord> {
    Registry.checkName(model);
    const key = keys.version(model, version);
    for (let attempt = 0; attempt < 100; attempt++) {
      await this.notServing(model, version);
      const cur = await this.read<VersionRecord>(key);
      if (!cur) throw errors.versionNotFound(model, version);
      if (cur.value.state === 'ARCHIVED') return cur.value;
      const archived: VersionRecord = { ...cur.value, state: 'ARCHIVED' };
      const marked = await this.markVersionWrite({ type: 'version.archived', model, version, principal: by }, cur.revision);
      try {
        await this.deps.kv.update(key, encode(archived), cur.revision);
      } catch (err) {
        await this.withdraw(model, marked.id, !isConflict(err));
        if (isConflict(err)) continue;
        throw err;
      }
      try {
        await this.confirmNotServing(model, version, marked);
      } catch (err) {
        try {
          await this.update<VersionRecord>(key, (v) => ({ ...v, state: 'AVAILABLE' }));
        } finally {
          await this.withdraw(model, marked.id, true);
        }
        throw err;
      }
      await this.announce({ kind: 'model', name: model }, marked.seen.revision);
      this.deps.log.info('version archived', { model, version, principal: by });
      return archived;
    }
    throw new MeshError(ErrorCode.Conflict, `too many concurrent writers of ${key}; try again`);
  }

  /**
   * Deletes a version's record, and its artifact when no other version of any model has the same
   * sha256, and publishes version.deleted; `artifactDeleted` says whether this model has the bytes
   * no more (whether another model has them is not said). FAILED_PRECONDITION while it is in the model's traffic
   * split. The model's latestVersion stays, so the number is never assigned again.
   */
  async deleteVersion(model: string, version: number, by: string): Promise<DeletedVersion> {
    Registry.checkName(model);
    const key = keys.version(model, version);
    for (let attempt = 0; attempt < 100; attempt++) {
      await this.notServing(model, version);
      const cur = await this.read<VersionRecord>(key);
      if (!cur) throw errors.versionNotFound(model, version);
      const { sha256 } = cur.value;
      // The artifact's deletion marker is held from before the record goes until its bytes are
      // dealt with, so a sweep never sees the record missing while it may still be put back.
      // The event is stored once it is held, so its wait is not between the event and the write.
      const outcome = await this.withDeletionMarker(sha256, async () => {
        const marked = await this.markVersionWrite({ type: 'version.deleted', model, version, sha256, principal: by }, cur.revision);
        try {
          await this.deps.kv.delete(key, { previousSeq: cur.revision });
        } catch (err) {
          await this.withdraw(model, marked.id, !isConflict(err));
          if (isConflict(err)) return undefined;
          throw err;
        }
        try {
          await this.confirmNotServing(model, version, marked);
        } catch (err) {
          try {
            await retry(() => this.deps.kv.put(key, encode(cur.value)));
          } finally {
            await this.withdraw(model, marked.id, true);
          }
          throw err;
        }
        return { bytesDeleted: await this.deleteIfUnreferenced(sha256), revision: marked.seen.revision };
      });
      if (!outcome) continue;
      // Equal bytes are stored once for every model. Whether another model has them is not the
      // caller's to learn (a team could tell whether anyone serves a file it guesses): what it is
      // told is whether this model still has them (what the event says too, read as it is published).
      const artifactDeleted = outcome.bytesDeleted || !(await this.referenced(sha256, keys.versions(model)));
      await this.announce({ kind: 'model', name: model }, outcome.revision);
      this.deps.log.info('version deleted', { model, version, sha256, artifactDeleted, bytesDeleted: outcome.bytesDeleted, principal: by });
      return { record: cur.value, artifactDeleted };
    }
    throw new MeshError(ErrorCode.Conflict, `too many concurrent writers of ${key}; try again`);
  }

  /** The model's record, after checking `version` is not in its traffic split (FAILED_PRECONDITION). */
  private async notServing(model: string, version: number): Promise<{ value: ModelRecord; revision: number }> {
    Registry.checkName(model);
    const m = await this.read<ModelRecord>(keys.model(model));
    if (!m) throw errors.modelNotFound(model);
    Registry.checkNotServing(m.value, version);
    return m;
  }

  /** FAILED_PRECONDITION when `version` is in the model's traffic split. */
  private static checkNotServing(m: ModelRecord, version: number): void {
    if (!inTraffic(m, version)) return;
    const split = m.traffic.map((t) => `v${t.version} ${t.weight}%`).join(', ');
    throw new MeshError(ErrorCode.FailedPrecondition, `model '${m.name}' version ${version} is serving traffic (${split}); move its traffic to another version first`);
  }

  /**
   * Stores the event of an archive or deletion of a version in the model's outbox, ahead of the
   * write of the version's record over `over` (VersionWriteMarker), after checking the version is
   * not in the traffic split: the record as written is where confirmNotServing starts from.
   */
  private async markVersionWrite(input: VersionWriteInput, over: number): Promise<{ id: string; seen: { value: ModelRecord; revision: number } }> {
    let id = '';
    const { value, revision } = await this.writeModel(input.model, (m) => {
      Registry.checkNotServing(m, input.version);
      // A push of this version whose event is not published yet made its write (this one is made
      // over it): confirmed, so its event is not lost once the record no longer shows it.
      const pushed = m.outbox?.find((e) => e.type === 'version.published' && e.version === input.version);
      const { record, marker } = announcingVersionWrite(pushed ? confirmingVersionWrite(m, pushed.id) : m, input, over);
      id = marker.id;
      return record;
    }, { announces: true, publishLater: true });
    return { id, seen: { value, revision } };
  }

  /**
   * Takes back the event of a version's write that was not made, or was undone, so no flush
   * publishes it; one a flush sees first resolves to the same (the record does not show the write).
   * `giveUp`: its writer makes no further attempt (its call fails).
   */
  private async withdraw(model: string, id: string, giveUp = false): Promise<void> {
    const left = await this.update<ModelRecord>(keys.model(model), (m) => {
      if (!m.outbox?.some((e) => e.id === id)) return m;
      const { outbox, ...rest } = m;
      const others = outbox.filter((e) => e.id !== id);
      return others.length ? { ...rest, outbox: others } : rest;
    }).catch((err: unknown) => this.deps.log.warn('could not take back the event of a version write not made; a flush drops it', { model, err }));
    // Events stored behind it (another writer's) waited on it: when its writer gives up (it will
    // not publish after another attempt), publish them now, not at the next flush.
    if (giveUp && left?.value.outbox?.length) await this.announce({ kind: 'model', name: model }, left.revision);
  }

  /**
   * Rewrites the model record, with the event of the version's write (`marked.id`) confirmed and
   * otherwise unchanged, at the revision at which `version` was seen out of its traffic split. If the split changed meanwhile, the write fails and the split is checked again:
   * whatever put a version into traffic did so with a compare-and-set of this record after checking
   * servable(), so either it saw the version's new state or this sees its traffic.
   */
  private async confirmNotServing(model: string, version: number, marked: { id: string; seen: { value: ModelRecord; revision: number } }): Promise<void> {
    let cur = marked.seen;
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        // The same write confirms the write's event: a flush publishes it only then (resolveVersionWrite).
        await this.deps.kv.update(keys.model(model), this.storable(keys.model(model), confirmingVersionWrite(cur.value, marked.id)), cur.revision);
        return;
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
      cur = await this.notServing(model, version);
    }
    throw new MeshError(ErrorCode.Conflict, `too many concurrent writers of model '${model}'; try again`);
  }

  /**
   * Deletes an artifact unless a version record still refers to its sha256; resolves whether it
   * did. A marker key serialises this with pushes of the same bytes (see keepArtifact).
   */
  private releaseArtifact(sha256: string): Promise<boolean> {
    return this.withDeletionMarker(sha256, () => this.deleteIfUnreferenced(sha256));
  }

  /** Deletes an artifact unless a version record refers to it; call with its deletion marker held. */
  private async deleteIfUnreferenced(sha256: string): Promise<boolean> {
    if (await this.referenced(sha256)) return false;
    await retry(() => this.deps.artifacts.delete(sha256));
    return true;
  }

  /** Runs `fn` holding the artifact's deletion marker (see markDeletion), released after. */
  private async withDeletionMarker<T>(sha256: string, fn: () => Promise<T>): Promise<T> {
    const markKey = keys.artifactDeletion(sha256);
    const markRevision = await this.markDeletion(markKey);
    try {
      return await fn();
    } finally {
      await retry(() => this.deps.kv.delete(markKey, { previousSeq: markRevision })).catch((err: unknown) => {
        this.deps.log.warn('could not remove an artifact deletion marker; it expires', { sha256, err });
      });
    }
  }

  /** Creates the deletion marker of an artifact, waiting while another deletion holds it (unless it is stale). */
  private async markDeletion(markKey: string): Promise<number> {
    const mark = (): ArtifactDeletion => ({ schema: 1, since: new Date().toISOString() });
    for (;;) {
      try {
        return await this.deps.kv.create(markKey, encode(mark()));
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
      const held = await this.read<ArtifactDeletion>(markKey);
      if (held && Date.now() - Date.parse(held.value.since) > ARTIFACT_DELETION_STALE_MS) {
        try {
          return await this.deps.kv.update(markKey, encode(mark()), held.revision);
        } catch (err) {
          if (!isConflict(err)) throw err;
        }
      }
      await sleep(50);
    }
  }

  /**
   * Deletes the artifacts no version record refers to that were stored more than `minAgeMs` ago:
   * what a registry that crashed between removing a version's record and its bytes leaves behind.
   * The age keeps it off the bytes of a push still on its way to its record; the deletion marker
   * serialises it with pushes of the same bytes. Resolves how many it deleted.
   */
  async sweepArtifacts(minAgeMs: number): Promise<number> {
    const referenced = new Set<string>();
    for (const k of await kvKeys(this.deps.kv, keys.allVersions)) {
      const r = await this.read<VersionRecord>(k);
      if (r) referenced.add(r.value.sha256);
    }
    let deleted = 0;
    for (const o of await this.deps.artifacts.list()) {
      if (o.deleted || referenced.has(o.name) || Date.now() - Date.parse(o.mtime) < minAgeMs) continue;
      if (await this.releaseArtifact(o.name)) {
        deleted++;
        this.deps.log.warn('deleted an artifact no version refers to (left by an interrupted delete)', { sha256: o.name, bytes: o.size });
      }
    }
    return deleted;
  }

  /** Whether any version record of any model has this sha256. */
  private async referenced(sha256: string, among = keys.allVersions): Promise<boolean> {
    const all = await kvKeys(this.deps.kv, among);
    for (let i = 0; i < all.length; i += 64) {
      const records = await Promise.all(all.slice(i, i + 64).map((k) => this.read<VersionRecord>(k)));
      if (records.some((r) => r?.value.sha256 === sha256)) return true;
    }
    return false;
  }

  /**
   * Delivers every registry event from `from` in order to `onEvent` (awaited: a slow receiver holds
   * back delivery) until `signal` aborts or close() (then it resolves) or `onEvent` throws (then it
   * rejects). `onReady` is called once the consumer exists: later events will all be delivered.
   */
  async watchEvents(from: WatchFrom, onEvent: (event: MeshEvent, seq: number) => Promise<void>, signal: AbortSignal, onReady?: () => void): Promise<void> {
    if (from.model) Registry.checkName(from.model);
    const follower = await followEvents(this.deps.js, onEvent, {
      aheadBytes: this.deps.eventFollowAheadBytes,
      afterSeq: from.afterSeq,
      model: from.model,
      onBadEvent: (err, seq) => this.deps.log.warn('skipping malformed event', { seq, err }),
    });
    this.watchers.add(follower);
    const stop = () => void follower.stop();
    signal.addEventListener('abort', stop);
    try {
      if (signal.aborted) stop();
      onReady?.();
      await follower.closed;
    } finally {
      signal.removeEventListener('abort', stop);
      this.watchers.delete(follower);
    }
  }

  /** Ends every event watch (at shutdown, so open WatchEvents calls do not hold it up). */
  async close(): Promise<void> {
    await Promise.all([...this.watchers].map((w) => w.stop()));
  }
}
