// A service's gRPC port on lib/h2: one hot unary method read whole and handed to the service,
// every other call piped as it is (flow control included) to the service's grpc-js server on a
// Unix socket only the service's user may reach (lib/grpc/server.ts listenBehindDoor), where its
// typed handlers live. The router and the pods each have one. A compressed request to the hot
// method is decompressed here, so the service has one path for it whatever the client's encoding. A request read whole is admitted before it is read: the 5-octet
// gRPC prefix says how large its message is, and a message that does not fit the door's request
// budgets (its connection's and the door's, limits.ts) is refused RESOURCE_EXHAUSTED at once
// instead of buffered; one that fits is read into one buffer of its size, the client's windows
// reopened as it is copied there.
import zlib from 'node:zlib';
import type { DoorBudgets } from './budget';
import { H2_NO_ERROR, headerValue, type H2Stream, type Header } from './connection';
import { cutShort, deadlineOf, pipeCall, requestsFull, respondStatus, statusHeaders, timeoutProblem, unaryFrame } from './grpc';
import type { H2Limits } from './limits';
import { H2Server, type CallGate, type H2ServerTls } from './server';
import { H2Upstream, type H2UpstreamOptions, type UpstreamAddress } from './upstream';

/** gRPC statuses used here (this module does not load grpc-js). */
const INVALID_ARGUMENT = 3;
const PERMISSION_DENIED = 7;
const RESOURCE_EXHAUSTED = 8;
const UNIMPLEMENTED = 12;
const INTERNAL = 13;

/** Encodings the door decompresses (gRPC's names), as a client reads them in grpc-accept-encoding. */
const ACCEPT_ENCODING = 'identity,deflate,gzip';
/**
 * Decompressions running at once; the others wait their turn. Node runs them on libuv's thread
 * pool, 4 threads by default (UV_THREADPOOL_SIZE): more at once would only interleave, each
 * holding its growing output.
 */
const DEFAULT_MAX_CONCURRENT_DECOMPRESSIONS = 4;

/** Options of an H2FrontDoor. */
export interface H2FrontDoorOptions {
  /** The unary method the door reads itself, e.g. /inference.GRPCInferenceService/ModelInfer. */
  path: string;
  /**
   * Called with each request to `path`, read whole (its 5-byte frame header included); `deadline`
   * is the epoch ms its grpc-timeout ends, counted from when its headers arrived (undefined: none).
   * The message is never compressed: one the client compressed (grpc-encoding gzip or deflate)
   * arrives decompressed, without its grpc-encoding header.
   */
  onUnary: (stream: H2Stream, headers: Header[], body: Buffer, deadline: number | undefined) => void;
  /**
   * Largest request message, as sent and once decompressed; a larger one is answered
   * RESOURCE_EXHAUSTED naming `who` (a "zip bomb" is stopped as soon as its output passes it).
   */
  maxMessageBytes: number;
  /** Named in that message ("the router"). */
  who: string;
  /** The service's own grpc-js server, which answers every other call: its Unix socket (listenBehindDoor), or host:port. */
  fallbackAddress: UpstreamAddress;
  /** Client connections are closed (gracefully) after about this long; 0 (the default): never. */
  maxConnectionAgeMs?: number;
  /** Settings of the connection to the fallback server (e.g. `maxStreamId`). */
  fallbackOptions?: H2UpstreamOptions;
  /** Compressed requests decompressed at once (4, libuv's thread pool); the others wait their turn. */
  maxConcurrentDecompressions?: number;
  /** The limits, timeouts and budgets of the door's client connections (limits.ts DEFAULT_H2_LIMITS for those not given). */
  limits?: Partial<H2Limits>;
  /** Serve over TLS (ALPN h2); unset (the default): plain h2c. The fallback on its socket stays plain. */
  tls?: H2ServerTls;
  /**
   * The door-wide budgets, when what the service holds beside the door counts against them too
   * (doorBudgetsOf); unset: the door makes its own from `limits`.
   */
  budgets?: DoorBudgets;
}

const EMPTY = Buffer.alloc(0);

export class H2FrontDoor {
  /** The service's grpc-js server, for every call the door hands over. */
  readonly fallback: H2Upstream;
  private readonly server: H2Server;
  private decompressing = 0;
  /** Compressed requests waiting for a decompression slot. */
  private readonly waiting: (() => boolean)[] = [];

