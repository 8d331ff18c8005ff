// The registry's KV records: keys and JSON shapes. Written only by the registry; versioned by `schema`.
import type { TensorSignature } from '../../lib/onnx';
import type { TrafficWeight } from '../../lib/events';

/** Dynamic batching settings a model asks pods for; unset fields take the pods' defaults. */
export interface BatchingConfig {
  enabled?: boolean;
  maxBatchSize?: number;
  maxQueueDelayUs?: number;
  preferredBatchSizes?: number[];
  maxQueueSize?: number;
}

/** A model's serving configuration. */
export interface ServingConfig {
  dynamicBatching?: BatchingConfig;
}

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
};

/** Model names are DNS labels: lower-case letters, digits and '-', 1..63, alphanumeric at both ends. */
export const MODEL_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
