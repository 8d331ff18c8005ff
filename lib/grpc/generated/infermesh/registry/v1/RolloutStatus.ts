// Original file: proto/infermesh/registry/v1/rollouts.proto

import type { TrafficTarget as _infermesh_registry_v1_TrafficTarget, TrafficTarget__Output as _infermesh_registry_v1_TrafficTarget__Output } from '../../../infermesh/registry/v1/TrafficTarget';
import type { Rollout as _infermesh_registry_v1_Rollout, Rollout__Output as _infermesh_registry_v1_Rollout__Output } from '../../../infermesh/registry/v1/Rollout';
import type { RolloutHistoryEntry as _infermesh_registry_v1_RolloutHistoryEntry, RolloutHistoryEntry__Output as _infermesh_registry_v1_RolloutHistoryEntry__Output } from '../../../infermesh/registry/v1/RolloutHistoryEntry';

export interface RolloutStatus {
  'model'?: (string);
  'traffic'?: (_infermesh_registry_v1_TrafficTarget)[];
  'rollout'?: (_infermesh_registry_v1_Rollout | null);
  'history'?: (_infermesh_registry_v1_RolloutHistoryEntry)[];
}

export interface RolloutStatus__Output {
  'model': (string);
  'traffic': (_infermesh_registry_v1_TrafficTarget__Output)[];
  'rollout': (_infermesh_registry_v1_Rollout__Output | null);
  'history': (_infermesh_registry_v1_RolloutHistoryEntry__Output)[];
}
