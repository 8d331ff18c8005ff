// infermesh's TypeScript client: the public surface, named one by one.
export { InferenceApi, decodeOutputs } from './inference';
export type { InferInput, InferOutput, InferOptions, InferResult } from './inference';
export { RegistryApi } from './registry';
export type { PushOptions } from './registry';
export { InfermeshError } from './errors';
export type { ErrorCode } from '../lib/errors';
export type { Datatype } from '../lib/tensor';
export type { ModelOut as Model, VersionOut as Version } from '../lib/grpc/types';
