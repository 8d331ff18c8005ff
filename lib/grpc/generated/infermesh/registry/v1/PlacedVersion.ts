// Original file: proto/infermesh/registry/v1/registry.proto

import type { Long } from '@grpc/proto-loader';

export interface PlacedVersion {
  'version'?: (number);
  'pods'?: (string)[];
  'memory_bytes'?: (number | string | Long);
}

export interface PlacedVersion__Output {
  'version': (number);
  'pods': (string)[];
  'memory_bytes': (string);
}
