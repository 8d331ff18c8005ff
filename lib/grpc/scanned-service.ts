// The inference service's definition for a grpc-js server with every ModelInferRequest scanned
// (request-scan.ts) before protobufjs decodes it, as the front doors do: the pods' and the router's
// grpc-js servers both take ModelInfer and ModelStreamInfer requests through it.
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

/**
 * GRPCInferenceService with ModelInfer and ModelStreamInfer requests scanned within `limits`; a
 * refused one reaches the handler as a stand-in that refusalOf() recognises.
 */
export function scannedInferenceService(limits: RequestScanLimits): grpc.ServiceDefinition {
  const def = protos().inference.GRPCInferenceService.service;
  // any: grpc-js types ServiceDefinition's methods so.
  const scanned = (method: grpc.MethodDefinition<any, any>): grpc.MethodDefinition<any, any> => ({
    ...method,
    requestDeserialize: (bytes: Buffer): ModelInferRequestOut => {
      try {
        return scanAndDecode(bytes, limits, (b) => method.requestDeserialize(b) as ModelInferRequestOut);
      } catch (err) {
        const stand = {} as ModelInferRequestOut;
        refused.set(stand, err instanceof MeshError ? err : errors.invalidArgument('malformed request'));
        return stand;
      }
    },
  });
  return { ...def, ModelInfer: scanned(def.ModelInfer), ModelStreamInfer: scanned(def.ModelStreamInfer) };
}
