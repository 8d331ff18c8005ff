// Original file: proto/infermesh/registry/v1/rollouts.proto


export interface RolloutAnalysis {
  'min_requests'?: (number);
  'max_error_rate_increase_points'?: (number | string);
  'max_p99_latency_ratio'?: (number | string);
  'windows_to_fail'?: (number);
  'windows_to_advance'?: (number);
  'ready_timeout_ms'?: (number);
}

export interface RolloutAnalysis__Output {
  'min_requests': (number);
  'max_error_rate_increase_points': (number);
  'max_p99_latency_ratio': (number);
  'windows_to_fail': (number);
  'windows_to_advance': (number);
  'ready_timeout_ms': (number);
}
