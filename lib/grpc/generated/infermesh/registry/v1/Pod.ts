// Original file: proto/infermesh/registry/v1/registry.proto

import type { PodVersion as _infermesh_registry_v1_PodVersion, PodVersion__Output as _infermesh_registry_v1_PodVersion__Output } from '../../../infermesh/registry/v1/PodVersion';
import type { Long } from '@grpc/proto-loader';

export interface Pod {
  'name'?: (string);
  'address'?: (string);
  'state'?: (string);
  'versions'?: (_infermesh_registry_v1_PodVersion)[];
  'inflight'?: (number);
  'seen_at'?: (string);
  'identity'?: (string);
  'memory_budget_bytes'?: (number | string | Long);
  'memory_used_bytes'?: (number | string | Long);
  'rss_bytes'?: (number | string | Long);
}

export interface Pod__Output {
  'name': (string);
  'address': (string);
  'state': (string);
  'versions': (_infermesh_registry_v1_PodVersion__Output)[];
  'inflight': (number);
  'seen_at': (string);
  'identity': (string);
  'memory_budget_bytes': (string);
  'memory_used_bytes': (string);
  'rss_bytes': (string);
}
