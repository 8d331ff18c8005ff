// Original file: proto/infermesh/registry/v1/registry.proto

import type { ApiKey as _infermesh_registry_v1_ApiKey, ApiKey__Output as _infermesh_registry_v1_ApiKey__Output } from '../../../infermesh/registry/v1/ApiKey';

export interface ListKeysResponse {
  'keys'?: (_infermesh_registry_v1_ApiKey)[];
}

export interface ListKeysResponse__Output {
  'keys': (_infermesh_registry_v1_ApiKey__Output)[];
}
