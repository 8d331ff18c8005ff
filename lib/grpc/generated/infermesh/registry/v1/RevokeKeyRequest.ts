// Original file: proto/infermesh/registry/v1/registry.proto


export interface RevokeKeyRequest {
  'id'?: (string);
}

export interface RevokeKeyRequest__Output {
  'id': (string);
}
