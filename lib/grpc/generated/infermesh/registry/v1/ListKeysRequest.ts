// Original file: proto/infermesh/registry/v1/registry.proto


export interface ListKeysRequest {
}

export interface ListKeysRequest__Output {
}
