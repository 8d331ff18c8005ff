// Original file: proto/infermesh/registry/v1/rollouts.proto


export interface SetRolloutWeightRequest {
  'model'?: (string);
  'weight'?: (number);
}

export interface SetRolloutWeightRequest__Output {
  'model': (string);
  'weight': (number);
}
