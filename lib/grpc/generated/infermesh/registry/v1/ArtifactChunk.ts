// Original file: proto/infermesh/registry/v1/registry.proto


export interface ArtifactChunk {
  'data'?: (Buffer | Uint8Array | string);
}

export interface ArtifactChunk__Output {
  'data': (Buffer);
}
