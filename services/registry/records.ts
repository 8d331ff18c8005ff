// The registry's KV records: keys and JSON shapes. Written only by the registry; versioned by `schema`.
import { randomUUID } from 'node:crypto';
import type { TensorSignature } from '../../lib/onnx';
import { newEvent, type EventInput, type MeshEvent, type ModelConfigChangedEvent, type ServingConfig, type TrafficWeight, type VersionArchivedEvent, type VersionDeletedEvent, type VersionPublishedEvent } from '../../lib/events';
import { nameOfToken, nameToken } from '../../lib/nats';
import type { Rollout, RolloutHistoryEntry } from './rollout/rollout-state';

// The serving config's shape is shared with the model.config.changed event, so it lives in lib/events.
export type { BatchingConfig, ServingConfig } from '../../lib/events';

/** KV value at models.<name>. */
export interface ModelRecord {
  schema: 1;
  name: string;
  description: string;
  labels: Record<string, string>;
  config: ServingConfig;
  /** Highest version number assigned; versions are never reused. */
  latestVersion: number;
  /** Versions served and their weights (sum 100); empty before the first push. */
  traffic: TrafficWeight[];
  createdAt: string;
  /** The latest rollout, running or finished (absent before the first). */
  rollout?: Rollout;
  /** Rollout decisions, newest last, the latest 50. */
  rolloutHistory?: RolloutHistoryEntry[];
  /**
   * The outbox: events announcing writes of this record, stored by the same compare-and-set as the
   * write, and of its versions' records, stored ahead of their write (VersionWriteMarker); removed
   * once published, in order (Registry.flushOutbox). Absent when none is pending.
   */
  outbox?: PendingEvent[];
}

/**
 * model.config.changed as the outbox keeps it: its id, time and principal, no content. Its content
 * is the record's description, labels and config as they are when it is published (pendingEventOf),
 * so a record does not carry them twice (up to the metadata and warm-up bounds each: past NATS's
 * 1 MiB max_payload together), and only the newest of them waits (announcing()).
 */
export type ConfigChangedMarker = Omit<ModelConfigChangedEvent, 'description' | 'labels' | 'config'>;

/**
 * version.published, version.archived or version.deleted as the model's outbox keeps it: stored
 * ahead of the write of the version's record it announces (another key: no compare-and-set holds
 * both), with the revision that write is made over (`over`; 0: the record's creation). A flush
 * publishes it once the version's record shows the write, and drops it once it cannot happen: a
 * marker older than 40 s (longer than its registry tries the write) whose write is still not made is fenced (its record
 * rewritten as it is, or marked deleted when it never existed), so the write's compare-and-set
 * fails (Registry.resolveVersionWrite). A version.deleted's artifactDeleted is read when it is
 * published: whether the model has the bytes no more.
 */
export type VersionWriteMarker = (VersionPublishedEvent | VersionArchivedEvent | Omit<VersionDeletedEvent, 'artifactDeleted'>) & {
  over: number;
  /**
   * The write is made and holds: published whatever its record shows since (a deletion after an
   * archive or a push). An archive's or deletion's write is undone when a traffic write put the
   * version into the split meanwhile (Registry.confirmNotServing): its marker is published only once
   * the compare-and-set of the model's record that saw it out of the split set this
   * (confirmingVersionWrite). A push's is set by the archive or deletion made over its record.
   */
  confirmed?: true;
};
/** The version events input of a VersionWriteMarker. */
export type VersionWriteInput = Omit<VersionPublishedEvent, 'schema' | 'id' | 'time'> | Omit<VersionArchivedEvent, 'schema' | 'id' | 'time'> | Omit<VersionDeletedEvent, 'schema' | 'id' | 'time' | 'artifactDeleted'>;

/**
 * An event waiting in a record's outbox: whole when its content is history and small (a rollout
 * step or decision, a traffic split, a creation, an API key's creation or revocation), a marker
 * when it is the record's current state, or a version's write not yet shown (VersionWriteMarker).
 */
export type PendingEvent = Exclude<MeshEvent, ModelConfigChangedEvent | VersionPublishedEvent | VersionArchivedEvent | VersionDeletedEvent> | ConfigChangedMarker | VersionWriteMarker;

/** The event types that announce a version's write: stored ahead of it, as a VersionWriteMarker. */
const VERSION_WRITE_TYPES: ReadonlySet<string> = new Set<VersionWriteMarker['type']>(['version.published', 'version.archived', 'version.deleted']);

/** Whether `e` announces a version's write: an event announcing() refuses, or a pending VersionWriteMarker. */
function announcesVersionWrite<E extends { type: string }>(e: E): e is Extract<E, { type: VersionWriteMarker['type'] }> {
  return VERSION_WRITE_TYPES.has(e.type);
}

/** Whether `e` waits for a version's write (VersionWriteMarker) rather than being published as it is. */
export function isVersionWrite(e: PendingEvent): e is VersionWriteMarker {
  return announcesVersionWrite(e);
}

/** A record that keeps an outbox: a model's, or an API key's (services/registry/keys.ts). */
export interface OutboxRecord {
  outbox?: PendingEvent[];
}

/**
 * `m` with events announcing it added to its outbox: return it from a compare-and-set of the
 * model's record, and the write and its announcement are stored together (Registry.updateModel
 * publishes them once the write won; whichever replica flushes next, if this one cannot). Pending
 * model.config.changed all say the same, the record as it is, so a new one replaces those waiting
 * but the oldest: that one's publish may be under way, and whichever flush publishes it next
 * publishes the same id, which the stream stores once, rather than a late copy landing after the
 * newer event. At most two wait, however many writes NATS has not taken.
 */
