// Original file: proto/infermesh/registry/v1/registry.proto

import type { ServingConfig as _infermesh_registry_v1_ServingConfig, ServingConfig__Output as _infermesh_registry_v1_ServingConfig__Output } from '../../../infermesh/registry/v1/ServingConfig';
import type { Long } from '@grpc/proto-loader';

export interface UpdateModelRequest {
  'name'?: (string);
  'description'?: (string);
  'labels'?: ({[key: string]: string});
  'config'?: (_infermesh_registry_v1_ServingConfig | null);
  'update_mask'?: (string)[];
  'expected_revision'?: (number | string | Long);
}

export interface UpdateModelRequest__Output {
  'name': (string);
  'description': (string);
  'labels': ({[key: string]: string});
  'config': (_infermesh_registry_v1_ServingConfig__Output | null);
  'update_mask': (string)[];
  'expected_revision': (string);
}
