// Original file: proto/infermesh/registry/v1/registry.proto

import type { Long } from '@grpc/proto-loader';

export interface WarmupInput {
  'name'?: (string);
  'dims'?: (number | string | Long)[];
  'raw_data'?: (Buffer | Uint8Array | string);
}

export interface WarmupInput__Output {
  'name': (string);
  'dims': (string)[];
  'raw_data': (Buffer);
}