export function announcing<R extends OutboxRecord>(m: R, ...events: EventInput[]): R {
  let outbox = m.outbox ?? [];
  for (const event of events.map(newEvent)) {
    if (event.type === 'model.config.changed') {
      const { description: _description, labels: _labels, config: _config, ...marker } = event;
      const oldest = outbox.findIndex((e) => e.type === 'model.config.changed');
      outbox = [...outbox.filter((e, i) => e.type !== 'model.config.changed' || i === oldest), marker];
    } else if (announcesVersionWrite(event)) {
      throw new Error(`${event.type} is stored ahead of its write (announcingVersionWrite)`);
    } else {
      outbox = [...outbox, event];
    }
  }
  return { ...m, outbox };
}

/**
 * `m` with a marker of a version's write over revision `over` of the version's record added to its
 * outbox (VersionWriteMarker), and the marker: store it by a compare-and-set of the model's record
 * before that write.
 */
export function announcingVersionWrite(m: ModelRecord, input: VersionWriteInput, over: number): { record: ModelRecord; marker: VersionWriteMarker } {
  const marker = { schema: 1, id: randomUUID(), time: new Date().toISOString(), ...input, over } as VersionWriteMarker;
  return { record: { ...m, outbox: [...(m.outbox ?? []), marker] }, marker };
}

/**
 * `m` with the marker `id` of an archive or deletion (VersionWriteMarker) confirmed: store it by the
 * compare-and-set that saw the version out of the split after the version's write. `m` itself when
 * the marker is not there (taken back, or already published).
 */
export function confirmingVersionWrite(m: ModelRecord, id: string): ModelRecord {
  if (!m.outbox?.some((e) => e.id === id)) return m;
  return { ...m, outbox: m.outbox.map((e) => (e.id === id && isVersionWrite(e) ? { ...e, confirmed: true as const } : e)) };
}

/**
 * The event to publish for `pending`, read from `m`, the record that holds it. A version's write
 * is resolved against the version's record, by the registry (VersionWriteMarker).
 */
export function pendingEventOf(pending: PendingEvent, m: ModelRecord): MeshEvent {
  if (isVersionWrite(pending)) throw new Error(`${pending.type} waits for its version's write (Registry.resolveVersionWrite)`);
  if (pending.type !== 'model.config.changed') return pending;
  return { ...pending, description: m.description, labels: m.labels, config: m.config };
}

/**
 * KV value at outboxes.pending: the models whose records may hold pending events (a write marks
 * its model before it stores them), and the API keys (by id) whose records may, so the periodic
 * flush reads those records only.
 */
export interface OutboxIndex {
  schema: 1;
  models: string[];
  /** Absent before any key was marked (and in indexes written before keys had outboxes). */
  keys?: string[];
}

/** Version states. */
export type VersionState = 'AVAILABLE' | 'ARCHIVED';

/** KV value at versions.<name>.<version>. Immutable once written, except for its state. */
export interface VersionRecord {
  schema: 1;
  model: string;
  version: number;
  sha256: string;
  sizeBytes: number;
  createdAt: string;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
  state: VersionState;
}

/**
 * KV keys. A model name is one key token (`nameToken`: letters, digits, '_' and '-' unchanged, so
 * the keys of lower-case names are what they always were; anything else escaped, injectively).
 */
export const keys = {
  model: (name: string) => `models.${nameToken(name)}`,
  models: 'models.*',
  /** The model name of a key listed under `models`; undefined for a key no name encodes to. */
  modelOf: (key: string) => (key.startsWith('models.') ? nameOfToken(key.slice('models.'.length)) : undefined),
  version: (model: string, version: number) => `versions.${nameToken(model)}.${version}`,
  versions: (model: string) => `versions.${nameToken(model)}.*`,
  allVersions: 'versions.>',
  artifactDeletion: (sha256: string) => `deletions.${sha256}`,
  /** Where a model's versions are held (PlacementRecord); written by the placement controller's leader only. */
  placement: (model: string) => `placement.${nameToken(model)}`,
  placements: 'placement.*',
  /** The model name of a key listed under `placement`. */
  placementModelOf: (key: string) => (key.startsWith('placement.') ? nameOfToken(key.slice('placement.'.length)) : undefined),
  /** The models and API keys whose records may hold pending events (OutboxIndex). */
  outboxIndex: 'outboxes.pending',
  /** The placement controller's lease (PlacementLease): which replica leads. */
  placementLease: 'leases.placement',
};

/** KV value at placement.<name>: which pods hold each of the model's served versions (docs/placement.md). */
export interface PlacementRecord {
  schema: 1;
  model: string;
  /** Served versions with at least one copy, by version. */
  versions: { version: number; pods: string[]; memoryBytes: number }[];
}

/** KV value at leases.placement: the replica leading placement, until when (epoch ms, its own clock). */
export interface PlacementLease {
  schema: 1;
  holder: string;
  until: number;
}

/**
 * KV value at deletions.<sha256> while a registry deletes that artifact: pushes of the same bytes
 * wait for it to go, so the deletion cannot remove bytes a new version refers to.
 */
export interface ArtifactDeletion {
  schema: 1;
  /** RFC 3339; a marker older than a minute is treated as left by a crash. */
  since: string;
}

/**
 * Model names as Triton uses them (`densenet_onnx`, `ResNet50`, `resnet50_v1.5`): 1..128 letters,
 * digits, '_', '-' or '.', starting with a letter or digit. Case matters (`ResNet50` and
 * `resnet50` are two models). Every older name (a DNS label) is still valid.
 */
export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** What MODEL_NAME allows, in words, for error messages. */
export const MODEL_NAME_RULE = "1-128 letters, digits, '_', '-' or '.', starting with a letter or digit";
