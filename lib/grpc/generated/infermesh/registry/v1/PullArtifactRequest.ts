// Original file: proto/infermesh/registry/v1/registry.proto


export interface PullArtifactRequest {
  'model'?: (string);
  'version'?: (number);
}

export interface PullArtifactRequest__Output {
  'model': (string);
  'version': (number);
}
