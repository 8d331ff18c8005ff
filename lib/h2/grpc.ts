// gRPC over this project's HTTP/2 layer: deadlines (grpc-timeout), unary message framing, statuses
// and answers, the headers a proxy forwards and relays, trace context, and a pipe that carries a
// whole call (any method, streaming included) to an upstream and back.
import { context, propagation, type Context, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { CONNECTION_LOST, H2_CANCEL, H2_INTERNAL_ERROR, H2_NO_ERROR, HeaderListTooLarge, headerValue, type H2Stream, type Header } from './connection';
import type { ByteBudget } from './budget';
import type { H2Upstream } from './upstream';
import { statusMessage } from '../errors';

/** gRPC status codes used here (as numbers: this module does not load grpc-js). */
const UNAVAILABLE = 14;
const INTERNAL = 13;
const DEADLINE_EXCEEDED = 4;
const RESOURCE_EXHAUSTED = 8;
/** The longest delay setTimeout keeps (longer ones fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/** A `grpc-timeout` as gRPC's spec has it: TimeoutValue (1 to 8 ASCII digits) and TimeoutUnit. */
const TIMEOUT = /^(\d{1,8})([HMSmun])$/;

/** The epoch-ms deadline of a `grpc-timeout` header (undefined: none, or malformed: see timeoutProblem). */
export function deadlineOf(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const m = typeof header === 'string' ? TIMEOUT.exec(header) : null;
  return m ? now + Number(m[1]) * TIMEOUT_UNITS[m[2]!]! : undefined;
}

/**
 * Why a `grpc-timeout` header is not one (undefined when absent or well formed): the doors answer
 * it INVALID_ARGUMENT on every path, where a unary call once ran without the deadline its client
 * meant ("1.5S" ran with none) and a piped one got grpc-js's INTERNAL.
 */
export function timeoutProblem(header: string | undefined): string | undefined {
  if (header === undefined || TIMEOUT.test(header)) return undefined;
  const shown = JSON.stringify(header.length > 40 ? `${header.slice(0, 40)}…` : header);
  return `grpc-timeout ${shown} is not a timeout: 1 to 8 digits and a unit (H, M, S, m, u or n)`;
}

/** Calls `fn` at epoch ms `deadline` (setTimeout, with the delay capped so it cannot overflow). */
export function atDeadline(deadline: number, fn: () => void): NodeJS.Timeout {
  return setTimeout(fn, Math.min(MAX_TIMER_MS, Math.max(0, deadline - Date.now())));
}

/**
 * A `grpc-timeout` header for the time left until `deadline` (at least 1 ms), in the finest unit
 * whose value fits the spec's 8 digits (past about 27 hours in ms, a receiver drops the header).
 */
export function timeoutHeader(deadline: number, now = Date.now()): string {
  const ms = Math.max(1, Math.ceil(deadline - now));
  for (const [unit, per] of [['m', 1], ['S', 1_000], ['M', 60_000], ['H', 3_600_000]] as const) {
    const value = Math.ceil(ms / per);
    if (value <= 99_999_999) return `${value}${unit}`;
  }
  return '99999999H';
}

/**
 * A status message as gRPC carries it: bytes outside printable ASCII, and '%', percent-encoded (the
 * spec's rule, which clients decode; encodeURIComponent would also encode ':' and '/', which they
 * leave as they are), after cutting it to MAX_STATUS_MESSAGE_CHARS (lib/errors).
 */
export function grpcMessage(message: string): string {
  message = statusMessage(message);
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let out = '';
  for (const b of Buffer.from(message, 'utf8')) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** A unary request body as gRPC frames it: one message, or why it is not one. */
export type UnaryFrame = { message: Buffer; compressed: boolean } | { error: string };

/** Splits a unary request body into its one message (and whether it is compressed). */
export function unaryFrame(body: Buffer): UnaryFrame {
  if (body.length < 5 || body.length !== 5 + body.readUInt32BE(1)) return { error: 'a unary call takes exactly one request message' };
  return { message: body.subarray(5), compressed: body[0] !== 0 };
}

/**
 * Why an upload that ended inside a message failed: `announced` bytes its prefix announced, of
 * which `came` came (undefined: it ended `came` octets into the 5-octet prefix). Such a call is
 * answered INTERNAL, as grpc-java ("Encountered end-of-stream mid-frame") and grpc-go ("unexpected
 * EOF") answer it; grpc-js drops the piece and ends a stream OK.
 */
export function cutShort(announced: number | undefined, came: number): string {
  return announced === undefined
    ? `the last request message was cut short: the stream ended ${came} octets into its 5-octet prefix`
    : `the last request message was cut short: its prefix announced ${announced} bytes and the stream ended after ${came}`;
}

/**
 * Where a call's upload stands in gRPC's framing (a 5-octet prefix, then the message it announces),
 * fed each chunk as it passes, so that a message the client's END_STREAM cuts short is seen. Holds
 * a few numbers, whatever the upload.
 */
export class MessageFraming {
  /** Octets of the current message's prefix seen (0 between messages). */
  private prefixSeen = 0;
  /** The current message's length, as far as its prefix has come, then as it announced. */
  private length = 0;
  /** Octets of the current message still to come, once its prefix is complete. */
  private left = 0;

  /** Takes the next chunk of the upload. */
  feed(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.left > 0) {
        const n = Math.min(this.left, chunk.length - off);
        this.left -= n;
        off += n;
        continue;
      }
      // The compressed flag (octet 0) says nothing of the length; octets 1-4 are its big-endian value.
      if (this.prefixSeen === 0) this.length = 0;
      else this.length = this.length * 256 + chunk[off]!;
      off++;
      if (++this.prefixSeen === 5) {
        this.left = this.length;
        this.prefixSeen = 0;
      }
    }
  }

  /** Why the upload so far ends inside a message (cutShort); undefined when it ends between two. */
  cutShort(): string | undefined {
    if (this.prefixSeen > 0) return cutShort(undefined, this.prefixSeen);
    if (this.left > 0) return cutShort(this.length, this.length - this.left);
    return undefined;
  }
}

