// The one way a service or tool creates a gRPC client, so TLS, credentials and limits live here.
import * as grpc from '@grpc/grpc-js';
import { protos } from './proto';
import { channelOptions } from './server';
import { DEFAULT_H2_LIMITS } from '../h2/limits';
import { expectIdentity, type TlsFiles } from '../tls';
import type { HealthClient, InferenceClient, RegistryClient, RolloutsClient } from './types';

/** Options for clients; the message limit defaults to 64 MiB. */
export interface ClientOptions {
  maxMessageBytes?: number;
  /** Extra grpc-js channel options (e.g. a distinct channel per connection). */
  channel?: grpc.ChannelOptions;
  /** Connect over TLS with the service's material (default: plaintext). */
  tls?: ClientTls;
  /** Ready-made channel credentials (the TS client's `--ca`: TLS verifying a given CA); used instead of `tls`. */
  credentials?: grpc.ChannelCredentials;
}

/** TLS of a client. */
export interface ClientTls {
  /** The CA and this service's certificate (sent when the server asks), followed as they are reloaded. */
  files: TlsFiles;
  /**
   * The SPIFFE ID the server must prove (lib/tls.ts spiffeId), instead of the host name check;
   * unset: the server's certificate must name the host of the address.
   */
  identity?: string;
}

const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/**
 * Clients ping no more often than the front doors' keepalive policy permits (lib/h2/limits.ts, as
 * grpc-go's EnforcementPolicy: 5 min, not without a call): a client pinging every 30 s was sent
 * GOAWAY too_many_pings on a long quiet stream. A door that does not answer a ping within 10 s is gone.
 */
export const CLIENT_KEEPALIVE: Readonly<grpc.ChannelOptions> = Object.freeze({
  'grpc.keepalive_time_ms': DEFAULT_H2_LIMITS.keepaliveMinIntervalMs,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': DEFAULT_H2_LIMITS.keepalivePermitWithoutStream ? 1 : 0,
});

function options(opts: ClientOptions): grpc.ChannelOptions {
  return { ...channelOptions(opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES), ...CLIENT_KEEPALIVE, ...opts.channel };
}

/**
 * The credentials of a client: plaintext without TLS; with it, grpc-js's certificate-provider
 * credentials over the service's files, so each new connection uses the material in force. grpc-js
 * makes that context from the certificate, key and CA only, so these connections keep Node's lowest
 * version and accept a server's renegotiation (INFERMESH_TLS_MIN_VERSION does not reach them): they
 * go only to the mesh's own ports, verified against its CA, which refuse both themselves.
 */
export function channelCredentials(tls?: ClientTls): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return grpc.experimental.createCertificateProviderChannelCredentials(tls.files, tls.files, tls.identity ? { checkServerIdentity: expectIdentity(tls.identity) } : {});
}

/** A client of the Open Inference Protocol at `address` (host:port). */
export function inferenceClient(address: string, opts: ClientOptions = {}): InferenceClient {
  return new (protos().inference.GRPCInferenceService)(address, opts.credentials ?? channelCredentials(opts.tls), options(opts));
}

/** A client of the registry API at `address`. */
export function registryClient(address: string, opts: ClientOptions = {}): RegistryClient {
  return new (protos().registry.Registry)(address, opts.credentials ?? channelCredentials(opts.tls), options(opts));
}

/** A client of the rollouts API (served by the registry) at `address`. */
export function rolloutsClient(address: string, opts: ClientOptions = {}): RolloutsClient {
  return new (protos().rollouts.Rollouts)(address, opts.credentials ?? channelCredentials(opts.tls), options(opts));
}

/** A client of the standard health service at `address`. */
export function healthClient(address: string, opts: ClientOptions = {}): HealthClient {
  return new (protos().health.Health)(address, opts.credentials ?? channelCredentials(opts.tls), options(opts));
}

type Callback<R> = (err: grpc.ServiceError | null, res?: R) => void;

/** Calls a callback-style unary method and resolves to its response (rejects with the ServiceError). */
export function unary<R>(invoke: (cb: Callback<R>) => unknown): Promise<R> {
  return new Promise((resolve, reject) => {
    invoke((err, res) => (err ? reject(err) : resolve(res as R)));
  });
}

/** A deadline `ms` from now, for CallOptions. */
export function deadlineIn(ms: number): Date {
  return new Date(Date.now() + ms);
}

/**
 * Metadata key with which the router tells a pod which version it chose for a request that named
 * none, so the pod serves the version of the traffic split without the request being re-encoded.
 */
export const ROUTED_VERSION_HEADER = 'infermesh-version';
