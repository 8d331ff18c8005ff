// Original file: proto/infermesh/registry/v1/registry.proto

import type { ServingConfig as _infermesh_registry_v1_ServingConfig, ServingConfig__Output as _infermesh_registry_v1_ServingConfig__Output } from '../../../infermesh/registry/v1/ServingConfig';

export interface CreateModelRequest {
  'name'?: (string);
  'description'?: (string);
  'labels'?: ({[key: string]: string});
  'config'?: (_infermesh_registry_v1_ServingConfig | null);
}

export interface CreateModelRequest__Output {
  'name': (string);
  'description': (string);
  'labels': ({[key: string]: string});
  'config': (_infermesh_registry_v1_ServingConfig__Output | null);
}
