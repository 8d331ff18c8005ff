// The scope each Open Inference Protocol method needs, in one table: the router's hot path
// (ModelInfer on lib/h2) and its typed grpc-js handlers both read it. `null`: any authenticated
// caller (the server's own liveness, readiness and metadata say nothing about a model).
import type { Scope } from './grants';

export const OIP_METHOD_SCOPES = {
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
} as const satisfies Record<string, Scope | null>;

/** An OIP method by its name in inference.GRPCInferenceService. */
export type OipMethod = keyof typeof OIP_METHOD_SCOPES;
