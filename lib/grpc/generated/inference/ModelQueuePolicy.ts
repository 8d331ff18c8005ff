// Original file: proto/inference/model_config.proto


export interface ModelQueuePolicy {
  'max_queue_size'?: (number);
}

export interface ModelQueuePolicy__Output {
  'max_queue_size': (number);
}
