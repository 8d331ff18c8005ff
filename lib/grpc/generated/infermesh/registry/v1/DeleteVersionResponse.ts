// Original file: proto/infermesh/registry/v1/registry.proto

import type { Version as _infermesh_registry_v1_Version, Version__Output as _infermesh_registry_v1_Version__Output } from '../../../infermesh/registry/v1/Version';

export interface DeleteVersionResponse {
  'version'?: (_infermesh_registry_v1_Version | null);
  'artifact_deleted'?: (boolean);
}

export interface DeleteVersionResponse__Output {
  'version': (_infermesh_registry_v1_Version__Output | null);
  'artifact_deleted': (boolean);
}
