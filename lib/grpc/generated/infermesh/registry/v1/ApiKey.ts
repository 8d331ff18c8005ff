// Original file: proto/infermesh/registry/v1/registry.proto


export interface ApiKey {
  'id'?: (string);
  'name'?: (string);
  'grants'?: (string)[];
  'created_at'?: (string);
  'created_by'?: (string);
  'revoked_at'?: (string);
}

export interface ApiKey__Output {
  'id': (string);
  'name': (string);
  'grants': (string)[];
  'created_at': (string);
  'created_by': (string);
  'revoked_at': (string);
}
