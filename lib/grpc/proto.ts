// Loads the .proto contracts once, with one set of options, for every server and client.
import path from 'node:path';
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as InferenceProto } from './generated/grpc_service';
import type { ProtoGrpcType as HealthProto } from './generated/health';
import type { ProtoGrpcType as RegistryProto } from './generated/registry';
import type { ProtoGrpcType as RolloutsProto } from './generated/rollouts';

/**
 * The one proto-loader options constant (scripts/gen-proto-types.js generates types with the same).
 * keepCase keeps the wire names (model_name, raw_input_contents); int64 values arrive as strings so
 * no precision is lost; bytes as Buffers; unset fields get their defaults.
 */
export const PROTO_OPTIONS: protoLoader.Options = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
});

/** The HTTP/2 path of the Open Inference Protocol's ModelInfer: the hot path the front doors answer. */
export const MODEL_INFER_PATH = '/inference.GRPCInferenceService/ModelInfer';

/** The proto/ folder: at the repository root for sources, copied into dist/ by the build. */
export const PROTO_ROOT: string =
  [path.resolve(__dirname, '../../proto'), path.resolve(__dirname, '../../../proto')].find((p) =>
    fs.existsSync(path.join(p, 'inference', 'grpc_service.proto')),
  ) ?? path.resolve(__dirname, '../../proto');

// inference/ is an include folder too: grpc_service.proto imports "model_config.proto" from beside
// it, as Triton's does, so a client compiling the two files together needs no include flags.
const definitions: protoLoader.PackageDefinition[] = [];

function load<T>(file: string): T {
  const def = protoLoader.loadSync(path.join(PROTO_ROOT, file), { ...PROTO_OPTIONS, includeDirs: [PROTO_ROOT, path.join(PROTO_ROOT, 'inference')] });
  definitions.push(def);
  return grpc.loadPackageDefinition(def) as unknown as T;
}

interface Protos {
  inference: InferenceProto['inference'];
  health: HealthProto['grpc']['health']['v1'];
  registry: RegistryProto['infermesh']['registry']['v1'];
  rollouts: RolloutsProto['infermesh']['registry']['v1'];
}

let cache: Protos | undefined;

/** The loaded packages: service constructors (clients) with `.service` definitions (servers). */
export function protos(): Protos {
  cache ??= {
    inference: load<InferenceProto>('inference/grpc_service.proto').inference,
    health: load<HealthProto>('grpc/health/v1/health.proto').grpc.health.v1,
    registry: load<RegistryProto>('infermesh/registry/v1/registry.proto').infermesh.registry.v1,
    rollouts: load<RolloutsProto>('infermesh/registry/v1/rollouts.proto').infermesh.registry.v1,
  };
  return cache;
}

/**
 * The package definition of each loaded .proto file (with its imports): every type and service by
 * its full name, with the file descriptors reflection serves.
 */
export function protoDefinitions(): readonly protoLoader.PackageDefinition[] {
  protos();
  return definitions;
}
