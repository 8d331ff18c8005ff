// Original file: proto/infermesh/registry/v1/rollouts.proto


export interface RolloutRequest {
  'model'?: (string);
  'reason'?: (string);
}

export interface RolloutRequest__Output {
  'model': (string);
  'reason': (string);
}
