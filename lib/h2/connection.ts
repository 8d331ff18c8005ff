// HTTP/2 (RFC 9113) framing over a socket, in JavaScript, for the router's data path. node:http2
// costs several times more CPU per stream than a proxy needs (each stream is a Duplex with its own
// events and a round trip through nghttp2's C++ callbacks); here a stream is a small object with
// three callbacks, frames of one tick go out in one write, and a proxy hands DATA payloads from one
// connection to another without copying them.
//
// What it does: the connection preface, SETTINGS (and their ACK), PING (answered; sent for
// keepalive), flow control both ways (connection and stream windows, sending queued until the
// peer opens its window), HEADERS with CONTINUATION, trailers, RST_STREAM, GOAWAY (graceful close,
// and refusing streams the peer did not process), limits on frame and header sizes and on
// concurrent streams. What it leaves out: server push (refused), priorities (ignored), TLS (the
// mesh speaks h2c inside the cluster).
import type net from 'node:net';
import { RequestHeaderCheck } from './header-rules';
import { encodeHeaders, HpackDecoder, HpackError, type Header } from './hpack';

export type { Header } from './hpack';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PUSH_PROMISE = 0x5;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;

const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;
const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

/** HTTP/2 error codes (RFC 9113 §7). */
export const H2_NO_ERROR = 0x0;
export const H2_PROTOCOL_ERROR = 0x1;
export const H2_INTERNAL_ERROR = 0x2;
export const H2_FLOW_CONTROL_ERROR = 0x3;
export const H2_STREAM_CLOSED = 0x5;
export const H2_FRAME_SIZE_ERROR = 0x6;
export const H2_REFUSED_STREAM = 0x7;
export const H2_CANCEL = 0x8;
export const H2_COMPRESSION_ERROR = 0x9;
/** Not an HTTP/2 code: the stream ended because its connection did. */
export const CONNECTION_LOST = -1;

const DEFAULT_WINDOW = 65_535;
const MAX_WINDOW = 2 ** 31 - 1;
/** The largest stream id (31 bits). */
const MAX_STREAM_ID = 2 ** 31 - 1;
const DEFAULT_MAX_FRAME = 16_384;
/** Output of one tick up to this size is copied into one reused buffer before it is written. */
const OUT_BUFFER_BYTES = 64 * 1024;

/** Settings of a connection; every field has a default. */
export interface H2ConnectionOptions {
  /** The stream window this side advertises (1 MiB). */
  streamWindowBytes?: number;
  /** The connection window this side opens at start (16 MiB). */
  connectionWindowBytes?: number;
  /** Streams the peer may have open at once towards this side (server: 10,000). */
  maxConcurrentStreams?: number;
  /** Largest decoded header list accepted (64 KiB). */
  maxHeaderListBytes?: number;
  /** Ping the peer this often and end the connection when it does not answer (30 s; 0: never). */
  keepaliveIntervalMs?: number;
  /** How long a ping may go unanswered (10 s). */
  keepaliveTimeoutMs?: number;
  /** Close the connection (GOAWAY) after this long without a byte either way (0: never, the default). */
  idleTimeoutMs?: number;
  /**
   * The highest stream id this side opens (client): 2^31−1 by default, the protocol's limit. Once
   * it has opened that stream the connection closes gracefully (GOAWAY, then the end when its
   * streams have), and its owner opens a new one (RFC 9113 §5.1.1). A client opens about
   * (maxStreamId + 1) / 2 streams on one connection.
   */
  maxStreamId?: number;
  /**
   * The socket is read by its owner (net's `onread`), who hands the bytes to receive() in a buffer
   * it reuses: the connection copies what it keeps (DATA payloads, a partial frame).
   */
  externalRead?: boolean;
}

/** Why a stream closed: undefined when both sides ended it cleanly, else an HTTP/2 error code or CONNECTION_LOST. */
export type CloseCode = number | undefined;

