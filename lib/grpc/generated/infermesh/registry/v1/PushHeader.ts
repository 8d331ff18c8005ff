// Original file: proto/infermesh/registry/v1/registry.proto


export interface PushHeader {
  'model'?: (string);
  'expected_sha256'?: (string);
}

export interface PushHeader__Output {
  'model': (string);
  'expected_sha256': (string);
}
