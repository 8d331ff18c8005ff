// Original file: proto/infermesh/registry/v1/registry.proto

import type { Pod as _infermesh_registry_v1_Pod, Pod__Output as _infermesh_registry_v1_Pod__Output } from '../../../infermesh/registry/v1/Pod';

export interface ListPodsResponse {
  'pods'?: (_infermesh_registry_v1_Pod)[];
}

export interface ListPodsResponse__Output {
  'pods': (_infermesh_registry_v1_Pod__Output)[];
}
