// Original file: proto/infermesh/registry/v1/rollouts.proto


export interface RolloutHistoryEntry {
  'time'?: (string);
  'action'?: (string);
  'stable'?: (number);
  'canary'?: (number);
  'weight'?: (number);
  'reason'?: (string);
}

export interface RolloutHistoryEntry__Output {
  'time': (string);
  'action': (string);
  'stable': (number);
  'canary': (number);
  'weight': (number);
  'reason': (string);
}
