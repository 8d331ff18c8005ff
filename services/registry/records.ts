// The registry's KV records: keys and JSON shapes. Written only by the registry; versioned by `schema`.
import type { TensorSignature } from '../../lib/onnx';
import { newEvent, type EventInput, type MeshEvent, type ModelConfigChangedEvent, type ServingConfig, type TrafficWeight } from '../../lib/events';
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
   * write and removed once published, in order (Registry.flushOutbox). Absent when none is pending.
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
 * An event waiting in a record's outbox: whole when its content is history and small (a rollout
 * step or decision, a traffic split, a creation), a marker when it is the record's current state.
 */
export type PendingEvent = Exclude<MeshEvent, ModelConfigChangedEvent> | ConfigChangedMarker;

/**
 * `m` with events announcing it added to its outbox: return it from a compare-and-set of the
 * model's record, and the write and its announcement are stored together (Registry.updateModel
 * publishes them once the write won; whichever replica flushes next, if this one cannot). Pending
 * model.config.changed all say the same, the record as it is, so a new one replaces those waiting
 * but the oldest: that one's publish may be under way, and whichever flush publishes it next
 * publishes the same id, which the stream stores once, rather than a late copy landing after the
 * newer event. At most two wait, however many writes NATS has not taken.
 */
export function announcing(m: ModelRecord, ...events: EventInput[]): ModelRecord {
  let outbox = m.outbox ?? [];
  for (const event of events.map(newEvent)) {
    if (event.type === 'model.config.changed') {
      const { description: _description, labels: _labels, config: _config, ...marker } = event;
      const oldest = outbox.findIndex((e) => e.type === 'model.config.changed');
      outbox = [...outbox.filter((e, i) => e.type !== 'model.config.changed' || i === oldest), marker];
    } else {
      outbox = [...outbox, event];
    }
  }
  return { ...m, outbox };
}

/** The event to publish for `pending`, read from `m`, the record that holds it. */
export function pendingEventOf(pending: PendingEvent, m: ModelRecord): MeshEvent {
  if (pending.type !== 'model.config.changed') return pending;
  return { ...pending, description: m.description, labels: m.labels, config: m.config };
}

/**
 * KV value at outboxes.pending: the models whose records may hold pending events (a write marks
 * its model before it stores them), so the periodic flush reads those records only.
 */
export interface OutboxIndex {
  schema: 1;
  models: string[];
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
  /** The models whose records may hold pending events (OutboxIndex). */
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
