// One error family for every service, and the one mapping from it to gRPC status codes.
// Domain code throws MeshError; handlers turn whatever they caught into a status with toGrpcStatus.
import { status as Status, type ServiceError, Metadata } from '@grpc/grpc-js';
import type { Logger } from './log';

/** The domain error codes, each with one gRPC status. */
export const ErrorCode = {
  ModelNotFound: 'ModelNotFound',
  VersionNotFound: 'VersionNotFound',
  InvalidArgument: 'InvalidArgument',
  InvalidTensor: 'InvalidTensor',
  AlreadyExists: 'AlreadyExists',
  Conflict: 'Conflict',
  QueueFull: 'QueueFull',
  Overloaded: 'Overloaded',
  NotReady: 'NotReady',
  Unavailable: 'Unavailable',
  DeadlineExceeded: 'DeadlineExceeded',
  Cancelled: 'Cancelled',
  FailedPrecondition: 'FailedPrecondition',
  ExecutionFailed: 'ExecutionFailed',
  Internal: 'Internal',
  Unauthenticated: 'Unauthenticated',
  PermissionDenied: 'PermissionDenied',
  KeyNotFound: 'KeyNotFound',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const grpcStatusOf: Record<ErrorCode, Status> = {
  ModelNotFound: Status.NOT_FOUND,
  VersionNotFound: Status.NOT_FOUND,
  InvalidArgument: Status.INVALID_ARGUMENT,
  InvalidTensor: Status.INVALID_ARGUMENT,
  AlreadyExists: Status.ALREADY_EXISTS,
  Conflict: Status.ABORTED,
  QueueFull: Status.RESOURCE_EXHAUSTED,
  Overloaded: Status.RESOURCE_EXHAUSTED,
  NotReady: Status.UNAVAILABLE,
  Unavailable: Status.UNAVAILABLE,
  DeadlineExceeded: Status.DEADLINE_EXCEEDED,
  Cancelled: Status.CANCELLED,
  FailedPrecondition: Status.FAILED_PRECONDITION,
  ExecutionFailed: Status.INTERNAL,
  Internal: Status.INTERNAL,
  Unauthenticated: Status.UNAUTHENTICATED,
  PermissionDenied: Status.PERMISSION_DENIED,
  KeyNotFound: Status.NOT_FOUND,
};

/** An expected failure with a code the caller can act on; its message is safe to show to clients. */
export class MeshError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MeshError';
    this.code = code;
  }
}

/** Longest model name an error repeats whole: a caller's own name, but of any length it likes. */
const MAX_SHOWN_NAME = 128;

/** `name` as an error repeats it: whole up to MAX_SHOWN_NAME characters, cut with an ellipsis beyond. */
export function shownName(name: string): string {
  return name.length > MAX_SHOWN_NAME ? `${name.slice(0, MAX_SHOWN_NAME)}…` : name;
}

/** Shorthand constructors, so call sites read as the condition they report. */
export const errors = {
  modelNotFound: (model: string) => new MeshError(ErrorCode.ModelNotFound, `model '${shownName(model)}' not found`),
  versionNotFound: (model: string, version: string | number) =>
    new MeshError(ErrorCode.VersionNotFound, `model '${shownName(model)}' has no version ${typeof version === 'string' ? shownName(version) : version}`),
  invalidArgument: (message: string) => new MeshError(ErrorCode.InvalidArgument, message),
  invalidTensor: (tensor: string, problem: string) =>
    new MeshError(ErrorCode.InvalidTensor, `tensor '${tensor}': ${problem}`),
  unavailable: (message: string) => new MeshError(ErrorCode.Unavailable, message),
  notReady: (message: string) => new MeshError(ErrorCode.NotReady, message),
  /** No credentials, or ones that do not verify; the message never repeats the credential. */
  unauthenticated: (message: string) => new MeshError(ErrorCode.Unauthenticated, message),
  /** Valid credentials without the scope the call needs, named with the model it was asked for. */
  permissionDenied: (scope: string, model: string) =>
    new MeshError(ErrorCode.PermissionDenied, `the caller has no '${scope}' scope for model '${shownName(model)}'`),
  /** Valid credentials without what a call about no one model needs, said in `message`. */
  permissionDeniedBecause: (message: string) => new MeshError(ErrorCode.PermissionDenied, message),
};

/** True for an error that grpc-js produced for a call (it carries a numeric status code). */
export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number' && 'metadata' in err;
}

/** What a client is told when a call needed NATS (the registry's store, the event stream) and it did not answer. */
export const NATS_UNREACHABLE_MESSAGE = 'NATS is unreachable (no answer from the mesh\'s message bus and store); try again';

/**
 * The names nats.js gives its errors that say NATS, or JetStream behind it, cannot be reached now
 * (@nats-io/nats-core errors.ts): a request or JetStream API call that timed out, a connection
 * closed or draining, no responders (JetStream down). Matched by name, not class: this module is
 * the client's too, which does not load NATS.
 */
