// Short names for the generated message types (lib/grpc/generated is generated; never edit it).
// `X` is what we send (fields optional), `XOut` what we receive (defaults filled in).
export type { GRPCInferenceServiceClient as InferenceClient, GRPCInferenceServiceHandlers as InferenceHandlers } from './generated/inference/GRPCInferenceService';
export type { RegistryClient, RegistryHandlers } from './generated/infermesh/registry/v1/Registry';
export type { HealthClient, HealthHandlers } from './generated/grpc/health/v1/Health';
export type { RolloutsClient, RolloutsHandlers } from './generated/infermesh/registry/v1/Rollouts';
export type { RolloutStatus, RolloutStatus__Output as RolloutStatusOut } from './generated/infermesh/registry/v1/RolloutStatus';
export type { RolloutAnalysis__Output as RolloutAnalysisOut } from './generated/infermesh/registry/v1/RolloutAnalysis';
export type { StartRolloutRequest__Output as StartRolloutRequestOut } from './generated/infermesh/registry/v1/StartRolloutRequest';

export type {
  ModelInferRequest,
  ModelInferRequest__Output as ModelInferRequestOut,
  _inference_ModelInferRequest_InferInputTensor as InferInputTensor,
  _inference_ModelInferRequest_InferInputTensor__Output as InferInputTensorOut,
  _inference_ModelInferRequest_InferRequestedOutputTensor__Output as RequestedOutputOut,
} from './generated/inference/ModelInferRequest';
export type {
  ModelInferResponse,
  ModelInferResponse__Output as ModelInferResponseOut,
  _inference_ModelInferResponse_InferOutputTensor as InferOutputTensor,
  _inference_ModelInferResponse_InferOutputTensor__Output as InferOutputTensorOut,
} from './generated/inference/ModelInferResponse';
export type { InferTensorContents, InferTensorContents__Output as InferTensorContentsOut } from './generated/inference/InferTensorContents';
export type { InferParameter, InferParameter__Output as InferParameterOut } from './generated/inference/InferParameter';
export type { ModelMetadataResponse, _inference_ModelMetadataResponse_TensorMetadata as TensorMetadata } from './generated/inference/ModelMetadataResponse';
export type { ModelMetadataResponse__Output as ModelMetadataResponseOut } from './generated/inference/ModelMetadataResponse';

export type { Model, Model__Output as ModelOut } from './generated/infermesh/registry/v1/Model';
export type { Version, Version__Output as VersionOut } from './generated/infermesh/registry/v1/Version';
export type { TensorSignature, TensorSignature__Output as TensorSignatureOut } from './generated/infermesh/registry/v1/TensorSignature';
export type { ServingConfig, ServingConfig__Output as ServingConfigOut } from './generated/infermesh/registry/v1/ServingConfig';
export type { TrafficTarget, TrafficTarget__Output as TrafficTargetOut } from './generated/infermesh/registry/v1/TrafficTarget';
export type { PushVersionRequest__Output as PushVersionRequestOut } from './generated/infermesh/registry/v1/PushVersionRequest';
export type { ArtifactChunk } from './generated/infermesh/registry/v1/ArtifactChunk';
