import type { ServiceError } from '@grpc/grpc-js';
import { fromGrpcStatus, isServiceError, type ErrorCode } from '../lib/errors';

/** A failed call: the gRPC status code and message, and infermesh's error code for it. */
export class InfermeshError extends Error {
  constructor(readonly code: ErrorCode, readonly grpcCode: number, message: string) {
    super(message);
    this.name = 'InfermeshError';
  }
}

/** Wraps gRPC failures in InfermeshError; anything else is rethrown unchanged. */
export function wrap(err: unknown): never {
  if (isServiceError(err)) {
    const e = err as ServiceError;
    throw new InfermeshError(fromGrpcStatus(e.code), e.code, e.details || e.message);
  }
  throw err;
}
