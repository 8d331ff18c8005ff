// The inference service's definition for a grpc-js server with every ModelInferRequest scanned
// (request-scan.ts) before protobufjs decodes it, as the pod's front door does: the pods' grpc-js
// servers take ModelInfer and ModelStreamInfer requests through it (the router's reads them only as
// far as routing needs, services/router/forwarded-service.ts).
import type * as grpc from '@grpc/grpc-js';
import { errors, MeshError } from '../errors';
import { protos } from './proto';
import { scanAndDecode, type RequestScanLimits } from './request-scan';
import type { ModelInferRequestOut } from './types';

/** Requests the deserializer refused, with why: grpc-js would answer a throwing deserializer INTERNAL. */
const refused = new WeakMap<object, MeshError>();

/** Why `req` was refused before decoding, for the handler to answer with; undefined for a decoded request. */
export function refusalOf(req: object): MeshError | undefined {
  return refused.get(req);
}

/** The bytes each request came as, for a stream's budget (stream-infer.ts). */
const sizes = new WeakMap<object, number>();

/** How many bytes `req` came as (0 when not known). */
export function requestSizeOf(req: object): number {
  return sizes.get(req) ?? 0;
}

/**
 * A method's answer serializer that passes bytes on as they are: the answers of ModelInfer and
 * ModelStreamInfer are written by hand (infer-answer.ts) or relayed from a pod, never by protobufjs
 * again; anything else (a stream's error) is serialized as before.
 */
// any: grpc-js types ServiceDefinition's methods so.
export function bytesOrSerialized(method: grpc.MethodDefinition<any, any>): (value: unknown) => Buffer {
  return (value) => (Buffer.isBuffer(value) ? value : method.responseSerialize(value));
}

/**
 * GRPCInferenceService with ModelInfer and ModelStreamInfer requests scanned within `limits`; a
 * refused one reaches the handler as a stand-in that refusalOf() recognises. Their answers are
 * bytes (bytesOrSerialized).
 */
export function scannedInferenceService(limits: RequestScanLimits): grpc.ServiceDefinition {
  const def = protos().inference.GRPCInferenceService.service;
  // any: grpc-js types ServiceDefinition's methods so.
  const scanned = (method: grpc.MethodDefinition<any, any>): grpc.MethodDefinition<any, any> => ({
    ...method,
    responseSerialize: bytesOrSerialized(method),
    requestDeserialize: (bytes: Buffer): ModelInferRequestOut => {
      let req: ModelInferRequestOut;
      try {
        req = scanAndDecode(bytes, limits, (b) => method.requestDeserialize(b) as ModelInferRequestOut);
      } catch (err) {
        req = {} as ModelInferRequestOut;
        refused.set(req, err instanceof MeshError ? err : errors.invalidArgument('malformed request'));
      }
      sizes.set(req, bytes.length);
      return req;
    },
  });
  return { ...def, ModelInfer: scanned(def.ModelInfer), ModelStreamInfer: scanned(def.ModelStreamInfer) };
}
