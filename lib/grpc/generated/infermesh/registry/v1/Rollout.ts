// Original file: proto/infermesh/registry/v1/rollouts.proto

import type { RolloutAnalysis as _infermesh_registry_v1_RolloutAnalysis, RolloutAnalysis__Output as _infermesh_registry_v1_RolloutAnalysis__Output } from '../../../infermesh/registry/v1/RolloutAnalysis';

export interface Rollout {
  'stable'?: (number);
  'canary'?: (number);
  'weight'?: (number);
  'steps'?: (number)[];
  'phase'?: (string);
  'automatic'?: (boolean);
  'analysis'?: (_infermesh_registry_v1_RolloutAnalysis | null);
  'passes'?: (number);
  'fails'?: (number);
  'reason'?: (string);
}

export interface Rollout__Output {
  'stable': (number);
  'canary': (number);
  'weight': (number);
  'steps': (number)[];
  'phase': (string);
  'automatic': (boolean);
  'analysis': (_infermesh_registry_v1_RolloutAnalysis__Output | null);
  'passes': (number);
  'fails': (number);
  'reason': (string);
}
