// How the client connects: over TLS verifying a given CA, and with a token sent on every call as
// `authorization: Bearer <token>`. The client takes these as values; it reads no environment (the
// CLI does, for --token / INFERMESH_TOKEN and --ca / INFERMESH_CA).
import * as grpc from '@grpc/grpc-js';
import type { ClientOptions } from '../lib/grpc/client';

/** How a client connects to the registry or the router; by default plaintext with no token. */
export interface ConnectOptions {
  /** An API key (`imk_...`) or a JWT, sent on every call as `authorization: Bearer <token>`. */
  token?: string;
  /** PEM of the CA(s) that sign the server's certificate: connect with TLS and verify it (default: plaintext). */
  ca?: string | Uint8Array;
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

/** ConnectOptions → the options of lib/grpc/client's factories. */
export function clientOptions(opts: ConnectOptions): ClientOptions {
  if (opts.token !== undefined && (opts.token === '' || /[\r\n]/.test(opts.token))) throw new Error('token must be a non-empty line');
  return {
    maxMessageBytes: opts.maxMessageBytes,
    ...(opts.ca !== undefined && { credentials: grpc.credentials.createSsl(Buffer.from(opts.ca)) }),
    // grpc-js takes interceptors among the client's options; they apply to plaintext and TLS alike.
    ...(opts.token !== undefined && { channel: { interceptors: [bearer(opts.token)] } }),
  };
}
