// Original file: proto/infermesh/registry/v1/registry.proto

import type { Long } from '@grpc/proto-loader';

export interface WatchEventsRequest {
  'start_sequence'?: (number | string | Long);
  'only_new'?: (boolean);
  'model'?: (string);
}

export interface WatchEventsRequest__Output {
  'start_sequence': (string);
  'only_new': (boolean);
  'model': (string);
}
