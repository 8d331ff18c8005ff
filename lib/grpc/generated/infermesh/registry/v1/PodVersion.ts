// Original file: proto/infermesh/registry/v1/registry.proto


export interface PodVersion {
  'model'?: (string);
  'version'?: (number);
  'state'?: (string);
  'provider'?: (string);
  'reason'?: (string);
}

export interface PodVersion__Output {
  'model': (string);
  'version': (number);
  'state': (string);
  'provider': (string);
  'reason': (string);
}
