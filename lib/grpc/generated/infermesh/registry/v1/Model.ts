// Original file: proto/infermesh/registry/v1/registry.proto

import type { ServingConfig as _infermesh_registry_v1_ServingConfig, ServingConfig__Output as _infermesh_registry_v1_ServingConfig__Output } from '../../../infermesh/registry/v1/ServingConfig';
import type { TrafficTarget as _infermesh_registry_v1_TrafficTarget, TrafficTarget__Output as _infermesh_registry_v1_TrafficTarget__Output } from '../../../infermesh/registry/v1/TrafficTarget';
import type { PlacedVersion as _infermesh_registry_v1_PlacedVersion, PlacedVersion__Output as _infermesh_registry_v1_PlacedVersion__Output } from '../../../infermesh/registry/v1/PlacedVersion';
import type { Long } from '@grpc/proto-loader';

export interface Model {
  'name'?: (string);
  'description'?: (string);
  'labels'?: ({[key: string]: string});
  'config'?: (_infermesh_registry_v1_ServingConfig | null);
  'latest_version'?: (number);
  'traffic'?: (_infermesh_registry_v1_TrafficTarget)[];
  'created_at'?: (string);
  'revision'?: (number | string | Long);
  'placement'?: (_infermesh_registry_v1_PlacedVersion)[];
  'placed'?: (boolean);
  'placement_revision'?: (number | string | Long);
}

export interface Model__Output {
  'name': (string);
  'description': (string);
  'labels': ({[key: string]: string});
  'config': (_infermesh_registry_v1_ServingConfig__Output | null);
  'latest_version': (number);
  'traffic': (_infermesh_registry_v1_TrafficTarget__Output)[];
  'created_at': (string);
  'revision': (string);
  'placement': (_infermesh_registry_v1_PlacedVersion__Output)[];
  'placed': (boolean);
  'placement_revision': (string);
}
