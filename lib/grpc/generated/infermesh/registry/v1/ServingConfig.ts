// Original file: proto/infermesh/registry/v1/registry.proto

import type { DynamicBatching as _infermesh_registry_v1_DynamicBatching, DynamicBatching__Output as _infermesh_registry_v1_DynamicBatching__Output } from '../../../infermesh/registry/v1/DynamicBatching';
import type { WarmupSample as _infermesh_registry_v1_WarmupSample, WarmupSample__Output as _infermesh_registry_v1_WarmupSample__Output } from '../../../infermesh/registry/v1/WarmupSample';

export interface ServingConfig {
  'dynamic_batching'?: (_infermesh_registry_v1_DynamicBatching | null);
  'warmup'?: (_infermesh_registry_v1_WarmupSample)[];
}

export interface ServingConfig__Output {
  'dynamic_batching': (_infermesh_registry_v1_DynamicBatching__Output | null);
  'warmup': (_infermesh_registry_v1_WarmupSample__Output)[];
}
