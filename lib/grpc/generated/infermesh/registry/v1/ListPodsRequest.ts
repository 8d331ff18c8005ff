// Original file: proto/infermesh/registry/v1/registry.proto


export interface ListPodsRequest {
}

export interface ListPodsRequest__Output {
}
