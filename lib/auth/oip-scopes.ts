// The scope each Open Inference Protocol method needs, in one table: the router's hot path
// (ModelInfer on lib/h2) and its typed grpc-js handlers both read it. `null`: any authenticated
// caller (the server's own liveness, readiness and metadata say nothing about a model). Typed over
// the service's handlers, so a method added to the proto does not compile without a row.
import type { InferenceHandlers } from '../grpc/types';
import type { Scope } from './grants';

/** The method names of a grpc-js handlers type, without its index signature. */
type MethodsOf<T> = keyof { [K in keyof T as string extends K ? never : K]: T[K] };

export const OIP_METHOD_SCOPES: Readonly<Record<MethodsOf<InferenceHandlers>, Scope | null>> = Object.freeze({
  ServerLive: null,
  ServerReady: null,
  ServerMetadata: null,
  ModelReady: 'read',
  ModelMetadata: 'read',
  ModelConfig: 'read',
  // Without a model name: the answer holds only the models the caller may read.
  ModelStatistics: 'read',
  RepositoryIndex: 'read',
  ModelInfer: 'infer',
  ModelStreamInfer: 'infer',
});

/** An OIP method by its name in inference.GRPCInferenceService. */
export type OipMethod = keyof typeof OIP_METHOD_SCOPES;
