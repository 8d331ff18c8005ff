// infermesh's TypeScript client: the public surface, named one by one.
export { InferenceApi, decodeOutputs } from './inference';
export type { InferInput, InferOutput, InferOptions, InferResult, ModelIndexEntry } from './inference';
export { RegistryApi } from './registry';
export type { PushOptions, ModelUpdate, UpdateModelOptions, WatchOptions, WatchedEvent, EventWatch, DeletedVersion, CreatedKey } from './registry';
export type { ConnectOptions } from './connection';
export type { ApiKey__Output as ApiKey } from '../lib/grpc/generated/infermesh/registry/v1/ApiKey';
export type { Pod__Output as Pod } from '../lib/grpc/generated/infermesh/registry/v1/Pod';
export type { PodVersion__Output as PodVersion } from '../lib/grpc/generated/infermesh/registry/v1/PodVersion';
export type { MeshEvent as RegistryEvent, EventType as RegistryEventType } from '../lib/events';
export { RolloutApi } from './rollouts';
export type { StartRolloutOptions } from './rollouts';
export type { RolloutStatusOut as RolloutStatus } from '../lib/grpc/types';
export { InfermeshError } from './errors';
export type { ErrorCode } from '../lib/errors';
export type { Datatype } from '../lib/tensor';
export type { ModelOut as Model, VersionOut as Version } from '../lib/grpc/types';
