// How the client connects: over TLS verifying a given CA, and with a token sent on every call as
// `authorization: Bearer <token>`. The client takes these as values; it reads no environment (the
// CLI does, for --token / INFERMESH_TOKEN and --ca / INFERMESH_CA).
import * as grpc from '@grpc/grpc-js';
import type { ClientOptions } from '../lib/grpc/client';

/** How a client connects to the registry or the router; by default plaintext with no token. */
export interface ConnectOptions {
  /** An API key (`imk_...`) or a JWT, sent on every call as `authorization: Bearer <token>`. */
  token?: string;
  /**
   * PEM of the CA(s) that sign the server's certificate: connect with TLS and verify it. Without
   * it: plaintext, except that a token to an address other than loopback goes over TLS verified
   * against the system's roots, so a forgotten CA never sends the token in the clear.
   */
  ca?: string | Uint8Array;
  /** Send the token over plaintext even off loopback (a mesh whose ports have no TLS); default false. */
  plaintext?: boolean;
  /** Largest message received, in bytes (default 64 MiB). */
  maxMessageBytes?: number;
}

/** An interceptor that adds the bearer token to every call's metadata. */
function bearer(token: string): grpc.Interceptor {
  const value = `Bearer ${token}`;
  return (options, next) => new grpc.InterceptingCall(next(options), {
    start(metadata, listener, proceed) {
      metadata.set('authorization', value);
      proceed(metadata, listener);
    },
  });
}

/** Whether `address` (host:port) names this machine: a token sent there in the clear stays on it. */
export function isLoopback(address: string): boolean {
  const host = address.startsWith('[') ? address.slice(1, address.indexOf(']')) : address.replace(/:\d+$/, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The channel credentials: the given CA's, the system roots' for a token leaving the machine, else none (plaintext). */
function credentialsOf(address: string, opts: ConnectOptions): grpc.ChannelCredentials | undefined {
  if (opts.ca !== undefined) return grpc.credentials.createSsl(Buffer.from(opts.ca));
  if (opts.token !== undefined && !opts.plaintext && !isLoopback(address)) return grpc.credentials.createSsl();
  return undefined;
}

/** ConnectOptions for a client of `address` → the options of lib/grpc/client's factories. */
export function clientOptions(address: string, opts: ConnectOptions): ClientOptions {
  if (opts.token !== undefined && (opts.token === '' || /[\r\n]/.test(opts.token))) throw new Error('token must be a non-empty line');
  const credentials = credentialsOf(address, opts);
  return {
    maxMessageBytes: opts.maxMessageBytes,
    ...(credentials && { credentials }),
    // grpc-js takes interceptors among the client's options; they apply to plaintext and TLS alike.
    ...(opts.token !== undefined && { channel: { interceptors: [bearer(opts.token)] } }),
  };
}
