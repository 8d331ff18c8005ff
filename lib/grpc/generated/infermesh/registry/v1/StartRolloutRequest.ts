// Original file: proto/infermesh/registry/v1/rollouts.proto

import type { RolloutAnalysis as _infermesh_registry_v1_RolloutAnalysis, RolloutAnalysis__Output as _infermesh_registry_v1_RolloutAnalysis__Output } from '../../../infermesh/registry/v1/RolloutAnalysis';

export interface StartRolloutRequest {
  'model'?: (string);
  'version'?: (number);
  'weight'?: (number);
  'steps'?: (number)[];
  'automatic'?: (boolean);
  'analysis'?: (_infermesh_registry_v1_RolloutAnalysis | null);
}

export interface StartRolloutRequest__Output {
  'model': (string);
  'version': (number);
  'weight': (number);
  'steps': (number)[];
  'automatic': (boolean);
  'analysis': (_infermesh_registry_v1_RolloutAnalysis__Output | null);
}
