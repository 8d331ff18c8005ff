// The node:http(s) server of every HTTP door (the router's REST door, the registry's console): the
// connection limits of INFERMESH_HTTP_*, TLS with the service's files (reloaded as they change),
// one answer to requests that cannot be parsed, and one to those it does not hand to its handler
// (too many header fields, a transfer coding it does not undo, an expectation it does not meet).
// Every connection it closes while its client may still be sending lingers (lingering-close.ts).
// A client that waits for 100 Continue before it sends its body is told to by the handler, once
// it has decided to read the body (continueBody), never by node:http ahead of the handler's checks.
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { TlsFiles } from '../tls';
import { answerClientError, errorBody } from './http-status';
import { LingeringClose, type LingeringLimits } from './lingering-close';

/** The connection limits of an HTTP door (INFERMESH_HTTP_*, docs/rest.md). */
export interface HttpConnectionLimits extends LingeringLimits {
  maxHeaderBytes: number;
  /** Header fields of a request (INFERMESH_HTTP_MAX_HEADERS); beyond it 431. */
  maxHeaders: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
}

/** A door's server, how to stop following its TLS files, and the lingering closes of its connections. */
export interface HttpDoorServer {
  server: http.Server;
  stopTls(): void;
  /** Closes the connections the door gives up on; its stop() ends their lingering as the door drains. */
  lingering: LingeringClose;
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
  const lingering = new LingeringClose(limits);
  const serve: http.RequestListener = (req, res) => {
    if (req.rawHeaders.length / 2 > limits.maxHeaders) return refuse(req, res, 431, `the request has more than ${limits.maxHeaders} header fields`, lingering);
    if (!takenTransferCoding(req.headers['transfer-encoding'])) {
      // RFC 9112, 6.1: a transfer coding the server does not understand is 501.
      return refuse(req, res, 501, 'the body has a Transfer-Encoding other than chunked: this server takes bodies chunked or with a Content-Length, uncoded', lingering);
    }
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
  // node:http closes a connection after an answer that says Connection: close (the door's refusals,
  // its last request, a client's own) with destroySoon: destroyed once the answer is written, with
  // what its client still sends unread. Each of the door's connections lingers instead.
  server.on(tls ? 'secureConnection' : 'connection', (socket: net.Socket) => {
    socket.destroySoon = () => lingering.closeAfterAnswer(socket);
  });
  // node:http answers Expect: 100-continue with 100 Continue itself, before the handler has seen
  // the request (its path, its token), unless the server takes 'checkContinue': such a request
  // then comes through the same handler as any other, which refuses it before its client sends
  // the body, or calls continueBody when it reads it.
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    awaitingContinue.add(res);
    serve(req, res);
  });
  // Any other expectation is one no door meets (RFC 9110, 10.1.1: 417), answered as node:http's own
  // 417 would be but in the door's JSON, and the body it may send after unread.
  server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) => {
    refuse(req, res, 417, 'the request has an Expect other than 100-continue, which this server does not meet', lingering);
  });
  server.maxConnections = limits.maxConnections;
  // node:http keeps a request's first maxHeadersCount fields and drops the rest unseen (a second
  // Authorization, a Content-Encoding): one more than the limit is kept, so a request past it is
  // seen to be, and refused.
  server.maxHeadersCount = limits.maxHeaders + 1;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => answerClientError(err, socket, lingering));
  return { server, stopTls, lingering };
}

/** Answers to requests whose client waits for 100 Continue before it sends its body, until it is sent. */
const awaitingContinue = new WeakSet<http.ServerResponse>();

/**
 * Tells the client of `res` to send its body, if it waits to be told (Expect: 100-continue): a
 * handler calls it once it has decided to read the body; a request refused without it is refused
 * before its body is sent. Does nothing for any other request, or a second time.
 */
export function continueBody(res: http.ServerResponse): void {
  if (awaitingContinue.delete(res)) res.writeContinue();
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

/** Answers a request the door does not hand to its handler, and closes its connection after: its body is not read. */
function refuse(req: http.IncomingMessage, res: http.ServerResponse, status: number, message: string, lingering: LingeringClose): void {
  const body = errorBody(message);
  res.shouldKeepAlive = false;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
  res.once('finish', () => lingering.close(req.socket));
}
