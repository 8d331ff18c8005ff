// Original file: proto/infermesh/registry/v1/registry.proto


export interface ArchiveVersionRequest {
  'model'?: (string);
  'version'?: (number);
}

export interface ArchiveVersionRequest__Output {
  'model': (string);
  'version': (number);
}