  constructor(private readonly opts: H2FrontDoorOptions) {
    this.fallback = new H2Upstream(opts.fallbackAddress, 1, opts.fallbackOptions);
    this.server = new H2Server((stream, headers, endStream, gate) => this.onStream(stream, headers, endStream, gate), { ...opts.limits, maxConnectionAgeMs: opts.maxConnectionAgeMs, tls: opts.tls, requestBudget: opts.budgets?.requests, responseBudget: opts.budgets?.answers });
  }

  /** Client connections open now. */
  get connections(): number {
    return this.server.connections;
  }

  /** Listens on `host:port` (0: any free port) and resolves to the bound port. */
  listen(host: string, port: number): Promise<number> {
    return this.server.listen(host, port);
  }

  /** Stops taking calls (GOAWAY) and waits up to `budgetMs` for those in flight. */
  async drain(budgetMs: number): Promise<boolean> {
    const clean = await this.server.drain(budgetMs);
    this.fallback.close();
    return clean;
  }

  private onStream(stream: H2Stream, headers: Header[], endStream: boolean, gate: CallGate | undefined): void {
    let path: string | undefined;
    let method: string | undefined;
    let contentType = '';
    let timeout: string | undefined;
    for (const [name, value] of headers) {
      if (name === ':path') path = value;
      else if (name === ':method') method = value;
      else if (name === 'content-type') contentType = value;
      else if (name === 'grpc-timeout') timeout = value;
    }
    // A call the connection's peer may not make (tls.callsOf) is refused on every path, unary or
    // streaming, before anything is read or piped.
    const refused = gate?.(path ?? '');
    if (refused !== undefined) {
      respondStatus(stream, PERMISSION_DENIED, refused);
      if (!endStream) stream.reset(H2_NO_ERROR);
      return;
    }
    // A malformed deadline is refused on every path, before anything is read or piped.
    const badTimeout = timeoutProblem(timeout);
    if (badTimeout !== undefined) {
      respondStatus(stream, INVALID_ARGUMENT, badTimeout);
      if (!endStream) stream.reset(H2_NO_ERROR);
      return;
    }
    if (path !== this.opts.path || method !== 'POST') {
      pipeCall(this.fallback, stream, headers, undefined, endStream);
      return;
    }
    if (!contentType.startsWith('application/grpc')) {
      stream.sendHeaders([[':status', '415']], true);
      return;
    }
    // The deadline counts from when the headers arrived.
    const deadline = deadlineOf(timeout);
    if (endStream) return this.unary(stream, headers, Buffer.alloc(0), deadline);
    this.readMessage(stream, headers, deadline);
  }

  /**
   * Reads a unary request's one message into a buffer of its size, admitted by its prefix before
   * any of it is kept; the client's windows reopen as it is copied (manual flow control), so what
   * the door holds for a stream is that buffer and at most the bytes of one read.
   */
  private readMessage(stream: H2Stream, headers: Header[], deadline: number | undefined): void {
    const max = this.opts.maxMessageBytes;
    // Only a prefix split over DATA frames is gathered here.
    let prefix: Buffer | undefined;
    let prefixBytes = 0;
    let body: Buffer | undefined;
    let filled = 0;
    let done = false;
    const refuse = (code: number, message: string) => {
      done = true;
      respondStatus(stream, code, message);
      // The answer is complete: stop the rest of the upload (RST_STREAM NO_ERROR, as HTTP/2 allows).
      stream.reset(H2_NO_ERROR);
    };
    const finish = () => {
      if (done) return;
      done = true;
      // A message the client's END_STREAM cut short fails as it does on every other call (pipeCall).
      if (body && filled < body.length) return respondStatus(stream, INTERNAL, cutShort(body.length - 5, filled - 5));
      if (!body && prefixBytes > 0) return respondStatus(stream, INTERNAL, cutShort(undefined, prefixBytes));
      // No message at all goes on as it came, for the service to refuse.
      this.unary(stream, headers, body ?? EMPTY, deadline);
    };
    /** Admits a message of `length` bytes by the budgets, or refuses the call. */
    const admit = (length: number): boolean => {
      if (length > max) {
        refuse(RESOURCE_EXHAUSTED, `request is larger than ${this.opts.who}'s limit of ${max} bytes`);
        return false;
      }
      if (!stream.reserveRequestBytes(length)) {
        refuse(RESOURCE_EXHAUSTED, requestsFull(length, this.opts.who, this.server.requestBudget));
        return false;
      }
      return true;
    };
    stream.manualFlowControl = true;
    stream.onData = (chunk, end) => {
      if (done) return;
      let off = 0;
      if (!body && prefixBytes === 0 && chunk.length >= 5) {
        // The usual case, a message in one DATA frame: the chunk is kept as it is, neither a
        // buffer of its size allocated nor its bytes copied (a chunk is the stream's own).
        const length = chunk.readUInt32BE(1);
        if (!admit(length)) return;
        prefixBytes = 5;
        if (chunk.length === 5 + length) {
          body = chunk;
          filled = chunk.length;
          stream.consume(chunk.length);
          if (end) finish();
          return;
        }
        body = Buffer.allocUnsafe(5 + length);
      } else if (!body) {
        prefix ??= Buffer.allocUnsafe(5);
        off = chunk.copy(prefix, prefixBytes, 0, Math.min(chunk.length, 5 - prefixBytes));
        prefixBytes += off;
        if (prefixBytes === 5) {
          if (!admit(prefix.readUInt32BE(1))) return;
          body = Buffer.allocUnsafe(5 + prefix.readUInt32BE(1));
          prefix.copy(body, 0);
          filled = 5;
        }
      }
      if (body && off < chunk.length) {
        if (filled + chunk.length - off > body.length) return refuse(INVALID_ARGUMENT, 'a unary call takes exactly one request message');
        filled += chunk.copy(body, filled, off);
      }
      stream.consume(chunk.length);
      if (end) finish();
    };
    // Trailers from the client end the request too.
    stream.onHeaders = (_trailers, end) => {
      if (end) finish();
    };
  }

