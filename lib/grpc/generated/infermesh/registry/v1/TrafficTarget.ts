// Original file: proto/infermesh/registry/v1/registry.proto


export interface TrafficTarget {
  'version'?: (number);
  'weight'?: (number);
}

export interface TrafficTarget__Output {
  'version': (number);
  'weight': (number);
}
