// The registry's KV records: keys and JSON shapes. Written only by the registry; versioned by `schema`.
import type { TensorSignature } from '../../lib/onnx';
import type { ServingConfig, TrafficWeight } from '../../lib/events';
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

/** KV keys. */
export const keys = {
  model: (name: string) => `models.${name}`,
  models: 'models.*',
  version: (model: string, version: number) => `versions.${model}.${version}`,
  versions: (model: string) => `versions.${model}.*`,
  allVersions: 'versions.>',
  artifactDeletion: (sha256: string) => `deletions.${sha256}`,
};

/**
 * KV value at deletions.<sha256> while a registry deletes that artifact: pushes of the same bytes
 * wait for it to go, so the deletion cannot remove bytes a new version refers to.
 */
export interface ArtifactDeletion {
  schema: 1;
  /** RFC 3339; a marker older than a minute is treated as left by a crash. */
  since: string;
}

/** Model names are DNS labels: lower-case letters, digits and '-', 1..63, alphanumeric at both ends. */
export const MODEL_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
