// Original file: proto/infermesh/registry/v1/registry.proto

import type { Long } from '@grpc/proto-loader';

export interface DynamicBatching {
  'enabled'?: (boolean);
  'max_batch_size'?: (number);
  'max_queue_delay_us'?: (number | string | Long);
  'preferred_batch_sizes'?: (number)[];
  'max_queue_size'?: (number);
}

export interface DynamicBatching__Output {
  'enabled': (boolean);
  'max_batch_size': (number);
  'max_queue_delay_us': (string);
  'preferred_batch_sizes': (number)[];
  'max_queue_size': (number);
}
