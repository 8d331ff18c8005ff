// Original file: proto/infermesh/registry/v1/registry.proto

import type { WarmupInput as _infermesh_registry_v1_WarmupInput, WarmupInput__Output as _infermesh_registry_v1_WarmupInput__Output } from '../../../infermesh/registry/v1/WarmupInput';

export interface WarmupSample {
  'name'?: (string);
  'inputs'?: (_infermesh_registry_v1_WarmupInput)[];
  'count'?: (number);
}

export interface WarmupSample__Output {
  'name': (string);
  'inputs': (_infermesh_registry_v1_WarmupInput__Output)[];
  'count': (number);
}
