// Original file: proto/infermesh/registry/v1/registry.proto

import type { Long } from '@grpc/proto-loader';

export interface PodVersion {
  'model'?: (string);
  'version'?: (number);
  'state'?: (string);
  'provider'?: (string);
  'reason'?: (string);
  'memory_bytes'?: (number | string | Long);
}

export interface PodVersion__Output {
  'model': (string);
  'version': (number);
  'state': (string);
  'provider': (string);
  'reason': (string);
  'memory_bytes': (string);
}