  /** A request read whole: handed to the service as it is, or decompressed first. */
  private unary(stream: H2Stream, headers: Header[], body: Buffer, deadline: number | undefined): void {
    // The compressed flag (first octet) is rarely set; a body that is not one message is the
    // service's to refuse.
    if (body.length < 5 || body[0] === 0) return this.opts.onUnary(stream, headers, body, deadline);
    const frame = unaryFrame(body);
    if ('error' in frame) return respondStatus(stream, INVALID_ARGUMENT, frame.error);
    const encoding = headerValue(headers, 'grpc-encoding');
    let decompress: typeof zlib.gunzip;
    if (encoding === 'gzip') decompress = zlib.gunzip;
    else if (encoding === 'deflate') decompress = zlib.inflate;
    else if (encoding === undefined || encoding === 'identity') {
      return respondStatus(stream, INTERNAL, 'compressed message without a grpc-encoding to read it with');
    } else {
      // The gRPC spec's answer to an encoding the server does not have, naming those it does.
      if (stream.closed) return;
      return stream.sendHeaders([...statusHeaders(UNIMPLEMENTED, `grpc-encoding '${encoding}' is not supported (${ACCEPT_ENCODING})`), ['grpc-accept-encoding', ACCEPT_ENCODING]], true);
    }
    // Whether it started: a request whose client went away while it waited is dropped.
    const run = (): boolean => {
      if (stream.closed) return false;
      decompress(frame.message, { maxOutputLength: this.opts.maxMessageBytes }, (err, message) => {
        this.decompressed();
        if (stream.closed) return;
        if (err) {
          if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
            return respondStatus(stream, RESOURCE_EXHAUSTED, `request is larger than ${this.opts.who}'s limit of ${this.opts.maxMessageBytes} bytes once decompressed`);
          }
          return respondStatus(stream, INVALID_ARGUMENT, `request message is not valid ${encoding} data: ${err.message}`);
        }
        // The compressed bytes are done with: from here the budgets hold the message alone. Held
        // both, a request within the message limit could need twice it, and a door at the floor
        // the service starts with (a budget of one message) refused it every time.
        stream.releaseRequestBytes();
        if (!stream.reserveRequestBytes(message.length)) {
          return respondStatus(stream, RESOURCE_EXHAUSTED, requestsFull(message.length, this.opts.who, this.server.requestBudget));
        }
        const plain = Buffer.allocUnsafe(5 + message.length);
        plain[0] = 0;
        plain.writeUInt32BE(message.length, 1);
        message.copy(plain, 5);
        this.opts.onUnary(stream, headers.filter((h) => h[0] !== 'grpc-encoding'), plain, deadline);
      });
      return true;
    };
    if (this.decompressing >= (this.opts.maxConcurrentDecompressions ?? DEFAULT_MAX_CONCURRENT_DECOMPRESSIONS)) this.waiting.push(run);
    else if (run()) this.decompressing++;
  }

  /** A decompression is over: its slot goes to the next waiting request, or is free. */
  private decompressed(): void {
    for (let next = this.waiting.shift(); next; next = this.waiting.shift()) if (next()) return;
    this.decompressing--;
  }
}
