// What a long-lived server stream (a grpc-js ServerWritableStream) may hold for a client that does
// not read: the bytes written and not yet taken by HTTP/2 are bounded (the writer waits beyond
// them, so the source it reads from is held back, not queued in memory), and a client that takes
// none of them for the send timeout loses the stream. One policy for every such stream of the
// registry (PullArtifact, WatchEvents).
//
// A grpc-js write's callback runs once HTTP/2 has taken the message (nghttp2 framed it within the
// client's flow-control window): what is written and not yet called back is what waits for the
// client, in grpc-js's buffer and nghttp2's queue.
//
// The stream of a client that takes nothing is reset (RST_STREAM CANCEL), which the client sees as
// CANCELLED. A status (DEADLINE_EXCEEDED, say) would go in trailers, which HTTP/2 sends after the
// data the client is not taking: grpc-js's own deadline, which ends a call that way, never reaches
// such a client and frees nothing. A reset does not wait behind that data, and it releases what
// grpc-js and nghttp2 queued for the stream at once. grpc-go has no send timeout of its own (a
// write blocked on flow control waits for the call's deadline); Envoy's stream_idle_timeout resets
// a stream whose answer has begun, as this does.
import http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import { MeshError, ErrorCode } from '../errors';
import type { Logger } from '../log';

/** Bounds on what a server stream holds for its client. */
export interface SendLimits {
  /**
   * Bytes written and not yet taken by HTTP/2 past which the writer waits (one message of any size
   * is written when nothing waits): INFERMESH_REGISTRY_MAX_STREAM_BUFFER_BYTES, default 1 MiB.
   */
  maxBufferBytes: number;
  /**
   * How long messages may wait with the client taking none of them before the stream is reset:
   * INFERMESH_REGISTRY_SEND_TIMEOUT_MS, default 60 s (0: for ever).
   */
  sendTimeoutMs: number;
}

/** What the streams of one server hold together: reported, and checked by tests. */
export class SendTally {
  /** Bytes written to the streams and not yet taken by HTTP/2, every stream's together. */
  queuedBytes = 0;
  /** Streams writing now. */
  streams = 0;
  /** Streams reset because their clients took nothing for the send timeout, since start. */
  timedOut = 0;
}

/** The HTTP/2 stream under a grpc-js server call (grpc-js has no public way to reset one). */
function http2StreamOf(call: grpc.ServerWritableStream<unknown, unknown>): http2.Http2Stream | undefined {
  // ServerWritableStreamImpl.call is the intercepting call; each layer's nextCall the one below,
  // down to BaseServerInterceptingCall, which holds the stream.
  let layer: unknown = (call as unknown as { call?: unknown }).call;
  for (let depth = 0; depth < 16 && typeof layer === 'object' && layer !== null; depth++) {
    const stream = (layer as { stream?: unknown }).stream;
    // node:http2 exports no Http2Stream class to test against: a stream has close() and rstCode.
    if (typeof stream === 'object' && stream !== null && 'rstCode' in stream && typeof (stream as http2.Http2Stream).close === 'function') return stream as http2.Http2Stream;
    layer = (layer as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

/** What a StreamSender needs besides its call. */
export interface StreamSenderOptions<Res> {
  limits: SendLimits;
  /** Bytes a message takes on the wire (near enough: the bound is on many of them). */
  sizeOf: (msg: Res) => number;
  tally: SendTally;
  log: Logger;
  /** What the stream is, for the log line of a reset. */
  what: string;
  /** Called once when the stream is over for the sender (its client cancelled, or it was reset). */
  onOver?: (err: MeshError) => void;
}

/**
 * Writes a server stream's messages within SendLimits. write() resolves once the message is
 * written (it may still wait for HTTP/2); it waits first while the bytes waiting would pass the
 * bound, and rejects once the stream is over: its client cancelled or went away, or took nothing
 * for the send timeout (the stream is reset then). close() gives back what it counts; call it
 * when the stream ends, however it ends.
 */
export class StreamSender<Res> {
  private queued = 0;
  private closed = false;
  private over: MeshError | undefined;
  private wake: (() => void) | undefined;
  private lastTaken = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private readonly onCancelled = () => this.end(new MeshError(ErrorCode.Cancelled, 'the client cancelled the stream'));

  private readonly limits: SendLimits;
  private readonly tally: SendTally;

  constructor(private readonly call: grpc.ServerWritableStream<unknown, Res>, private readonly opts: StreamSenderOptions<Res>) {
    this.limits = opts.limits;
    this.tally = opts.tally;
    this.tally.streams++;
    call.on('cancelled', this.onCancelled);
    if (call.cancelled) this.onCancelled();
  }

  async write(msg: Res): Promise<void> {
    const size = this.opts.sizeOf(msg);
    while (!this.over && this.queued > 0 && this.queued + size > this.limits.maxBufferBytes) {
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    if (this.over) throw this.over;
    if (this.queued === 0) this.lastTaken = Date.now();
    this.queued += size;
    this.tally.queuedBytes += size;
    this.watch();
    // grpc-js's own buffer (16 messages) is not the bound: the bytes are.
    this.call.write(msg, () => this.taken(size));
  }

  /**
   * Resolves once the client has been given everything written (HTTP/2 took it), so a stream whose
   * last messages are unread stays under the send timeout until it ends; rejects as write() does.
   */
  async drained(): Promise<void> {
    while (!this.over && this.queued > 0) await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.over) throw this.over;
  }

  /** Ends the stream's count: what it still has waiting is no longer its to report. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.end(new MeshError(ErrorCode.Cancelled, 'the stream is over'));
    this.tally.queuedBytes -= this.queued;
    this.queued = 0;
    this.tally.streams--;
    this.call.off('cancelled', this.onCancelled);
  }

  private taken(size: number): void {
    if (this.closed) return;
    this.queued -= size;
    this.tally.queuedBytes -= size;
    this.lastTaken = Date.now();
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private end(err: MeshError): void {
    if (this.over) return;
    this.over = err;
    clearTimeout(this.timer);
    this.timer = undefined;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
    if (!this.closed) this.opts.onOver?.(err);
  }

  /** Checks, one send timeout after the last message taken, that the client took one since. */
  private watch(): void {
    const ms = this.limits.sendTimeoutMs;
    if (ms <= 0 || this.timer !== undefined || this.over) return;
    const check = () => {
      this.timer = undefined;
      if (this.over || this.queued === 0) return;
      const quiet = Date.now() - this.lastTaken;
      if (quiet < ms) {
        this.timer = setTimeout(check, ms - quiet).unref();
        return;
      }
      this.tally.timedOut++;
      this.opts.log.info('resetting a stream whose client takes none of what waits for it', { stream: this.opts.what, timeoutMs: ms, waitingBytes: this.queued });
      this.end(new MeshError(ErrorCode.Cancelled, `the client took nothing of the stream for ${ms} ms (INFERMESH_REGISTRY_SEND_TIMEOUT_MS)`));
      const stream = http2StreamOf(this.call as grpc.ServerWritableStream<unknown, unknown>);
      if (stream) stream.close(http2.constants.NGHTTP2_CANCEL);
      else this.call.destroy();
    };
    this.timer = setTimeout(check, ms).unref();
  }
}