/** Why a request of `bytes` was refused: the request bytes `who` holds (`budget`, door-wide) leave no room for it. */
export function requestsFull(bytes: number, who: string, budget: ByteBudget): string {
  return `request of ${bytes} bytes does not fit ${who}'s buffers for requests now (${budget.used} of ${budget.max} bytes held in all)`;
}

/** Why an answer of `bytes` was refused: answers wait for clients that do not read them. */
export function unreadAnswers(bytes: number): string {
  return `answer of ${bytes} bytes refused: too many answers wait for clients to read them`;
}

function noop(): void {}

const OK_HEADERS: Header[] = [[':status', '200'], ['content-type', 'application/grpc']];
const OK_TRAILERS: Header[] = [['grpc-status', '0']];

/**
 * Answers a unary call with `message` (serialized) and status OK, unless it exceeds
 * `maxMessageBytes`, or the answers waiting for clients that have not read them fill the door's
 * budgets (its connection's, or the door's): then RESOURCE_EXHAUSTED, and the answer is dropped
 * rather than held for a client that may never read it.
 */
export function respondMessage(stream: H2Stream, message: Buffer, maxMessageBytes: number): void {
  if (stream.closed || stream.headersSent) return;
  if (message.length > maxMessageBytes) {
    respondStatus(stream, RESOURCE_EXHAUSTED, `response of ${message.length} bytes is larger than the limit of ${maxMessageBytes} bytes`);
    return;
  }
  if (!stream.mayQueue(message.length + 5)) {
    respondStatus(stream, RESOURCE_EXHAUSTED, unreadAnswers(message.length));
    return;
  }
  const prefix = Buffer.allocUnsafe(5);
  prefix[0] = 0;
  prefix.writeUInt32BE(message.length, 1);
  stream.sendHeaders(OK_HEADERS);
  stream.write(prefix);
  stream.end(OK_TRAILERS, message);
}

/** Request headers that are not forwarded as they are (pseudo-headers are rebuilt, the deadline recomputed). */
const HOP_HEADERS = new Set(['content-type', 'te', 'user-agent', 'content-length', 'grpc-timeout', 'connection', 'host']);

