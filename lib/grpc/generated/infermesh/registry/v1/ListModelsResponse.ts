// Original file: proto/infermesh/registry/v1/registry.proto

import type { Model as _infermesh_registry_v1_Model, Model__Output as _infermesh_registry_v1_Model__Output } from '../../../infermesh/registry/v1/Model';

export interface ListModelsResponse {
  'models'?: (_infermesh_registry_v1_Model)[];
}

export interface ListModelsResponse__Output {
  'models': (_infermesh_registry_v1_Model__Output)[];
}