/** One HTTP/2 stream. The owner sets the callbacks when it gets the stream, before returning. */
export class H2Stream {
  /** Headers (the first block) and trailers (a later one). */
  onHeaders: (headers: Header[], endStream: boolean) => void = noop;
  onData: (chunk: Buffer, endStream: boolean) => void = noop;
  /** Called once when the stream is over: cleanly, reset by either side, or with its connection. */
  onClose: (code: CloseCode) => void = noop;
  /** Called when data queued by write() has all been sent (see write()). */
  onDrain: () => void = noop;
  /** Called when this side's end of the stream (END_STREAM) has been sent. */
  onLocalEnd: () => void = noop;
  /**
   * When false (the default) received data is counted as consumed as soon as it is delivered, and
   * the peer's stream window reopened; when true the owner calls consume() once it has passed data
   * on. The connection window is returned as data arrives either way (as nghttp2 does), so a stream
   * whose reader stalls holds back its own window only, never its connection's: the most a stalled
   * stream leaves with its owner is one stream window (`streamWindowBytes`).
   */
  manualFlowControl = false;

  headersSent = false;
  headersReceived = false;
  closed = false;
  /** This side's END_STREAM has been sent. */
  localEnded = false;
  /** The peer's END_STREAM has arrived. */
  remoteEnded = false;
  /** @internal */ sendWindow: number;
  /** @internal */ recvWindow: number;
  /** @internal */ recvUnacked = 0;
  /** @internal */ queue: Buffer[] = [];
  /** @internal */ queuedBytes = 0;
  /** @internal End the stream once the queue is sent: true (empty DATA) or trailers. */
  endAfterQueue: readonly Header[] | true | undefined;
  /** @internal Bytes a request's content-length says are still to come (-1: it declared none). */
  contentLength = -1;

  constructor(readonly id: number, private readonly conn: H2Connection, sendWindow: number, recvWindow: number) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** Sends the response (or request) headers; `endStream`: no body or trailers follow. */
  sendHeaders(headers: readonly Header[], endStream = false): void {
    if (this.closed || this.headersSent) return;
    this.headersSent = true;
    this.conn.writeHeaders(this, headers, endStream);
  }

  /**
   * Queues `chunk` as DATA, sent as the peer's windows allow. Returns true when all of it went out
   * now; false when some waits for the peer's window, and onDrain is called once it has gone.
   */
  write(chunk: Buffer): boolean {
    if (this.closed || this.localEnded || this.endAfterQueue) return false;
    if (chunk.length > 0) {
      this.queue.push(chunk);
      this.queuedBytes += chunk.length;
    }
    this.conn.flushStream(this);
    return this.queuedBytes === 0;
  }

  /**
   * Ends this side of the stream after what is queued: with trailers, or else with the END_STREAM
   * flag on the last DATA frame (`last`, when given, is sent as that last data).
   */
  end(trailers?: readonly Header[], last?: Buffer): void {
    if (this.closed || this.localEnded || this.endAfterQueue) return;
    if (last && last.length > 0) {
      this.queue.push(last);
      this.queuedBytes += last.length;
    }
    this.endAfterQueue = trailers ?? true;
    this.conn.flushStream(this);
  }

  /** Resets the stream (RST_STREAM `code`, CANCEL by default). */
  reset(code = H2_CANCEL): void {
    if (this.closed) return;
    this.conn.resetStream(this, code);
  }

  /** Reopens the peer's stream window by `bytes` it sent that the owner has passed on (manualFlowControl). */
  consume(bytes: number): void {
    this.conn.consumed(this, bytes);
  }
}

function noop(): void {}

/**
 * One HTTP/2 connection over `socket`, as the server (`onStream` gets each stream a client opens)
 * or the client (request() opens streams).
 */
export class H2Connection {
  /** Called once when the connection is over (the socket closed). */
  onClose: () => void = noop;
  /** Called when the peer sends GOAWAY (a client should open new streams elsewhere). */
  onGoaway: (code: number) => void = noop;

  closed = false;
  /** No new streams: GOAWAY sent or received. */
  goingAway = false;
  /** Requests refused as malformed (RFC 9113 §8.1.1), with RST_STREAM PROTOCOL_ERROR. */
  malformedRequests = 0;
  /** RST_STREAM frames this side has sent. */
  resetsSent = 0;

  private readonly streams = new Map<number, H2Stream>();
  private readonly decoder: HpackDecoder;
  /** Checks requests (server): a malformed one is refused before any owner sees it. */
  private readonly requestCheck = new RequestHeaderCheck();
  private readonly streamWindow: number;
  private readonly connectionWindow: number;
  private readonly maxStreams: number;
  private readonly maxHeaderList: number;

