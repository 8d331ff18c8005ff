// The node:http(s) server of every HTTP door (the router's REST door, the registry's console): the
// connection limits of INFERMESH_HTTP_*, TLS with the service's files (reloaded as they change),
// and one answer to requests that cannot be parsed.
import http from 'node:http';
import https from 'node:https';
import type { TlsFiles } from '../tls';
import { answerClientError } from './http-status';

/** The connection limits of an HTTP door (INFERMESH_HTTP_*, docs/rest.md). */
export interface HttpConnectionLimits {
  maxHeaderBytes: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** How long a connection given up on has to take its last answer (INFERMESH_HTTP_LINGER_MS). */
  lingerMs: number;
  maxConnections: number;
}

/** A door's server, and how to stop following its TLS files. */
export interface HttpDoorServer {
  server: http.Server;
  stopTls(): void;
}

/**
 * An HTTP/1.1 server with `limits`, over TLS when `tls` is given (client certificates required
 * with `requestCert`), calling `onRequest` for every request.
 */
export function createHttpDoorServer(limits: HttpConnectionLimits, onRequest: http.RequestListener, tls?: TlsFiles, requestCert = false): HttpDoorServer {
  const options: http.ServerOptions = {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Idle and request timeouts are checked this often (Node's default: 30 s, longer than tests' timeouts).
    connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(limits.headersTimeoutMs / 4))),
  };
  let server: http.Server;
  let stopTls = () => undefined as void;
  if (tls) {
    const secure = https.createServer({ ...options, ...tls.contextOptions(), ALPNProtocols: ['http/1.1'], requestCert, rejectUnauthorized: requestCert }, onRequest);
    stopTls = tls.onChange(() => secure.setSecureContext(tls.contextOptions()));
    secure.on('tlsClientError', () => undefined);
    server = secure;
  } else {
    server = http.createServer(options, onRequest);
  }
  server.maxConnections = limits.maxConnections;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => answerClientError(err, socket, limits.lingerMs));
  return { server, stopTls };
}
