// Original file: proto/infermesh/registry/v1/registry.proto


export interface ListModelsRequest {
}

export interface ListModelsRequest__Output {
}
