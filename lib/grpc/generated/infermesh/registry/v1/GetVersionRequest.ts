// Original file: proto/infermesh/registry/v1/registry.proto


export interface GetVersionRequest {
  'model'?: (string);
  'version'?: (number);
}

export interface GetVersionRequest__Output {
  'model': (string);
  'version': (number);
}