  private pending: Buffer | undefined;
  private prefaceLeft: number;
  private settingsReceived = false;
  /** The header block being received (HEADERS then CONTINUATION). */
  private headerBlock: { streamId: number; endStream: boolean; fragments: Buffer[]; bytes: number } | undefined;

  private peerStreamWindow = DEFAULT_WINDOW;
  private peerMaxFrame = DEFAULT_MAX_FRAME;
  private peerMaxStreams = Number.POSITIVE_INFINITY;
  private sendWindow = DEFAULT_WINDOW;
  private recvWindow = DEFAULT_WINDOW;
  private recvUnacked = 0;
  /** Streams with data waiting for the connection window. */
  private readonly blocked = new Set<H2Stream>();

  private nextStreamId: number;
  private readonly maxStreamId: number;
  /** Highest stream id the peer opened. */
  private lastPeerStreamId = 0;
  private outBufs: Buffer[] = [];
  private outBytes = 0;
  private outBuffer: Buffer | undefined;
  private ending = false;
  private readonly pings: { payload: Buffer; done: (err?: Error) => void; timer: NodeJS.Timeout }[] = [];
  private keepalive: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly role: 'server' | 'client',
    private readonly onStream: (stream: H2Stream, headers: Header[], endStream: boolean) => void = noop,
    private readonly opts: H2ConnectionOptions = {},
  ) {
    this.streamWindow = opts.streamWindowBytes ?? 1 << 20;
    this.connectionWindow = opts.connectionWindowBytes ?? 16 << 20;
    this.maxStreams = opts.maxConcurrentStreams ?? (role === 'server' ? 10_000 : 1_000);
    this.maxHeaderList = opts.maxHeaderListBytes ?? 65_536;
    this.decoder = new HpackDecoder(4096, this.maxHeaderList);
    this.nextStreamId = role === 'client' ? 1 : 2;
    this.maxStreamId = Math.min(opts.maxStreamId ?? MAX_STREAM_ID, MAX_STREAM_ID);
    this.prefaceLeft = role === 'server' ? PREFACE.length : 0;
    socket.setNoDelay(true);
    if (!opts.externalRead) socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => this.lost());
    if (opts.idleTimeoutMs) socket.setTimeout(opts.idleTimeoutMs, () => this.close());

    if (role === 'client') this.out(PREFACE);
    const settings: [number, number][] = [
      [SETTINGS_MAX_CONCURRENT_STREAMS, this.maxStreams],
      [SETTINGS_INITIAL_WINDOW_SIZE, this.streamWindow],
      [SETTINGS_MAX_HEADER_LIST_SIZE, this.maxHeaderList],
    ];
    if (role === 'client') settings.push([SETTINGS_ENABLE_PUSH, 0]);
    const payload = Buffer.alloc(settings.length * 6);
    settings.forEach(([id, value], i) => {
      payload.writeUInt16BE(id, i * 6);
      payload.writeUInt32BE(value, i * 6 + 2);
    });
    this.frame(SETTINGS, 0, 0, payload);
    if (this.connectionWindow > DEFAULT_WINDOW) {
      this.windowUpdate(0, this.connectionWindow - DEFAULT_WINDOW);
      this.recvWindow = this.connectionWindow;
    }
    const interval = opts.keepaliveIntervalMs ?? 30_000;
    if (interval > 0) {
      this.keepalive = setInterval(() => this.ping(opts.keepaliveTimeoutMs ?? 10_000).catch(() => this.destroy()), interval);
      this.keepalive.unref();
    }
  }

  /** Streams open now. */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Whether request() can open a stream now. */
  get canRequest(): boolean {
    return !this.closed && !this.goingAway && this.streams.size < this.peerMaxStreams && this.nextStreamId <= this.maxStreamId;
  }

  /** Opens a stream and sends its headers (client). Throws when the connection cannot take one. */
  request(headers: readonly Header[], endStream = false): H2Stream {
    if (this.role !== 'client') throw new Error('only a client opens streams');
    if (!this.canRequest) throw new Error(this.closed ? 'connection closed' : this.goingAway ? 'connection going away' : 'connection at its stream limit');
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const stream = new H2Stream(id, this, this.peerStreamWindow, this.streamWindow);
    this.streams.set(id, stream);
    stream.sendHeaders(headers, endStream);
    // The last stream id is used: no new streams here; the connection ends once this one has.
    if (this.nextStreamId > this.maxStreamId) this.close();
    return stream;
  }

  /** Sends PING and resolves when it is answered; rejects after `timeoutMs` or when the connection ends. */
  ping(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('connection closed'));
      const payload = Buffer.allocUnsafe(8);
      payload.writeDoubleBE(Math.random());
      const entry = {
        payload,
        done: (err?: Error) => (err ? reject(err) : resolve()),
        timer: setTimeout(() => {
          this.pings.splice(this.pings.indexOf(entry), 1);
          reject(new Error(`ping not answered within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      entry.timer.unref();
      this.pings.push(entry);
      this.frame(PING, 0, 0, payload);
    });
  }

  /**
   * Graceful close: GOAWAY (NO_ERROR), no new streams, and the connection ends once its open
   * streams have. The peer may retry elsewhere any stream it opened after the GOAWAY.
   */
  close(): void {
    if (this.closed) return;
    if (!this.goingAway) {
      this.goingAway = true;
      this.goaway(H2_NO_ERROR);
    }
    if (this.streams.size === 0) this.endSocket();
  }

  /** Ends the connection now; open streams close with CONNECTION_LOST. */
  destroy(): void {
    if (this.closed) return;
    this.socket.destroy();
    this.lost();
  }

  // ---- sending ----

  private out(buf: Buffer): void {
    if (this.closed) return;
    if (this.outBufs.length === 0) process.nextTick(this.flushOut);
    this.outBufs.push(buf);
    this.outBytes += buf.length;
  }

  /**
   * Writes what this tick produced. Up to OUT_BUFFER_BYTES it is copied into one buffer that is
   * used again as long as each write completes at once (the usual case on a socket that keeps
   * up): fresh buffers per write, freed by the GC, were most of this layer's CPU. More than that
   * goes out as a writev of the frames as they are.
   */
  private readonly flushOut = (): void => {
    const bufs = this.outBufs;
    if (bufs.length === 0 || this.closed) return;
    this.outBufs = [];
    const bytes = this.outBytes;
    this.outBytes = 0;
    if (bytes <= OUT_BUFFER_BYTES) {
      const target = (this.outBuffer ??= Buffer.allocUnsafeSlow(OUT_BUFFER_BYTES));
      let off = 0;
      for (const b of bufs) off += b.copy(target, off);
      this.socket.write(target.subarray(0, bytes));
      // Still queued in the socket: that buffer is not ours again until written; use a new one.
      if (this.socket.writableLength > 0) this.outBuffer = undefined;
    } else {
      this.socket.cork();
      for (const b of bufs) this.socket.write(b);
      this.socket.uncork();
    }
  };

  private frame(type: number, flags: number, streamId: number, payload?: Buffer): void {
    const header = Buffer.allocUnsafe(9);
    const length = payload ? payload.length : 0;
    header.writeUIntBE(length, 0, 3);
    header[3] = type;
    header[4] = flags;
    header.writeUInt32BE(streamId, 5);
    this.out(header);
    if (length > 0) this.out(payload!);
  }

  private windowUpdate(streamId: number, increment: number): void {
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(increment, 0);
    this.frame(WINDOW_UPDATE, 0, streamId, p);
  }

  private goaway(code: number): void {
    const p = Buffer.allocUnsafe(8);
    p.writeUInt32BE(this.lastPeerStreamId, 0);
    p.writeUInt32BE(code, 4);
    this.frame(GOAWAY, 0, 0, p);
  }

  /** @internal */
  writeHeaders(stream: H2Stream, headers: readonly Header[], endStream: boolean): void {
    const frame = encodeHeaders(headers, 9);
    const length = frame.length - 9;
    let flags = endStream ? FLAG_END_STREAM : 0;
    if (length <= this.peerMaxFrame) {
      frame.writeUIntBE(length, 0, 3);
      frame[3] = HEADERS;
      frame[4] = flags | FLAG_END_HEADERS;
      frame.writeUInt32BE(stream.id, 5);
      this.out(frame);
    } else {
      const block = frame.subarray(9);
      let off = 0;
      let type = HEADERS;
      while (off < block.length) {
        const n = Math.min(this.peerMaxFrame, block.length - off);
        const last = off + n === block.length;
        this.frame(type, flags | (last ? FLAG_END_HEADERS : 0), stream.id, block.subarray(off, off + n));
        off += n;
        type = CONTINUATION;
        flags = 0;
      }
    }
    if (endStream) this.localEnd(stream);
  }

  /** @internal Sends what the windows allow of `stream`'s queue, then its end when all is sent. */
  flushStream(stream: H2Stream): void {
    if (stream.closed) return;
    while (stream.queuedBytes > 0) {
      const allowed = Math.min(stream.sendWindow, this.sendWindow, this.peerMaxFrame);
      if (allowed <= 0) {
        if (this.sendWindow <= 0) this.blocked.add(stream);
        return;
      }
      let chunk = stream.queue[0]!;
      if (chunk.length > allowed) {
        stream.queue[0] = chunk.subarray(allowed);
        chunk = chunk.subarray(0, allowed);
      } else stream.queue.shift();
      stream.queuedBytes -= chunk.length;
      stream.sendWindow -= chunk.length;
      this.sendWindow -= chunk.length;
      const last = stream.queuedBytes === 0 && stream.endAfterQueue === true;
      this.frame(DATA, last ? FLAG_END_STREAM : 0, stream.id, chunk);
      if (last) {
        stream.endAfterQueue = undefined;
        this.localEnd(stream);
        stream.onDrain();
        return;
      }
      if (stream.queuedBytes === 0) stream.onDrain();
    }
    const end = stream.endAfterQueue;
    if (end !== undefined && !stream.closed && !stream.localEnded) {
      stream.endAfterQueue = undefined;
      if (end === true) this.frame(DATA, FLAG_END_STREAM, stream.id);
      else {
        stream.headersSent = true;
        this.writeHeaders(stream, end, true);
        return;
      }
      this.localEnd(stream);
    }
  }

  private localEnd(stream: H2Stream): void {
    stream.localEnded = true;
    if (stream.remoteEnded) this.closeStream(stream, undefined);
    else stream.onLocalEnd();
  }

  /** RST_STREAM for a stream the peer opened that never became one (refused, or malformed). */
  private refuse(streamId: number, code: number): void {
    this.resetsSent++;
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(code, 0);
    this.frame(RST_STREAM, 0, streamId, p);
  }

  /** @internal */
  resetStream(stream: H2Stream, code: number): void {
    this.resetsSent++;
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(code, 0);
    this.frame(RST_STREAM, 0, stream.id, p);
    this.closeStream(stream, code);
  }

  /** @internal Reopens `stream`'s window (its connection's was returned when the data arrived). */
  consumed(stream: H2Stream, bytes: number): void {
    if (bytes <= 0 || this.closed || stream.closed || stream.remoteEnded) return;
    stream.recvUnacked += bytes;
    if (stream.recvUnacked >= this.streamWindow / 2) {
      this.windowUpdate(stream.id, stream.recvUnacked);
      stream.recvWindow += stream.recvUnacked;
      stream.recvUnacked = 0;
    }
  }

  private closeStream(stream: H2Stream, code: CloseCode): void {
    if (stream.closed) return;
    stream.closed = true;
    if (stream.queuedBytes > 0) {
      stream.queue = [];
      stream.queuedBytes = 0;
    }
    this.streams.delete(stream.id);
    this.blocked.delete(stream);
    try {
      stream.onClose(code);
    } finally {
      if (this.goingAway && this.streams.size === 0) this.endSocket();
    }
  }

  private endSocket(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    // Let the last frames go out, then end; destroy if the peer never closes its side.
    this.flushOut();
    this.socket.end();
    setTimeout(() => this.destroy(), 5_000).unref();
  }

  private lost(): void {
    if (this.closed) return;
    this.closed = true;
    this.goingAway = true;
    clearInterval(this.keepalive);
    for (const p of this.pings.splice(0)) {
      clearTimeout(p.timer);
      p.done(new Error('connection closed'));
    }
    for (const s of [...this.streams.values()]) this.closeStream(s, CONNECTION_LOST);
    this.onClose();
  }

  /** A connection error: GOAWAY with `code`, then the end. */
  private fail(code: number): void {
    if (this.closed) return;
    this.goaway(code);
    this.goingAway = true;
    this.flushOut();
    this.socket.end();
    // The GOAWAY gets a moment to leave; then the TCP connection closes, whatever the peer does.
    const socket = this.socket;
    setTimeout(() => socket.destroy(), 1_000).unref();
    this.lost();
  }

  // ---- receiving ----

  /** @internal Bytes read from the socket, for a socket read with `onread` (externalRead). */
  receive(chunk: Buffer): void {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let p = 0;
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, buf.length);
      const at = PREFACE.length - this.prefaceLeft;
      if (buf.compare(PREFACE, at, at + n, 0, n) !== 0) return this.fail(H2_PROTOCOL_ERROR);
      this.prefaceLeft -= n;
      p = n;
    }
    while (!this.closed && buf.length - p >= 9) {
      const length = buf.readUIntBE(p, 3);
      if (length > DEFAULT_MAX_FRAME) return this.fail(H2_FRAME_SIZE_ERROR);
      if (buf.length - p < 9 + length) break;
      const type = buf[p + 3]!;
      const flags = buf[p + 4]!;
      const streamId = buf.readUInt32BE(p + 5) & 0x7fffffff;
      const payload = buf.subarray(p + 9, p + 9 + length);
      p += 9 + length;
      try {
        this.onFrame(type, flags, streamId, payload);
      } catch (err) {
        return this.fail(err instanceof HpackError ? H2_COMPRESSION_ERROR : err instanceof ProtocolError ? err.code : H2_INTERNAL_ERROR);
      }
    }
    if (p < buf.length && !this.closed) this.pending = this.opts.externalRead ? Buffer.from(buf.subarray(p)) : buf.subarray(p);
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (!this.settingsReceived && type !== SETTINGS) throw new ProtocolError(H2_PROTOCOL_ERROR);
    if (this.headerBlock && type !== CONTINUATION) throw new ProtocolError(H2_PROTOCOL_ERROR);
    switch (type) {
      case DATA:
        return this.onData(flags, streamId, payload);
      case HEADERS: {
        if (streamId === 0) throw new ProtocolError(H2_PROTOCOL_ERROR);
        let start = 0;
        let end = payload.length;
        if (flags & FLAG_PADDED) {
          end -= payload[0]!;
          start = 1;
        }
        if (flags & FLAG_PRIORITY) start += 5;
        if (start > end) throw new ProtocolError(H2_PROTOCOL_ERROR);
        // A block continued in later frames is kept across reads: copied when the read buffer is reused.
        const fragment = payload.subarray(start, end);
        const kept = flags & FLAG_END_HEADERS || !this.opts.externalRead ? fragment : Buffer.from(fragment);
        this.headerBlock = { streamId, endStream: (flags & FLAG_END_STREAM) !== 0, fragments: [kept], bytes: end - start };
        if (flags & FLAG_END_HEADERS) this.onHeaderBlock();
        return;
      }
      case CONTINUATION: {
        const block = this.headerBlock;
        if (!block || block.streamId !== streamId) throw new ProtocolError(H2_PROTOCOL_ERROR);
        block.fragments.push(this.opts.externalRead ? Buffer.from(payload) : payload);
        block.bytes += payload.length;
        if (block.bytes > this.maxHeaderList) throw new ProtocolError(H2_PROTOCOL_ERROR);
        if (flags & FLAG_END_HEADERS) this.onHeaderBlock();
        return;
      }
      case RST_STREAM: {
        if (streamId === 0 || payload.length !== 4) throw new ProtocolError(streamId === 0 ? H2_PROTOCOL_ERROR : H2_FRAME_SIZE_ERROR);
        const stream = this.streams.get(streamId);
        if (stream) this.closeStream(stream, payload.readUInt32BE(0));
        return;
      }
      case SETTINGS:
        return this.onSettings(flags, streamId, payload);
      case PUSH_PROMISE:
        // Push is disabled in this side's SETTINGS (client) and never valid towards a server.
        throw new ProtocolError(H2_PROTOCOL_ERROR);
      case PING: {
        if (streamId !== 0) throw new ProtocolError(H2_PROTOCOL_ERROR);
        if (payload.length !== 8) throw new ProtocolError(H2_FRAME_SIZE_ERROR);
        if (flags & FLAG_ACK) {
          const i = this.pings.findIndex((x) => x.payload.equals(payload));
          if (i >= 0) {
            const [entry] = this.pings.splice(i, 1);
            clearTimeout(entry!.timer);
            entry!.done();
          }
        } else this.frame(PING, FLAG_ACK, 0, Buffer.from(payload));
        return;
      }
      case GOAWAY: {
        if (streamId !== 0 || payload.length < 8) throw new ProtocolError(H2_PROTOCOL_ERROR);
        const last = payload.readUInt32BE(0) & 0x7fffffff;
        const code = payload.readUInt32BE(4);
        this.goingAway = true;
        // Streams this side opened after `last` were not processed: the owner may retry them.
        if (this.role === 'client') for (const s of [...this.streams.values()]) if (s.id > last) this.closeStream(s, H2_REFUSED_STREAM);
        this.onGoaway(code);
        if (this.streams.size === 0) this.endSocket();
        return;
      }
      case WINDOW_UPDATE: {
        if (payload.length !== 4) throw new ProtocolError(H2_FRAME_SIZE_ERROR);
        const increment = payload.readUInt32BE(0) & 0x7fffffff;
        if (streamId === 0) {
          if (increment === 0) throw new ProtocolError(H2_PROTOCOL_ERROR);
          this.sendWindow += increment;
          if (this.sendWindow > MAX_WINDOW) throw new ProtocolError(H2_FLOW_CONTROL_ERROR);
          for (const s of [...this.blocked]) {
            if (this.sendWindow <= 0) break;
            this.blocked.delete(s);
            this.flushStream(s);
          }
          return;
        }
        const stream = this.streams.get(streamId);
        if (!stream) return;
        if (increment === 0) return this.resetStream(stream, H2_PROTOCOL_ERROR);
        stream.sendWindow += increment;
        if (stream.sendWindow > MAX_WINDOW) return this.resetStream(stream, H2_FLOW_CONTROL_ERROR);
        this.flushStream(stream);
        return;
      }
      default:
        // PRIORITY and unknown frame types are ignored.
        return;
    }
  }

  private onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ProtocolError(H2_PROTOCOL_ERROR);
    if (flags & FLAG_ACK) {
      if (payload.length !== 0) throw new ProtocolError(H2_FRAME_SIZE_ERROR);
      return;
    }
    if (payload.length % 6 !== 0) throw new ProtocolError(H2_FRAME_SIZE_ERROR);
    this.settingsReceived = true;
    for (let i = 0; i < payload.length; i += 6) {
      const id = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      if (id === SETTINGS_INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) throw new ProtocolError(H2_FLOW_CONTROL_ERROR);
        const delta = value - this.peerStreamWindow;
        this.peerStreamWindow = value;
        for (const s of this.streams.values()) s.sendWindow += delta;
        if (delta > 0) for (const s of [...this.streams.values()]) this.flushStream(s);
      } else if (id === SETTINGS_MAX_FRAME_SIZE) {
        if (value < DEFAULT_MAX_FRAME || value > 16_777_215) throw new ProtocolError(H2_PROTOCOL_ERROR);
        this.peerMaxFrame = value;
      } else if (id === SETTINGS_MAX_CONCURRENT_STREAMS) this.peerMaxStreams = value;
      else if (id === SETTINGS_ENABLE_PUSH && value > 1) throw new ProtocolError(H2_PROTOCOL_ERROR);
      // HEADER_TABLE_SIZE: the encoder uses no dynamic table. MAX_HEADER_LIST_SIZE: advisory.
    }
    this.frame(SETTINGS, FLAG_ACK, 0);
  }

  private onData(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ProtocolError(H2_PROTOCOL_ERROR);
    this.recvWindow -= payload.length;
    if (this.recvWindow < 0) throw new ProtocolError(H2_FLOW_CONTROL_ERROR);
    let start = 0;
    let end = payload.length;
    if (flags & FLAG_PADDED) {
      if (payload.length < 1 || payload[0]! >= payload.length) throw new ProtocolError(H2_PROTOCOL_ERROR);
      end -= payload[0]!;
      start = 1;
    }
    const stream = this.streams.get(streamId);
    if (!stream && streamId > (this.role === 'server' ? this.lastPeerStreamId : this.nextStreamId)) throw new ProtocolError(H2_PROTOCOL_ERROR);
    // The connection window is returned on receipt, whatever becomes of the data: a stream that is
    // closed, or whose reader stalls, must never hold back the other streams of its connection.
    this.returnConnectionWindow(payload.length);
    // A stream already closed (reset by this side, say): its data is dropped.
    if (!stream) return;
    if (stream.remoteEnded || !stream.headersReceived) return this.resetStream(stream, H2_STREAM_CLOSED);
    stream.recvWindow -= payload.length;
    if (stream.recvWindow < 0) return this.resetStream(stream, H2_FLOW_CONTROL_ERROR);
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    const length = end - start;
    if (stream.contentLength >= 0) {
      // A request whose content-length differs from its data is malformed (RFC 9113 §8.1.1).
      stream.contentLength -= length;
      if (stream.contentLength < 0 || (endStream && stream.contentLength !== 0)) return this.resetStream(stream, H2_PROTOCOL_ERROR);
    }
    if (endStream) stream.remoteEnded = true;
    const padding = payload.length - length;
    if (padding > 0) this.consumed(stream, padding);
    const data = this.opts.externalRead ? Buffer.from(payload.subarray(start, end)) : payload.subarray(start, end);
    if (!stream.manualFlowControl) this.consumed(stream, length);
    stream.onData(data, endStream);
    if (endStream && stream.localEnded) this.closeStream(stream, undefined);
  }

  private returnConnectionWindow(bytes: number): void {
    this.recvUnacked += bytes;
    if (this.recvUnacked >= this.connectionWindow / 2) {
      this.windowUpdate(0, this.recvUnacked);
      this.recvWindow += this.recvUnacked;
      this.recvUnacked = 0;
    }
  }

  private onHeaderBlock(): void {
    const block = this.headerBlock!;
    this.headerBlock = undefined;
    if (block.bytes > this.maxHeaderList) throw new ProtocolError(H2_PROTOCOL_ERROR);
    // Always decoded, even for a stream that is gone: HPACK state is per connection.
    const headers = this.decoder.decode(block.fragments.length === 1 ? block.fragments[0]! : Buffer.concat(block.fragments));
    const { streamId, endStream } = block;
    let stream = this.streams.get(streamId);
    if (!stream) {
      if (this.role === 'client') return; // an answer to a stream this side already reset
      if (streamId % 2 === 0 || streamId <= this.lastPeerStreamId) {
        if (streamId % 2 === 0) throw new ProtocolError(H2_PROTOCOL_ERROR);
        return; // trailers of a stream already closed
      }
      this.lastPeerStreamId = streamId;
      if (this.goingAway || this.streams.size >= this.maxStreams) return this.refuse(streamId, H2_REFUSED_STREAM);
      // A malformed request is a stream error (RFC 9113 §8.1.1): refused here, never handed on.
      const check = this.requestCheck;
      if (!check.request(headers) || (endStream && check.contentLength > 0)) {
        this.malformedRequests++;
        return this.refuse(streamId, H2_PROTOCOL_ERROR);
      }
      stream = new H2Stream(streamId, this, this.peerStreamWindow, this.streamWindow);
      stream.contentLength = check.contentLength;
      this.streams.set(streamId, stream);
      stream.headersReceived = true;
      if (endStream) stream.remoteEnded = true;
      this.onStream(stream, headers, endStream);
      return;
    }
    if (stream.remoteEnded) return this.resetStream(stream, H2_STREAM_CLOSED);
    const trailers = stream.headersReceived;
    stream.headersReceived = true;
    if (trailers && !endStream) return this.resetStream(stream, H2_PROTOCOL_ERROR);
    if (trailers && this.role === 'server' && (!this.requestCheck.trailers(headers) || stream.contentLength > 0)) {
      this.malformedRequests++;
      return this.resetStream(stream, H2_PROTOCOL_ERROR);
    }
    if (endStream) stream.remoteEnded = true;
    stream.onHeaders(headers, endStream);
    if (endStream && stream.localEnded) this.closeStream(stream, undefined);
  }
}

class ProtocolError extends Error {
  constructor(readonly code: number) {
    super(`HTTP/2 error ${code}`);
  }
}

/** The value of header `name` (the first, if repeated). */
export function headerValue(headers: readonly Header[], name: string): string | undefined {
  for (const h of headers) if (h[0] === name) return h[1];
  return undefined;
}
