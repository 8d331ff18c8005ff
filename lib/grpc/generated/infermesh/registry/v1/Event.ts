// Original file: proto/infermesh/registry/v1/registry.proto

import type { Long } from '@grpc/proto-loader';

export interface Event {
  'sequence'?: (number | string | Long);
  'id'?: (string);
  'time'?: (string);
  'model'?: (string);
  'type'?: (string);
  'json'?: (string);
}

export interface Event__Output {
  'sequence': (string);
  'id': (string);
  'time': (string);
  'model': (string);
  'type': (string);
  'json': (string);
}
