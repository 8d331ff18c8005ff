// The node:http(s) server of every HTTP door (the router's REST door, the registry's console): the
// connection limits of INFERMESH_HTTP_*, TLS with the service's files (reloaded as they change),
// one answer to requests that cannot be parsed, and one to bodies in a transfer coding it does
// not undo.
import http from 'node:http';
import https from 'node:https';
import type { TlsFiles } from '../tls';
import { answerClientError, closeConnection, errorBody } from './http-status';

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
  const serve: http.RequestListener = (req, res) => {
    if (!takenTransferCoding(req.headers['transfer-encoding'])) return refuseTransferCoding(req, res, limits.lingerMs);
    onRequest(req, res);
  };
  let server: http.Server;
  let stopTls = () => undefined as void;
  if (tls) {
    const secure = https.createServer({ ...options, ...tls.contextOptions(), ALPNProtocols: ['http/1.1'], requestCert, rejectUnauthorized: requestCert }, serve);
    stopTls = tls.onChange(() => secure.setSecureContext(tls.contextOptions()));
    secure.on('tlsClientError', () => undefined);
    server = secure;
  } else {
    server = http.createServer(options, serve);
  }
  server.maxConnections = limits.maxConnections;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => answerClientError(err, socket, limits.lingerMs));
  return { server, stopTls };
}

/**
 * Whether a door takes a request's Transfer-Encoding: none, or chunked alone, which node:http's
 * parser frames the body by and undoes. A coding before it (`gzip, chunked`, `foo, chunked`) would
 * be left on the bytes the door reads as the body, as a Content-Encoding would (the REST door
 * refuses that 415); the parser itself refuses codings that do not end with chunked.
 */
function takenTransferCoding(header: string | undefined): boolean {
  return header === undefined || /^[\s,]*chunked[\s,]*$/i.test(header);
}

/**
 * Answers a request whose body is in a transfer coding the door does not undo 501 (RFC 9112,
 * 6.1), and closes its connection after: its body is not read.
 */
function refuseTransferCoding(req: http.IncomingMessage, res: http.ServerResponse, lingerMs: number): void {
  const body = errorBody('the body has a Transfer-Encoding other than chunked: this server takes bodies chunked or with a Content-Length, uncoded');
  res.shouldKeepAlive = false;
  res.writeHead(501, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
  res.once('finish', () => closeConnection(req.socket, lingerMs));
}
