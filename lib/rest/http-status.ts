// gRPC status codes as HTTP statuses for the Open Inference Protocol's REST form: the mapping
// grpc-gateway uses (google.rpc.Code's documented HTTP equivalents), which agrees with Triton's
// HTTP server where Triton has the code (400 for a bad request, 404 for an unknown model, 503 when
// unavailable, 500 for an internal error). An error's body is the spec's {"error": "..."}.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { LingeringClose } from './lingering-close';

/** HTTP status of each gRPC code (by number); unknown codes are 500. */
const HTTP_OF_GRPC: readonly number[] = [
  200, // OK
  499, // CANCELLED: the client closed the request
  500, // UNKNOWN
  400, // INVALID_ARGUMENT
  504, // DEADLINE_EXCEEDED
  404, // NOT_FOUND
  409, // ALREADY_EXISTS
  403, // PERMISSION_DENIED
  429, // RESOURCE_EXHAUSTED
  400, // FAILED_PRECONDITION
  409, // ABORTED
  400, // OUT_OF_RANGE
  501, // UNIMPLEMENTED
  500, // INTERNAL
  503, // UNAVAILABLE
  500, // DATA_LOSS
  401, // UNAUTHENTICATED
];

/** The HTTP status that stands for gRPC status `code`. */
export function httpStatusOf(code: number): number {
  return HTTP_OF_GRPC[code] ?? 500;
}

/** The spec's error body. */
export function errorBody(message: string): string {
  return JSON.stringify({ error: message });
}

/** Connections whose client error is being answered: the parser says it again for every chunk that follows. */
const answering = new WeakSet<Duplex>();

/** The answer a node:http server is writing on `socket`, if any (answers queued behind it are not its). */
type InFlight = { req?: { complete?: boolean }; headersSent?: boolean; once(event: string, listener: () => void): unknown; off(event: string, listener: () => void): unknown };
const inFlightOf = (socket: Duplex): InFlight | undefined => (socket as { _httpMessage?: InFlight | null })._httpMessage ?? undefined;

/**
 * A node:http server's answer to a request it cannot parse or that came too slowly ('clientError'):
 * 431 for headers over the limit, 408 when they are late, 400 otherwise, and the connection closed
 * (`lingering`). One home for every HTTP door (the REST door, the console).
 *
 * HTTP/1.1 pairs answers with requests by their order, so the error waits for the answers to the
 * requests before it on the connection (pipelined, received whole, perhaps still being computed):
 * written ahead of them, it would be taken for the first one's answer, and theirs never sent.
 * Nothing more is read meanwhile. As node:http's own answer, none is written into the answer to
 * the broken request itself once that is under way: the connection is destroyed instead.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, lingering: LingeringClose): void {
  if (answering.has(socket)) return;
  answering.add(socket);
  socket.pause();
  afterEarlierAnswers(socket, () => {
    const underWay = inFlightOf(socket)?.headersSent === true;
    if (!socket.writable || underWay) return void socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const body = errorBody(status === 431 ? 'request headers too large' : status === 408 ? 'request timed out' : 'malformed HTTP request');
    lingering.close(socket, `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
}

/**
 * Calls `then` once `socket` has no answer in flight to a request received whole: node:http hands
 * the connection to the next queued answer as each one finishes (before listeners added later
 * run), so each is waited for in turn. Nothing is called if the connection closes first.
 */
function afterEarlierAnswers(socket: Duplex, then: () => void): void {
  if (socket.destroyed) return;
  const current = inFlightOf(socket);
  if (current?.req?.complete !== true) return then();
  const next = () => {
    current.off('finish', next);
    current.off('close', next);
    afterEarlierAnswers(socket, then);
  };
  current.once('finish', next);
  current.once('close', next);
}
