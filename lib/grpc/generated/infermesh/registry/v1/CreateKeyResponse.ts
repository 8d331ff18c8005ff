// Original file: proto/infermesh/registry/v1/registry.proto

import type { ApiKey as _infermesh_registry_v1_ApiKey, ApiKey__Output as _infermesh_registry_v1_ApiKey__Output } from '../../../infermesh/registry/v1/ApiKey';

export interface CreateKeyResponse {
  'token'?: (string);
  'key'?: (_infermesh_registry_v1_ApiKey | null);
}

export interface CreateKeyResponse__Output {
  'token': (string);
  'key': (_infermesh_registry_v1_ApiKey__Output | null);
}