/** Metadata of a request to forward: its own headers minus pseudo and hop-by-hop headers. */
export function forwardedHeaders(headers: readonly Header[]): Header[] {
  const out: Header[] = [];
  for (const h of headers) if (h[0].charCodeAt(0) !== 58 /* ':' */ && !HOP_HEADERS.has(h[0])) out.push(h);
  return out;
}

/** Response headers or trailers to relay: the upstream's minus pseudo-headers other than :status. */
export function relayedHeaders(headers: readonly Header[]): Header[] {
  return headers.filter((h) => h[0].charCodeAt(0) !== 58 || h[0] === ':status');
}

/** The headers of a gRPC status answered without a message ("trailers-only"). */
export function statusHeaders(code: number, message: string): Header[] {
  const h: Header[] = [[':status', '200'], ['content-type', 'application/grpc'], ['grpc-status', String(code)]];
  if (message) h.push(['grpc-message', grpcMessage(message)]);
  return h;
}

/** Answers a stream with a status and no message; resets it when its headers already went. */
export function respondStatus(stream: H2Stream, code: number, message: string): void {
  if (stream.closed) return;
  if (stream.headersSent) stream.reset(H2_INTERNAL_ERROR);
  else stream.sendHeaders(statusHeaders(code, message), true);
}

/** The gRPC status a response's trailers (or trailers-only headers) carry, with its message decoded. */
export function statusOf(headers: readonly Header[] | undefined): { code: number; message: string } | undefined {
  const code = headers && headerValue(headers, 'grpc-status');
  if (code === undefined) return undefined;
  const raw = headerValue(headers!, 'grpc-message') ?? '';
  let message = raw;
  try {
    message = decodeURIComponent(raw);
  } catch {
    // Not percent-encoded as the spec says: kept as it came.
  }
  return { code: Number(code), message };
}

const listGetter: TextMapGetter<readonly Header[]> = {
  keys: (h) => h.map((x) => x[0]),
  get: (h, k) => headerValue(h, k),
};

/** Sets a header in a list, replacing one of the same name (a trace context the client sent). */
export const listSetter: TextMapSetter<Header[]> = {
  set: (h, k, v) => {
    const i = h.findIndex((x) => x[0] === k);
    if (i >= 0) h[i] = [k, v];
    else h.push([k, v]);
  },
};

/** The trace context a request's headers carry (W3C traceparent), for the span a front door makes. */
export function traceContextOfList(headers: readonly Header[]): Context {
  return propagation.extract(context.active(), headers, listGetter);
}

/**
 * Carries a call both ways between a client's `stream` and `upstream`, flow control included: the
 * client's stream window reopens only as its data goes out upstream, and the upstream's as its
 * answer goes out to the client. Connection windows are returned as data arrives (lib/h2
 * connection.ts), so a client that stops reading holds back one stream of the shared upstream
 * connection, never the connection. At the call's deadline (grpc-timeout) whatever is left is
 * dropped both ways, so a stalled client holds nothing past it. `body`, when given, is the request
 * already read whole (the stream's own data is then not read); once it is handed over the call
 * may have run, so a failure is INTERNAL, not UNAVAILABLE (which callers read as "did not run" and
 * retry elsewhere). `endStream`: the client's headers ended its side (no body follows).
 */
