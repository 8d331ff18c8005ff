// Adapters from async domain functions to grpc-js handler callbacks, with the one error mapping.
import type * as grpc from '@grpc/grpc-js';
import { toGrpcStatus } from '../errors';
import type { Logger } from '../log';

/** A unary handler from an async function; thrown errors become gRPC statuses. */
export function unaryHandler<Req, Res>(log: Logger, fn: (call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, cb) => {
    // Promise.resolve().then: a synchronous throw in `fn` becomes a status too.
    Promise.resolve().then(() => fn(call)).then((res) => cb(null, res), (err: unknown) => cb(toGrpcStatus(err, log)));
  };
}

/** A client-streaming handler from an async function. */
export function clientStreamHandler<Req, Res>(log: Logger, fn: (call: grpc.ServerReadableStream<Req, Res>) => Promise<Res>): grpc.handleClientStreamingCall<Req, Res> {
  return (call, cb) => {
    Promise.resolve().then(() => fn(call)).then((res) => cb(null, res), (err: unknown) => cb(toGrpcStatus(err, log)));
  };
}

/** A server-streaming handler from an async function that writes to the call; ends or errors it. */
export function serverStreamHandler<Req, Res>(log: Logger, fn: (call: grpc.ServerWritableStream<Req, Res>) => Promise<void>): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    Promise.resolve().then(() => fn(call)).then(
      () => call.end(),
      (err: unknown) => {
        // Emitting 'error' on a server stream ends the call with that status.
        if (!call.cancelled) call.emit('error', toGrpcStatus(err, log));
      },
    );
  };
}

