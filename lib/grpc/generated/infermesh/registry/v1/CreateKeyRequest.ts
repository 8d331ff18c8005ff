// Original file: proto/infermesh/registry/v1/registry.proto


export interface CreateKeyRequest {
  'name'?: (string);
  'grants'?: (string)[];
}

export interface CreateKeyRequest__Output {
  'name': (string);
  'grants': (string)[];
}