export function pipeCall(upstream: H2Upstream, stream: H2Stream, headers: readonly Header[], body?: Buffer, endStream = false): void {
  const out = headers.map((h): Header => (h[0] === ':authority' ? [':authority', upstream.authority] : h));
  // Pseudo-headers come before regular ones (RFC 9113 §8.3): one the client left out goes first.
  if (headerValue(out, ':authority') === undefined) out.unshift([':authority', upstream.authority]);
  let up: H2Stream;
  try {
    up = upstream.request(out, endStream && !body);
  } catch (err) {
    // Metadata longer than the upstream takes is the call's own (RESOURCE_EXHAUSTED, as on the
    // router's ModelInfer path); anything else is the upstream's, to try again.
    if (err instanceof HeaderListTooLarge) respondStatus(stream, RESOURCE_EXHAUSTED, `request metadata: ${err.message}`);
    else respondStatus(stream, UNAVAILABLE, `internal: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  const failed = body ? INTERNAL : UNAVAILABLE;
  up.manualFlowControl = true;
  // Bytes passed on but not yet sent, whose window each side gets back once they are.
  let toClient = 0;
  let toUpstream = 0;
  // Upstream → client.
  up.onHeaders = (h, end) => {
    if (!stream.headersSent) stream.sendHeaders(relayedHeaders(h), end);
    else stream.end(relayedHeaders(h));
  };
  up.onData = (chunk, end) => {
    if (stream.write(chunk)) up.consume(chunk.length);
    else toClient += chunk.length;
    // An answer that ends with DATA rather than trailers (not gRPC, or an empty END_STREAM frame).
    if (end) stream.end();
  };
  stream.onDrain = () => {
    up.consume(toClient);
    toClient = 0;
  };
  up.onClose = (code) => {
    // What was queued towards the upstream is gone with it: the client gets its window back.
    if (toUpstream > 0 && !stream.closed) stream.consume(toUpstream);
    toUpstream = 0;
    if (code === undefined || stream.closed) return;
    // A complete answer, then RST_STREAM(NO_ERROR) to stop the rest of the upload (RFC 9113 §8.1):
    // what is queued for the client still goes out.
    if (code === H2_NO_ERROR && up.remoteEnded) {
      // Once it has, the client's upload is stopped the same way.
      const stopUpload = () => {
        if (!stream.closed && !stream.remoteEnded) stream.reset(H2_NO_ERROR);
      };
      if (stream.localEnded) stopUpload();
      else stream.onLocalEnd = stopUpload;
      return;
    }
    if (!stream.headersSent) respondStatus(stream, failed, code === CONNECTION_LOST ? 'internal: connection lost' : `internal: stream reset (HTTP/2 code ${code})`);
    else stream.reset(code === CONNECTION_LOST ? H2_INTERNAL_ERROR : code);
  };
  // The deadline: the upstream ends the call by then too, but a client that stopped reading
  // would keep what is queued for it (and its stream) for as long as it keeps the connection.
  const deadline = deadlineOf(headerValue(headers, 'grpc-timeout'));
  const timer = deadline === undefined ? undefined : atDeadline(deadline, () => {
    if (!stream.headersSent) respondStatus(stream, DEADLINE_EXCEEDED, 'deadline exceeded');
    else stream.reset(H2_CANCEL);
    up.reset(H2_CANCEL);
  });
  stream.onClose = (code) => {
    clearTimeout(timer);
    if (code !== undefined) up.reset(H2_CANCEL);
  };
  // A message the client's END_STREAM cut short fails the call at once, as grpc-java fails it:
  // the upstream is reset and the client answered INTERNAL after what it has been sent.
  const framing = new MessageFraming();
  const endUpload = (trailers?: Header[]): void => {
    const cut = framing.cutShort();
    if (cut === undefined) return up.end(trailers);
    up.onClose = noop;
    up.reset(H2_CANCEL);
    if (!stream.headersSent) respondStatus(stream, INTERNAL, cut);
    else stream.end([['grpc-status', String(INTERNAL)], ['grpc-message', grpcMessage(cut)]]);
  };
  if (body) {
    up.write(body);
    up.end();
    return;
  }
  if (endStream) return;
  // Client → upstream.
  stream.manualFlowControl = true;
  stream.onData = (chunk, end) => {
    if (up.closed) {
      // The upstream has answered and stopped reading: the rest of the upload is dropped.
      stream.consume(chunk.length);
      return;
    }
    framing.feed(chunk);
    if (up.write(chunk)) stream.consume(chunk.length);
    else toUpstream += chunk.length;
    if (end) endUpload();
  };
  up.onDrain = () => {
    stream.consume(toUpstream);
    toUpstream = 0;
  };
  stream.onHeaders = (h, end) => {
    // Client trailers (rare in gRPC): passed on.
    if (end && !up.closed) endUpload(h.filter((x) => x[0].charCodeAt(0) !== 58));
  };
}
