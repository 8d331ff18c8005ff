// Original file: proto/infermesh/registry/v1/registry.proto


export interface DeleteVersionRequest {
  'model'?: (string);
  'version'?: (number);
}

export interface DeleteVersionRequest__Output {
  'model': (string);
  'version': (number);
}
