// Original file: proto/infermesh/registry/v1/registry.proto

import type { Version as _infermesh_registry_v1_Version, Version__Output as _infermesh_registry_v1_Version__Output } from '../../../infermesh/registry/v1/Version';

export interface ListVersionsResponse {
  'versions'?: (_infermesh_registry_v1_Version)[];
}

export interface ListVersionsResponse__Output {
  'versions': (_infermesh_registry_v1_Version__Output)[];
}