const NATS_UNREACHABLE_ERRORS = new Set(['TimeoutError', 'ClosedConnectionError', 'DrainingConnectionError', 'ConnectionError', 'NoResponders']);

/**
 * Whether `err`, or an error it was caused by, is nats.js saying NATS cannot be reached:
 * NATS_UNREACHABLE_ERRORS, a request cut by a disconnect, a JetStream publish no server took (503).
 * A DOMException (AbortSignal.timeout's TimeoutError) is not NATS's.
 */
export function natsUnreachable(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++, e = e.cause) {
    if (typeof DOMException !== 'undefined' && e instanceof DOMException) return false;
    if (NATS_UNREACHABLE_ERRORS.has(e.name)) return true;
    if (e.name === 'RequestError' && e.message === 'connection disconnected') return true;
    if (e.name === 'JetStreamStatusError' && (e as Error & { code?: unknown }).code === 503) return true;
  }
  return false;
}

/**
 * Whether `err`, or an error it was caused by, is nats.js refusing a message larger than the
 * server's max_payload (1 MiB by default): the write is too large, not NATS unreachable.
 */
export function natsPayloadTooLarge(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++, e = e.cause) {
    if (e.name === 'InvalidArgumentError' && /max_payload/.test(e.message)) return true;
  }
  return false;
}

/** The status details of a message NATS's max_payload refused. */
export const NATS_PAYLOAD_TOO_LARGE_MESSAGE = 'the write does not fit in one NATS message (the server\'s max_payload, 1 MiB by default): make the description, labels or warm-up samples smaller';

/** The gRPC status a handler answers with. */
export interface GrpcStatus {
  code: Status;
  details: string;
  metadata?: Metadata;
}

/**
 * Maps any thrown value to the status a client sees. MeshErrors keep their message; errors from an
 * upstream gRPC call keep theirs; anything else becomes INTERNAL with a generic message, and is
 * logged with its stack (when a logger is given) so the cause is not lost.
 */
export function toGrpcStatus(err: unknown, log?: Logger): GrpcStatus {
  if (err instanceof MeshError) return { code: grpcStatusOf[err.code], details: statusMessage(err.message) };
  if (isServiceError(err)) return { code: err.code, details: statusMessage(err.details || err.message) };
  if (natsUnreachable(err)) {
    // An outage, not a fault of the call: UNAVAILABLE, which clients retry.
    log?.warn('NATS is unreachable', { err: messageOf(err) });
    return { code: Status.UNAVAILABLE, details: NATS_UNREACHABLE_MESSAGE };
  }
  if (natsPayloadTooLarge(err)) {
    log?.warn('a write did not fit in one NATS message', { err: messageOf(err) });
    return { code: Status.RESOURCE_EXHAUSTED, details: NATS_PAYLOAD_TOO_LARGE_MESSAGE };
  }
  log?.error('unexpected error', { err });
  return { code: Status.INTERNAL, details: 'internal error' };
}

/**
 * Longest status message sent, in characters. grpc-message travels in the trailers, percent-encoded
 * (up to 12 bytes a character), and clients refuse metadata past 8 KiB by default (grpc-js's and
 * gRPC core's grpc.max_metadata_size): a longer one never reaches them, and the call hangs until
 * its deadline. A caller's own input repeated in a message (an input's name, say) is cut here,
 * whatever the path that repeated it.
 */
export const MAX_STATUS_MESSAGE_CHARS = 512;

/** `message` within MAX_STATUS_MESSAGE_CHARS, cut with an ellipsis (never inside a surrogate pair). */
export function statusMessage(message: string): string {
  if (message.length <= MAX_STATUS_MESSAGE_CHARS) return message;
  let end = MAX_STATUS_MESSAGE_CHARS - 1;
  const last = message.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${message.slice(0, end)}…`;
}

/** The domain code for a gRPC status received from another service (used by clients). */
export function fromGrpcStatus(code: Status): ErrorCode {
  switch (code) {
    case Status.NOT_FOUND: return ErrorCode.ModelNotFound;
    case Status.INVALID_ARGUMENT: return ErrorCode.InvalidArgument;
    case Status.ALREADY_EXISTS: return ErrorCode.AlreadyExists;
    case Status.ABORTED: return ErrorCode.Conflict;
    case Status.RESOURCE_EXHAUSTED: return ErrorCode.Overloaded;
    case Status.UNAVAILABLE: return ErrorCode.Unavailable;
    case Status.DEADLINE_EXCEEDED: return ErrorCode.DeadlineExceeded;
    case Status.CANCELLED: return ErrorCode.Cancelled;
    case Status.FAILED_PRECONDITION: return ErrorCode.FailedPrecondition;
    case Status.UNAUTHENTICATED: return ErrorCode.Unauthenticated;
    case Status.PERMISSION_DENIED: return ErrorCode.PermissionDenied;
    default: return ErrorCode.Internal;
  }
}

/** A message for logs from any thrown value. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
