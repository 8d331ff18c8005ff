// Original file: proto/infermesh/registry/v1/registry.proto

import type { Long } from '@grpc/proto-loader';

export interface PushHeader {
  'model'?: (string);
  'expected_sha256'?: (string);
  'size_bytes'?: (number | string | Long);
}

export interface PushHeader__Output {
  'model': (string);
  'expected_sha256': (string);
  'size_bytes': (string);
}
