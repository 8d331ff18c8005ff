// The inference service's definition for the router's grpc-js server (which answers every call but
// the front door's ModelInfer): a ModelInfer or ModelStreamInfer request is read only as far as
// the front door reads one (request-peek.ts: its model, version and id, by the pod's own rules)
// and forwarded as the bytes it came as; the answer is the pod's bytes, passed on as they are.
// Decoded and encoded again, a request or an answer of millions of typed elements held the
// router's one thread for seconds (every team's calls behind it).
import type * as grpc from '@grpc/grpc-js';
import { errors, MeshError } from '../../lib/errors';
import { protos } from '../../lib/grpc/proto';
import { bytesOrSerialized } from '../../lib/grpc/scanned-service';
import { peekRequest } from './request-peek';

/** A request the router forwards untouched: what routing and its errors need, and its bytes. */
export interface ForwardedRequest {
  model_name: string;
  model_version: string;
  id: string;
  bytes: Buffer;
  /** Why it is refused before routing (not a ModelInferRequest the pod would read as the router does). */
  refused?: MeshError;
}

/** GRPCInferenceService with ModelInfer and ModelStreamInfer requests peeked, not decoded, and answered in bytes. */
export function forwardedInferenceService(): grpc.ServiceDefinition {
  const def = protos().inference.GRPCInferenceService.service;
  // any: grpc-js types ServiceDefinition's methods so.
  const forwarded = (method: grpc.MethodDefinition<any, any>): grpc.MethodDefinition<any, any> => ({
    ...method,
    requestDeserialize: (bytes: Buffer): ForwardedRequest => {
      try {
        const { model, version, id } = peekRequest(bytes, true);
        return { model_name: model, model_version: version, id, bytes };
      } catch (err) {
        return { model_name: '', model_version: '', id: '', bytes, refused: err instanceof MeshError ? err : errors.invalidArgument('malformed request') };
      }
    },
    responseSerialize: bytesOrSerialized(method),
  });
  return { ...def, ModelInfer: forwarded(def.ModelInfer), ModelStreamInfer: forwarded(def.ModelStreamInfer) };
}
