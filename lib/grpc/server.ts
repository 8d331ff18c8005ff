// The one way a service creates its gRPC server: limits, keepalive, the health service and server
// reflection, so TLS, authentication and interceptors are added here once for every service.
import * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { protoDefinitions, protos } from './proto';
import { HealthService } from './health';
import type { TlsFiles } from '../tls';

/** Options every infermesh gRPC server shares. */
export interface ServerOptions {
  /** Largest message received or sent, in bytes. */
  maxMessageBytes: number;
  /** Interceptors every call passes (the router's authentication); none by default. */
  interceptors?: grpc.ServerInterceptor[];
}

/** Channel options shared by servers and clients (keepalive lets dead peers be noticed; clients ping less often, see client.ts). */
export function channelOptions(maxMessageBytes: number): grpc.ChannelOptions {
  return {
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 10_000,
  };
}

/** The full names of the services added to each server createServer made, until listen() reflects them. */
const servedBy = new WeakMap<grpc.Server, Set<string>>();

/** 'inference.GRPCInferenceService' from a service definition (its methods' paths). */
function serviceName(service: grpc.ServiceDefinition): string | undefined {
  const first = Object.values(service)[0] as grpc.MethodDefinition<unknown, unknown> | undefined;
  return first?.path.split('/')[1];
}

/**
 * A gRPC server with the standard health service already added. listen() adds gRPC server
 * reflection (grpc.reflection.v1 and v1alpha, `@grpc/reflection`) for exactly the services added
 * by then, so `grpcurl -plaintext HOST:PORT list` and describe work without the .proto files.
 */
export function createServer(opts: ServerOptions): { server: grpc.Server; health: HealthService } {
  const server = new grpc.Server({
    ...channelOptions(opts.maxMessageBytes),
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    interceptors: opts.interceptors ?? [],
  });
  const served = new Set<string>();
  servedBy.set(server, served);
  const addService = server.addService.bind(server);
  server.addService = (service, implementation) => {
    addService(service, implementation);
    const name = serviceName(service);
    if (name) served.add(name);
  };
  const health = new HealthService();
  server.addService(protos().health.Health.service, health.handlers());
  return { server, health };
}

/** Adds reflection for the services `server` serves (once; only to servers createServer made). */
function addReflection(server: grpc.Server): void {
  const served = servedBy.get(server);
  if (!served) return;
  servedBy.delete(server);
  // Only the files that define a served service (and their imports): nothing else is described.
  const files = protoDefinitions().filter((def) => [...served].some((name) => name in def));
  new ReflectionService(Object.assign({}, ...files) as PackageDefinition, { services: [...served] }).addToServer(server);
}

/** TLS of a grpc-js server. */
export interface ServerTls {
  /** The material in force (lib/tls.ts), followed as it is reloaded: new connections get the new certificate. */
  files: TlsFiles;
  /** Require a client certificate signed by the CA (mutual TLS). */
  clientAuth: boolean;
}

/**
 * The credentials of a server: plaintext without `tls`; with it, TLS from `files` through grpc-js's
 * certificate-provider credentials, which apply each reload with setSecureContext (calls in flight
 * finish on their connections).
 */
export function serverCredentials(tls?: ServerTls): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.experimental.createCertificateProviderServerCredentials(tls.files, tls.files, tls.clientAuth);
}

/**
 * Binds `host:port` (port 0: any free port) and resolves to the bound port: plaintext by default
 * (the loopback servers behind the front doors), TLS with `tls`.
 */
export function listen(server: grpc.Server, host: string, port: number, tls?: ServerTls): Promise<number> {
  addReflection(server);
  return new Promise((resolve, reject) => {
    const addr = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
    server.bindAsync(addr, serverCredentials(tls), (err, bound) => (err ? reject(err) : resolve(bound)));
  });
}

/**
 * Stops taking new calls and waits for in-flight ones up to `timeoutMs`, then cancels what is left.
 * Resolves true when everything finished in time.
 */
export function shutdownServer(server: grpc.Server, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve(false);
    }, timeoutMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
