// HTTP/2 (RFC 9113) sessions over a socket, in JavaScript, for the router's and the pods' data
// path. node:http2 costs several times more CPU per stream than a proxy needs (each stream is a
// Duplex with its own events and a round trip through nghttp2's C++ callbacks); here a stream is a
// small object with callbacks, frames of one tick go out in one write, and a proxy hands DATA
// payloads from one connection to another without copying them.
//
// What it does: the connection preface, SETTINGS (and their ACK), PING (answered; sent for
// keepalive), flow control both ways, HEADERS with CONTINUATION, trailers, RST_STREAM, GOAWAY
// (graceful close, and refusing streams the peer did not process). Framing is frames.ts (no state);
// this file is the session: stream states (RFC 9113 §5.1), windows, and, as a server facing
// clients, the limits of a hardened peer (limits.ts): concurrent streams, header sizes counted as
// sent and as decoded, CONTINUATION frames per block, rates of SETTINGS, RST_STREAM and empty
// frames, the keepalive policy, the request and answer bytes it holds (budget.ts), its output to a
// peer that does not read, and timeouts driven by its server's tick. What it leaves out: server
// push (refused), priorities (ignored), TLS (the mesh speaks h2c inside the cluster).
import type net from 'node:net';
import { ByteBudget, fitsShare } from './budget';
import {
  CONTINUATION,
  DATA,
  DEFAULT_MAX_FRAME_BYTES,
  FLAG_ACK,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FRAME_HEADER_BYTES,
  GOAWAY,
  H2_CANCEL,
  H2_COMPRESSION_ERROR,
  H2_ENHANCE_YOUR_CALM,
  H2_FLOW_CONTROL_ERROR,
  H2_FRAME_SIZE_ERROR,
  H2_INTERNAL_ERROR,
  H2_NO_ERROR,
  H2_PROTOCOL_ERROR,
  H2_REFUSED_STREAM,
  H2_SETTINGS_TIMEOUT,
  H2_STREAM_CLOSED,
  HEADERS,
  MAX_WINDOW,
  PING,
  RST_STREAM,
  SETTINGS,
  SETTINGS_ENABLE_PUSH,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SETTINGS_MAX_CONCURRENT_STREAMS,
  SETTINGS_MAX_FRAME_SIZE,
  SETTINGS_MAX_HEADER_LIST_SIZE,
  WINDOW_UPDATE,
  contentEnd,
  contentStart,
  errorCode,
  frameError,
  frameFlags,
  frameSizeAt,
  frameStreamId,
  frameType,
  goawayCode,
  goawayLastStreamId,
  isStreamError,
  rstCode,
  settingId,
  settingValue,
  settingsCount,
  windowIncrement,
  writeFrameHeader,
} from './frames';
import { RequestHeaderCheck } from './header-rules';
import { encodeHeaders, headerListBytes, HpackDecoder, HpackError, type Header } from './hpack';
import { DEFAULT_H2_LIMITS, type H2Limits } from './limits';

export type { Header } from './hpack';
export {
  H2_CANCEL,
  H2_COMPRESSION_ERROR,
  H2_ENHANCE_YOUR_CALM,
  H2_FLOW_CONTROL_ERROR,
  H2_FRAME_SIZE_ERROR,
  H2_INTERNAL_ERROR,
  H2_NO_ERROR,
  H2_PROTOCOL_ERROR,
  H2_REFUSED_STREAM,
  H2_SETTINGS_TIMEOUT,
  H2_STREAM_CLOSED,
} from './frames';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Not an HTTP/2 code: the stream ended because its connection did. */
export const CONNECTION_LOST = -1;

const DEFAULT_WINDOW = 65_535;
/** The largest stream id (31 bits). */
const MAX_STREAM_ID = 2 ** 31 - 1;
/** Output of one tick up to this size is copied into one reused buffer before it is written. */
const OUT_BUFFER_BYTES = 64 * 1024;
/**
 * grpc-go's keepalive enforcement: without a stream (and PermitWithoutStream off), a ping closer
 * than this to the previous one is a strike (its defaultPingTimeout, 2 h).
 */
const PING_WITHOUT_STREAM_MS = 2 * 60 * 60 * 1000;
/** Streams closed lately whose ids are kept, to tell frames that crossed this side's reset from a peer's mistake. */
const CLOSED_RING = 256;
/**
 * The buffer a tick's output is copied into before it is written, shared by every connection: a
 * write that completes at once (the usual case) leaves it free for the next; one the socket keeps
 * takes it, and the next flush makes a new one. So an idle connection holds no output buffer.
 */
let sharedOut: Buffer | undefined;
/**
 * A TLS connection's tick of output up to this size is copied into a buffer kept for the purpose
 * (a TLS record holds at most 16 KiB): a write to a TLS socket completes later, so the buffer is
 * taken back when it has. Fresh copies instead (from node's 8 KiB pool) made a full GC run every few
 * hundred milliseconds under load, set off by the external memory they add up to.
 */
const TLS_OUT_BYTES = 16 * 1024;
/** Buffers given back by completed TLS writes, at most this many kept (1 MiB) for the next. */
const MAX_SPARE_TLS_OUT = 64;
const spareTlsOut: Buffer[] = [];
const giveBack = (buf: Buffer) => () => {
  if (spareTlsOut.length < MAX_SPARE_TLS_OUT) spareTlsOut.push(buf);
};
const NO_LIMIT = new ByteBudget(Number.POSITIVE_INFINITY);
const TOO_MANY_PINGS = Buffer.from('too_many_pings', 'latin1');

/**
 * Settings of a connection; every field has a default. A server (a front door) takes the limits
 * of limits.ts (DEFAULT_H2_LIMITS unless given); a client, to a pod or a service's own grpc-js
 * server, trusts its peer: no rates, timeouts or budgets, larger header lists.
 */
export interface H2ConnectionOptions extends Partial<H2Limits> {
  /**
   * Ping the peer this often and end the connection when it does not answer (0: never). 5 min
   * by default, the least a door's keepalive policy allows (keepaliveMinIntervalMs).
   */
  keepaliveIntervalMs?: number;
  /** How long a ping may go unanswered (10 s). */
  keepaliveTimeoutMs?: number;
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
  /** The request bytes of the whole door (server; its H2Server gives every connection the same). */
  requestBudget?: ByteBudget;
  /** The answer bytes of the whole door. */
  responseBudget?: ByteBudget;
}

/** What a client side takes from a server it trusts (a pod, a service's own grpc-js server). */
const CLIENT_DEFAULTS: Partial<H2Limits> = {
  maxConcurrentStreams: 1_000,
  streamWindowBytes: 1 << 20,
  connectionWindowBytes: 16 << 20,
  maxHeaderListBytes: 64 << 10,
  maxHeaderBlockBytes: 80 << 10,
  maxContinuationFrames: 64,
  maxRequestBytesPerConnection: Number.POSITIVE_INFINITY,
  maxResponseBytesPerConnection: Number.POSITIVE_INFINITY,
};

/** Why a stream closed: undefined when both sides ended it cleanly, else an HTTP/2 error code or CONNECTION_LOST. */
export type CloseCode = number | undefined;

/** A request whose header list is larger than the peer said it takes: sent, it would be refused. */
export class HeaderListTooLarge extends Error {
  constructor(readonly bytes: number, readonly limit: number) {
    super(`a header list of ${bytes} bytes, more than the ${limit} the peer takes`);
  }
}

/** One HTTP/2 stream. The owner sets the callbacks when it gets the stream, before returning. */

export class H2Stream {
  /** Headers (the first block) and trailers (a later one). */
  onHeaders: (headers: Header[], endStream: boolean) => void = noop;
  onData: (chunk: Buffer, endStream: boolean) => void = noop;
  /** Called once when the stream is over: cleanly, reset by either side, or with its connection. */
  onClose: (code: CloseCode) => void = noop;
  /**
   * A client's stream sent before the peer's SETTINGS said how large a header list it takes: a
   * reset ENHANCE_YOUR_CALM before an answer may then be the peer refusing the list (see
   * request()); after, the list was within its limit.
   */
  headerListUnchecked = false;
  /** Called when data queued by write() has all been sent (see write()). */
  onDrain: () => void = noop;
  /** Called when this side's end of the stream (END_STREAM) has been sent. */
  onLocalEnd: () => void = noop;
  /**
   * When false (the default) received data is counted as consumed as soon as it is delivered, and
   * the peer's windows reopened; when true the owner calls consume() once it has passed data on.
   * Until then the data counts against the connection's request budget (server): within it the
   * connection window is returned as data arrives, so a stream whose reader stalls holds back its
   * own window only; beyond it the connection window waits too.
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
  /** @internal Data received with manualFlowControl and not yet consumed. */
  held = 0;
  /** @internal Request bytes reserved with reserveRequestBytes(). */
  reserved = 0;
  /** @internal When a frame last went either way (the server's coarse clock). */
  lastActive: number;
  /** @internal */ queue: Buffer[] = [];
  /** @internal */ queuedBytes = 0;
  /** @internal End the stream once the queue is sent: true (empty DATA) or trailers. */
  endAfterQueue: readonly Header[] | true | undefined;
  /** @internal Bytes a request's content-length says are still to come (-1: it declared none). */
  contentLength = -1;

  constructor(readonly id: number, private readonly conn: H2Connection, sendWindow: number, recvWindow: number, now: number) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
    this.lastActive = now;
  }

  /** Sends the response (or request) headers; `endStream`: no body or trailers follow. */
  sendHeaders(headers: readonly Header[], endStream = false): void {
    if (this.closed || this.headersSent) return;
    this.headersSent = true;
    this.conn.writeHeaders(this, headers, endStream);
  }

  /**
   * Queues `chunk` as DATA, sent as the peer's windows and the socket allow. Returns true when all
   * of it went out now; false when some waits, and onDrain is called once it has gone.
   */
  write(chunk: Buffer): boolean {
    if (this.closed || this.localEnded || this.endAfterQueue) return false;
    if (chunk.length > 0) this.conn.enqueue(this, chunk);
    this.conn.flushStream(this);
    return this.queuedBytes === 0;
  }

  /**
   * Ends this side of the stream after what is queued: with trailers, or else with the END_STREAM
   * flag on the last DATA frame (`last`, when given, is sent as that last data).
   */
  end(trailers?: readonly Header[], last?: Buffer): void {
    if (this.closed || this.localEnded || this.endAfterQueue) return;
    if (last && last.length > 0) this.conn.enqueue(this, last);
    this.endAfterQueue = trailers ?? true;
    this.conn.flushStream(this);
  }

  /** Resets the stream (RST_STREAM `code`, CANCEL by default). */
  reset(code = H2_CANCEL): void {
    if (this.closed) return;
    this.conn.resetStream(this, code);
  }

  /** Reopens the peer's windows by `bytes` it sent that the owner has passed on (manualFlowControl). */
  consume(bytes: number): void {
    this.conn.consumed(this, bytes);
  }

  /**
   * Reserves `bytes` of the request budgets (its connection's and its door's) for a message the
   * owner reads whole, before reading it; false when they would not fit, and nothing is reserved.
   * The reservation ends with the stream. (A client side has no budget: always true.)
   */
  reserveRequestBytes(bytes: number): boolean {
    return !this.closed && this.conn.reserveRequest(this, bytes);
  }

  /**
   * Ends what reserveRequestBytes reserved before the stream ends, for an owner that no longer
   * holds that message (a compressed one, once decompressed).
   */
  releaseRequestBytes(): void {
    this.conn.releaseReserved(this);
  }

  /**
   * Whether an answer of `bytes` may be queued now: it fits the answer bytes this stream's
   * connection and its door hold for clients that have not read them, or that connection holds
   * none (so one answer of any size always gets through to a client that reads).
   */
  mayQueue(bytes: number): boolean {
    return this.conn.mayQueue(bytes);
  }
}

function noop(): void {}

class ProtocolError extends Error {
  constructor(readonly code: number, readonly debug?: Buffer) {
    super(`HTTP/2 error ${code}`);
  }
}

/**
 * One HTTP/2 connection over `socket`, as the server (`onStream` gets each stream a client opens)
 * or the client (request() opens streams). A server's timeouts and the refill of its rate limits
 * run on tick(), which its H2Server calls for every connection.
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
  /** The GOAWAY code this side ended the connection with, when it did (a connection error or NO_ERROR). */
  goawaySent: number | undefined;

  private readonly streams = new Map<number, H2Stream>();
  private readonly decoder: HpackDecoder;
  /** Checks requests (server): a malformed one is refused before any owner sees it. */
  private readonly requestCheck = new RequestHeaderCheck();
  private readonly limits: H2Limits;
  private readonly server: boolean;

  private pending: Buffer | undefined;
  private prefaceLeft: number;
  private settingsReceived = false;
  /** The header block being received (HEADERS then CONTINUATION). */
  private headerBlock:
    | { streamId: number; endStream: boolean; fragments: Buffer[]; bytes: number; frames: number; startedAt: number }
    | undefined;

  private peerStreamWindow = DEFAULT_WINDOW;
  private peerMaxFrame = DEFAULT_MAX_FRAME_BYTES;
  /** The largest header list the peer takes (SETTINGS_MAX_HEADER_LIST_SIZE; unlimited until it says). */
  private peerMaxHeaderList = Number.POSITIVE_INFINITY;
  /** Until the peer's SETTINGS say otherwise, 100, as node:http2 assumes (its peerMaxConcurrentStreams). */
  private peerMaxStreams = 100;
  private sendWindow = DEFAULT_WINDOW;
  private recvWindow = DEFAULT_WINDOW;
  private recvUnacked = 0;
  /** Streams with data waiting for the connection window or for the socket to drain. */
  private readonly blocked = new Set<H2Stream>();

  private nextStreamId: number;
  private readonly maxStreamId: number;
  /** Highest stream id the peer opened. */
  private lastPeerStreamId = 0;
  /** Ids of streams closed lately, times 2, plus 1 when this side reset them (a ring). */
  private readonly closedIds = new Uint32Array(CLOSED_RING);
  private closedNext = 0;
  private outBufs: Buffer[] = [];
  private outBytes = 0;
  private ending = false;
  /** Server: a graceful close's first GOAWAY (the highest stream id) is out and its PING not yet answered, or was. */
  private goawayNotice: 'none' | 'sent' | 'answered' = 'none';
  private noticeEndsAt = Number.POSITIVE_INFINITY;
  private noticeTimer: NodeJS.Timeout | undefined;
  private readonly pings: { payload: Buffer; done: (err?: Error) => void; timer: NodeJS.Timeout }[] = [];
  private keepalive: NodeJS.Timeout | undefined;

  // ---- what the door holds (server) ----
  /** @internal Request bytes this connection holds: reserved, and received but not consumed. */
  requestBytes = 0;
  /** @internal Answer bytes queued on its streams. */
  responseBytes = 0;
  /** @internal */ readonly requestDoor: ByteBudget;
  /** @internal */ readonly responseDoor: ByteBudget;
  /** Connection window not returned yet, because the request budget was full when the data came. */
  private owed = 0;
  /** The socket's queue is over maxOutputBytes: no DATA is written and (server) nothing read until it drains. */
  private writeBlocked = false;

  // ---- timers and rates (server; driven by tick()) ----
  /** The coarse clock: Date.now() at the last tick. */
  private clock = Date.now();
  private readonly openedAt = this.clock;
  private idleSince = this.clock;
  private settingsAckDue = 0;
  private settingsTokens: number;
  private resetTokens: number;
  private emptyFrames = 0;
  private lastPingAt = Number.NEGATIVE_INFINITY;
  private pingStrikes = 0;
  /** This side sent HEADERS or DATA since the last PING: the next one is no strike (grpc-go). */
  private pingStrikesReset = false;
  /**
   * A TLS socket: no write of it completes at once (it is encrypted and written afterwards), so
   * the shared output buffer would be given away on every write and a fresh 64 KiB one made for
   * the next; such a connection writes a copy of the tick's exact size instead.
   */
  private readonly writesLater: boolean;

  constructor(
    private readonly socket: net.Socket,
    private readonly role: 'server' | 'client',
    private readonly onStream: (stream: H2Stream, headers: Header[], endStream: boolean) => void = noop,
    private readonly opts: H2ConnectionOptions = {},
  ) {
    this.server = role === 'server';
    this.limits = this.server ? { ...DEFAULT_H2_LIMITS, ...definedOf(opts) } : { ...DEFAULT_H2_LIMITS, ...CLIENT_DEFAULTS, ...definedOf(opts) };
    const limits = this.limits;
    this.requestDoor = this.server ? (opts.requestBudget ?? new ByteBudget(limits.maxRequestBytes)) : NO_LIMIT;
    this.responseDoor = this.server ? (opts.responseBudget ?? new ByteBudget(limits.maxResponseBytes)) : NO_LIMIT;
    this.settingsTokens = limits.settingsBurst;
    this.resetTokens = limits.resetBurst;
    this.decoder = new HpackDecoder(4096, limits.maxHeaderListBytes);
    this.nextStreamId = this.server ? 2 : 1;
    this.maxStreamId = Math.min(opts.maxStreamId ?? MAX_STREAM_ID, MAX_STREAM_ID);
    this.prefaceLeft = this.server ? PREFACE.length : 0;
    this.writesLater = (socket as Partial<{ encrypted: boolean }>).encrypted === true;
    socket.setNoDelay(true);
    if (!opts.externalRead) socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => this.lost());
    socket.on('drain', () => this.unblockWrites());

    if (!this.server) this.out(PREFACE);
    const settings: [number, number][] = [
      [SETTINGS_MAX_CONCURRENT_STREAMS, limits.maxConcurrentStreams],
      [SETTINGS_INITIAL_WINDOW_SIZE, limits.streamWindowBytes],
      [SETTINGS_MAX_HEADER_LIST_SIZE, limits.maxHeaderListBytes],
    ];
    if (!this.server) settings.push([SETTINGS_ENABLE_PUSH, 0]);
    const payload = Buffer.alloc(settings.length * 6);
    settings.forEach(([id, value], i) => {
      payload.writeUInt16BE(id, i * 6);
      payload.writeUInt32BE(value, i * 6 + 2);
    });
    this.frame(SETTINGS, 0, 0, payload);
    this.settingsAckDue = this.clock + limits.settingsAckTimeoutMs;
    if (limits.connectionWindowBytes > DEFAULT_WINDOW) {
      this.windowUpdate(0, limits.connectionWindowBytes - DEFAULT_WINDOW);
      this.recvWindow = limits.connectionWindowBytes;
    }
    const interval = opts.keepaliveIntervalMs ?? DEFAULT_H2_LIMITS.keepaliveMinIntervalMs;
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

  /** Whether the peer's limit of concurrent streams is what keeps request() from opening one. */
  get atStreamLimit(): boolean {
    return !this.closed && !this.goingAway && this.streams.size >= this.peerMaxStreams;
  }

  /** Opens a stream and sends its headers (client). Throws when the connection cannot take one. */
  request(headers: readonly Header[], endStream = false): H2Stream {
    if (this.server) throw new Error('only a client opens streams');
    if (!this.canRequest) throw new Error(this.closed ? 'connection closed' : this.goingAway ? 'connection going away' : 'connection at its stream limit');
    if (this.peerMaxHeaderList !== Number.POSITIVE_INFINITY) {
      const bytes = headerListBytes(headers);
      if (bytes > this.peerMaxHeaderList) throw new HeaderListTooLarge(bytes, this.peerMaxHeaderList);
    }
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const stream = new H2Stream(id, this, this.peerStreamWindow, this.limits.streamWindowBytes, this.clock);
    this.streams.set(id, stream);
    stream.headerListUnchecked = this.peerMaxHeaderList === Number.POSITIVE_INFINITY;
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
   * streams have. The peer may retry elsewhere any stream it opened after the GOAWAY. A server
   * first says GOAWAY with the highest stream id and a PING, and names the last stream it takes
   * only once the PING is answered (or goawayNoticeTimeoutMs has passed), as RFC 9113 §6.8 and
   * grpc-go do: a request the client sent before it read the GOAWAY is served, not refused. A
   * client retries a refused request only while it still holds it (grpc-js: up to 1 MiB of
   * messages), so a larger one that crossed an idle connection's close failed UNAVAILABLE.
   * `noticeBoundMs` shortens that wait (a drain's, which must not spend its budget on a client
   * that never answers).
   */
  close(noticeBoundMs = Number.POSITIVE_INFINITY): void {
    if (this.closed) return;
    const noticeMs = Math.min(this.limits.goawayNoticeTimeoutMs, noticeBoundMs);
    if (this.goawayNotice === 'sent') {
      // A drain bounds the notice of a close already under way (an age's, an idle connection's) too.
      if (Date.now() + noticeMs < this.noticeEndsAt) this.noticeFor(noticeMs);
      return;
    }
    if (this.server && !this.goingAway && this.goawayNotice === 'none' && noticeMs > 0) {
      this.goawayNotice = 'sent';
      this.goaway(H2_NO_ERROR, MAX_STREAM_ID);
      this.noticeFor(noticeMs);
      this.ping(noticeMs).then(this.noticeOver, this.noticeOver);
      return;
    }
    if (!this.goingAway) {
      this.goingAway = true;
      this.goaway(H2_NO_ERROR);
    }
    if (this.streams.size === 0) this.endSocket();
  }

  /** The notice of a graceful close ends in `ms` at the latest, its PING answered or not. */
  private noticeFor(ms: number): void {
    clearTimeout(this.noticeTimer);
    this.noticeEndsAt = Date.now() + ms;
    this.noticeTimer = setTimeout(this.noticeOver, ms).unref();
  }

  /** The notice's PING is answered, or its time is up: the second GOAWAY names the last stream taken. */
  private readonly noticeOver = (): void => {
    if (this.goawayNotice !== 'sent') return;
    this.goawayNotice = 'answered';
    clearTimeout(this.noticeTimer);
    this.close();
  };

  /** Ends the connection now; open streams close with CONNECTION_LOST. */
  destroy(): void {
    if (this.closed) return;
    this.socket.destroy();
    this.lost();
  }

  /**
   * The server's clock (every few hundred ms, see H2Server): the timeouts of the preface, the
   * SETTINGS ACK, a field block, an idle connection and idle streams, and the refill of the rate
   * limits. Counters and comparisons; it walks the streams only when they may time out.
   */
  tick(now: number): void {
    if (this.closed || !this.server) return;
    const elapsed = now - this.clock;
    this.clock = now;
    const limits = this.limits;
    if (!this.settingsReceived) {
      // A peer that does not speak HTTP/2, or too slowly to tell.
      if (now - this.openedAt >= limits.prefaceTimeoutMs) this.destroy();
      return;
    }
    if (this.settingsAckDue > 0 && now >= this.settingsAckDue) return this.fail(H2_SETTINGS_TIMEOUT);
    if (this.headerBlock && now - this.headerBlock.startedAt >= limits.headersTimeoutMs) return this.fail(H2_ENHANCE_YOUR_CALM);
    if (this.streams.size === 0) {
      if (limits.idleTimeoutMs > 0 && now - this.idleSince >= limits.idleTimeoutMs && !this.goingAway) this.close();
    } else if (limits.streamIdleTimeoutMs > 0) {
      for (const s of this.streams.values()) if (now - s.lastActive >= limits.streamIdleTimeoutMs) this.resetStream(s, H2_CANCEL);
    }
    if (elapsed > 0) {
      this.settingsTokens = Math.min(limits.settingsBurst, this.settingsTokens + (limits.settingsPerSecond * elapsed) / 1000);
      this.resetTokens = Math.min(limits.resetBurst, this.resetTokens + (limits.resetsPerSecond * elapsed) / 1000);
    }
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
   * goes out as a writev of the frames as they are. A peer that leaves more than maxOutputBytes
   * unread is not read from (server) nor sent DATA until the socket drains.
   */
  private readonly flushOut = (): void => {
    const bufs = this.outBufs;
    if (bufs.length === 0 || this.closed) return;
    this.outBufs = [];
    const bytes = this.outBytes;
    this.outBytes = 0;
    if (this.writesLater && bytes <= TLS_OUT_BYTES) {
      const target = spareTlsOut.pop() ?? Buffer.allocUnsafeSlow(TLS_OUT_BYTES);
      let off = 0;
      for (const b of bufs) off += b.copy(target, off);
      this.socket.write(target.subarray(0, bytes), giveBack(target));
    } else if (this.writesLater && bytes <= OUT_BUFFER_BYTES) {
      this.socket.write(Buffer.concat(bufs, bytes));
    } else if (bytes <= OUT_BUFFER_BYTES) {
      const target = (sharedOut ??= Buffer.allocUnsafeSlow(OUT_BUFFER_BYTES));
      let off = 0;
      for (const b of bufs) off += b.copy(target, off);
      this.socket.write(target.subarray(0, bytes));
      // Still queued in the socket: that buffer is not ours again until written; use a new one.
      if (this.socket.writableLength > 0) sharedOut = undefined;
    } else {
      this.socket.cork();
      for (const b of bufs) this.socket.write(b);
      this.socket.uncork();
    }
    if (this.socket.writableLength > this.limits.maxOutputBytes) {
      if (!this.writeBlocked) {
        this.writeBlocked = true;
        // Frames whose answers would pile up (PING, SETTINGS) are not read while the peer does not read.
        if (this.server) this.socket.pause();
      }
    } else this.unblockWrites();
  };

  /** The socket took its queue (or most of it): reading and DATA go on. */
  private unblockWrites(): void {
    if (this.closed || this.socket.writableLength > this.limits.maxOutputBytes) return;
    if (this.writeBlocked) {
      this.writeBlocked = false;
      if (this.server) this.socket.resume();
    }
    if (this.blocked.size === 0) return;
    for (const s of [...this.blocked]) {
      if (this.writeBlocked || this.sendWindow <= 0 || this.outBytes > this.limits.maxOutputBytes) break;
      this.blocked.delete(s);
      this.flushStream(s);
    }
  }

  private frame(type: number, flags: number, streamId: number, payload?: Buffer): void {
    const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
    const length = payload ? payload.length : 0;
    writeFrameHeader(header, 0, length, type, flags, streamId);
    this.out(header);
    if (length > 0) this.out(payload!);
  }

  private windowUpdate(streamId: number, increment: number): void {
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(increment, 0);
    this.frame(WINDOW_UPDATE, 0, streamId, p);
  }

  private goaway(code: number, lastStreamId = this.lastPeerStreamId, debug?: Buffer): void {
    const p = Buffer.allocUnsafe(8 + (debug?.length ?? 0));
    p.writeUInt32BE(lastStreamId, 0);
    p.writeUInt32BE(code, 4);
    debug?.copy(p, 8);
    this.goawaySent ??= code;
    this.frame(GOAWAY, 0, 0, p);
  }

  /** @internal */
  writeHeaders(stream: H2Stream, headers: readonly Header[], endStream: boolean): void {
    const frame = encodeHeaders(headers, FRAME_HEADER_BYTES);
    const length = frame.length - FRAME_HEADER_BYTES;
    let flags = endStream ? FLAG_END_STREAM : 0;
    stream.lastActive = this.clock;
    this.pingStrikesReset = true;
    if (length <= this.peerMaxFrame) {
      writeFrameHeader(frame, 0, length, HEADERS, flags | FLAG_END_HEADERS, stream.id);
      this.out(frame);
    } else {
      const block = frame.subarray(FRAME_HEADER_BYTES);
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

  /** @internal Queues `chunk` on `stream`, counted as answer bytes its connection and door hold. */
  enqueue(stream: H2Stream, chunk: Buffer): void {
    stream.queue.push(chunk);
    stream.queuedBytes += chunk.length;
    this.responseBytes += chunk.length;
    this.responseDoor.used += chunk.length;
  }

  /** @internal Sends what the windows and the socket allow of `stream`'s queue, then its end when all is sent. */
  flushStream(stream: H2Stream): void {
    if (stream.closed) return;
    while (stream.queuedBytes > 0) {
      const allowed = Math.min(stream.sendWindow, this.sendWindow, this.peerMaxFrame);
      if (allowed <= 0 || this.writeBlocked) {
        if (this.sendWindow <= 0 || this.writeBlocked) this.blocked.add(stream);
        return;
      }
      let chunk = stream.queue[0]!;
      if (chunk.length > allowed) {
        stream.queue[0] = chunk.subarray(allowed);
        chunk = chunk.subarray(0, allowed);
      } else stream.queue.shift();
      stream.queuedBytes -= chunk.length;
      this.responseBytes -= chunk.length;
      this.responseDoor.used -= chunk.length;
      stream.sendWindow -= chunk.length;
      this.sendWindow -= chunk.length;
      stream.lastActive = this.clock;
      this.pingStrikesReset = true;
      const last = stream.queuedBytes === 0 && stream.endAfterQueue === true;
      this.frame(DATA, last ? FLAG_END_STREAM : 0, stream.id, chunk);
      if (last) {
        stream.endAfterQueue = undefined;
        this.localEnd(stream);
        stream.onDrain();
        return;
      }
      if (stream.queuedBytes === 0) stream.onDrain();
      // This tick's output past the socket's limit: the rest waits for the socket to drain.
      if (this.outBytes + this.socket.writableLength > this.limits.maxOutputBytes && stream.queuedBytes > 0) {
        this.blocked.add(stream);
        return;
      }
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
    this.rememberClosed(streamId, true);
  }

  /** @internal */
  resetStream(stream: H2Stream, code: number): void {
    this.resetsSent++;
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(code, 0);
    this.frame(RST_STREAM, 0, stream.id, p);
    this.closeStream(stream, code, true);
  }

  /** @internal Reopens `stream`'s window, and the connection's if it waited for the budget. */
  consumed(stream: H2Stream, bytes: number): void {
    if (bytes <= 0 || this.closed || stream.closed) return;
    if (stream.held > 0) this.release(stream, Math.min(bytes, stream.held));
    if (stream.remoteEnded) return;
    stream.recvUnacked += bytes;
    if (stream.recvUnacked >= this.limits.streamWindowBytes / 2) {
      this.windowUpdate(stream.id, stream.recvUnacked);
      stream.recvWindow += stream.recvUnacked;
      stream.recvUnacked = 0;
    }
  }

  /** `bytes` held by `stream` are passed on or dropped: the budgets get them back, the connection window what it owes. */
  private release(stream: H2Stream, bytes: number): void {
    stream.held -= bytes;
    this.requestBytes -= bytes;
    this.requestDoor.used -= bytes;
    if (this.owed > 0) {
      const n = Math.min(this.owed, bytes);
      this.owed -= n;
      this.returnConnectionWindow(n);
    }
  }

  /** @internal */
  reserveRequest(stream: H2Stream, bytes: number): boolean {
    // What the stream holds now is the start of what it reserves for (its owner consumes it next).
    const more = bytes - stream.held;
    if (!fitsShare(this.requestBytes, this.limits.maxRequestBytesPerConnection, this.requestDoor, more)) return false;
    stream.reserved += bytes;
    this.requestBytes += bytes;
    this.requestDoor.used += bytes;
    return true;
  }

  /** @internal The request budgets get back what `stream` reserved. */
  releaseReserved(stream: H2Stream): void {
    if (stream.reserved === 0) return;
    this.requestBytes -= stream.reserved;
    this.requestDoor.used -= stream.reserved;
    stream.reserved = 0;
  }

  /** @internal */
  mayQueue(bytes: number): boolean {
    const door = this.responseDoor;
    return (this.responseBytes === 0 || this.responseBytes + bytes <= this.limits.maxResponseBytesPerConnection) && (door.used === 0 || door.fits(bytes));
  }

  private closeStream(stream: H2Stream, code: CloseCode, byThisSide = false): void {
    if (stream.closed) return;
    stream.closed = true;
    if (stream.queuedBytes > 0) {
      this.responseBytes -= stream.queuedBytes;
      this.responseDoor.used -= stream.queuedBytes;
      stream.queue = [];
      stream.queuedBytes = 0;
    }
    if (stream.held > 0) this.release(stream, stream.held);
    this.releaseReserved(stream);
    this.streams.delete(stream.id);
    this.blocked.delete(stream);
    this.rememberClosed(stream.id, byThisSide);
    if (this.streams.size === 0) this.idleSince = this.clock;
    try {
      stream.onClose(code);
    } finally {
      if (this.goingAway && this.streams.size === 0) this.endSocket();
    }
  }

  private rememberClosed(streamId: number, byThisSide: boolean): void {
    this.closedIds[this.closedNext] = streamId * 2 + (byThisSide ? 1 : 0);
    this.closedNext = (this.closedNext + 1) % CLOSED_RING;
  }

  /** How a stream that is not open ended, as far as this side remembers: 'reset' (by this side), 'closed' or undefined. */
  private closedHow(streamId: number): 'reset' | 'closed' | undefined {
    const ids = this.closedIds;
    for (let i = 0; i < CLOSED_RING; i++) {
      const v = ids[i]!;
      if (v >>> 1 === streamId && v !== 0) return v & 1 ? 'reset' : 'closed';
    }
    return undefined;
  }

  /** Whether `streamId` names a stream that was never opened and may still be (RFC 9113 §5.1 "idle"). */
  private isIdle(streamId: number): boolean {
    const peerOpens = this.server ? streamId % 2 === 1 : streamId % 2 === 0;
    if (peerOpens) return streamId > this.lastPeerStreamId;
    return streamId >= this.nextStreamId;
  }

  private endSocket(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    // Let the last frames go out, then end; destroy if the peer never closes its side.
    this.flushOut();
    this.socket.end();
    const timer = setTimeout(() => this.destroy(), 5_000).unref();
    this.socket.once('close', () => clearTimeout(timer));
  }

  private lost(): void {
    if (this.closed) return;
    this.closed = true;
    this.goingAway = true;
    clearInterval(this.keepalive);
    clearTimeout(this.noticeTimer);
    for (const p of this.pings.splice(0)) {
      clearTimeout(p.timer);
      p.done(new Error('connection closed'));
    }
    for (const s of [...this.streams.values()]) this.closeStream(s, CONNECTION_LOST);
    this.onClose();
  }

  /** A connection error: GOAWAY with `code`, then the end. */
  private fail(code: number, debug?: Buffer): void {
    if (this.closed) return;
    this.goaway(code, undefined, debug);
    this.goingAway = true;
    this.flushOut();
    this.socket.end();
    // The GOAWAY gets a moment to leave; then the TCP connection closes, whatever the peer does.
    const socket = this.socket;
    const timer = setTimeout(() => socket.destroy(), 1_000).unref();
    socket.once('close', () => clearTimeout(timer));
    this.lost();
  }

  // ---- receiving ----

  /** @internal Bytes read from the socket, for a socket read with `onread` (externalRead). */
  receive(chunk: Buffer): void {
    if (this.closed) return;
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
    while (!this.closed) {
      const size = frameSizeAt(buf, p, DEFAULT_MAX_FRAME_BYTES);
      if (size === 0) break;
      if (size < 0) return this.fail(H2_FRAME_SIZE_ERROR);
      const type = frameType(buf, p);
      const flags = frameFlags(buf, p);
      const streamId = frameStreamId(buf, p);
      const payload = buf.subarray(p + FRAME_HEADER_BYTES, p + size);
      p += size;
      try {
        this.onFrame(type, flags, streamId, payload);
      } catch (err) {
        if (err instanceof ProtocolError) return this.fail(err.code, err.debug);
        return this.fail(err instanceof HpackError ? H2_COMPRESSION_ERROR : H2_INTERNAL_ERROR);
      }
    }
    if (p < buf.length && !this.closed) this.pending = this.opts.externalRead ? Buffer.from(buf.subarray(p)) : buf.subarray(p);
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (!this.settingsReceived && (type !== SETTINGS || flags & FLAG_ACK)) throw new ProtocolError(H2_PROTOCOL_ERROR);
    if (this.headerBlock && type !== CONTINUATION) throw new ProtocolError(H2_PROTOCOL_ERROR);
    const error = frameError(type, flags, streamId, payload);
    if (error !== 0) return this.frameFailed(error, streamId);
    switch (type) {
      case DATA:
        return this.onData(flags, streamId, payload);
      case HEADERS:
        return this.onHeaders(flags, streamId, payload);
      case CONTINUATION:
        return this.onContinuation(flags, streamId, payload);
      case RST_STREAM: {
        if (this.server && --this.resetTokens < 0) throw new ProtocolError(H2_ENHANCE_YOUR_CALM);
        const stream = this.streams.get(streamId);
        if (stream) this.closeStream(stream, rstCode(payload));
        else if (this.isIdle(streamId)) throw new ProtocolError(H2_PROTOCOL_ERROR);
        return;
      }
      case SETTINGS:
        return this.onSettings(flags, payload);
      case PING:
        return this.onPing(flags, payload);
      case GOAWAY: {
        const last = goawayLastStreamId(payload);
        const code = goawayCode(payload);
        this.goingAway = true;
        // Streams this side opened after `last` were not processed: the owner may retry them.
        if (!this.server) for (const s of [...this.streams.values()]) if (s.id > last) this.closeStream(s, H2_REFUSED_STREAM);
        this.onGoaway(code);
        if (this.streams.size === 0) this.endSocket();
        return;
      }
      case WINDOW_UPDATE: {
        const increment = windowIncrement(payload);
        if (streamId === 0) {
          this.sendWindow += increment;
          if (this.sendWindow > MAX_WINDOW) throw new ProtocolError(H2_FLOW_CONTROL_ERROR);
          for (const s of [...this.blocked]) {
            if (this.sendWindow <= 0 || this.writeBlocked) break;
            this.blocked.delete(s);
            this.flushStream(s);
          }
          return;
        }
        const stream = this.streams.get(streamId);
        if (!stream) {
          // Closed: a window that crossed the end of the stream. Idle: the peer's mistake.
          if (this.isIdle(streamId)) throw new ProtocolError(H2_PROTOCOL_ERROR);
          return;
        }
        stream.sendWindow += increment;
        if (stream.sendWindow > MAX_WINDOW) return this.resetStream(stream, H2_FLOW_CONTROL_ERROR);
        this.flushStream(stream);
        return;
      }
      default:
        // PRIORITY (checked above) and unknown frame types are ignored; neither opens a stream.
        return;
    }
  }

  /** A frame that frameError refused: a stream error on an open stream, else the connection's. */
  private frameFailed(error: number, streamId: number): void {
    const code = errorCode(error);
    if (isStreamError(error)) {
      const stream = this.streams.get(streamId);
      if (stream) return this.resetStream(stream, code);
      // No stream to reset (RST_STREAM must not name an idle stream, §5.1): the connection's error.
      if (!this.isIdle(streamId)) return;
    }
    throw new ProtocolError(code);
  }

  private onSettings(flags: number, payload: Buffer): void {
    if (flags & FLAG_ACK) {
      this.settingsAckDue = 0;
      return;
    }
    const limits = this.limits;
    const n = settingsCount(payload);
    if (this.server && (n > limits.maxSettingsEntries || --this.settingsTokens < 0)) throw new ProtocolError(H2_ENHANCE_YOUR_CALM);
    // The peer's first SETTINGS: without a stream limit in it, it has none.
    if (!this.settingsReceived) this.peerMaxStreams = Number.POSITIVE_INFINITY;
    this.settingsReceived = true;
    let streamWindow = this.peerStreamWindow;
    for (let i = 0; i < n; i++) {
      const id = settingId(payload, i);
      const value = settingValue(payload, i);
      if (id === SETTINGS_INITIAL_WINDOW_SIZE) streamWindow = value;
      else if (id === SETTINGS_MAX_FRAME_SIZE) this.peerMaxFrame = value;
      else if (id === SETTINGS_MAX_CONCURRENT_STREAMS) this.peerMaxStreams = value;
      // Advisory in the RFC, but a peer that refuses a longer list refuses it per stream: a client
      // told so does not send one (request() throws HeaderListTooLarge).
      else if (id === SETTINGS_MAX_HEADER_LIST_SIZE) this.peerMaxHeaderList = value;
      // HEADER_TABLE_SIZE: the encoder uses no dynamic table.
    }
    // The streams are walked once per frame, whatever the number of entries (§6.9.2).
    const delta = streamWindow - this.peerStreamWindow;
    if (delta !== 0) {
      this.peerStreamWindow = streamWindow;
      for (const s of this.streams.values()) {
        if (s.sendWindow + delta > MAX_WINDOW) throw new ProtocolError(H2_FLOW_CONTROL_ERROR);
        s.sendWindow += delta;
      }
      if (delta > 0) for (const s of [...this.streams.values()]) this.flushStream(s);
    }
    this.frame(SETTINGS, FLAG_ACK, 0);
  }

  private onPing(flags: number, payload: Buffer): void {
    if (flags & FLAG_ACK) {
      const i = this.pings.findIndex((x) => x.payload.equals(payload));
      if (i >= 0) {
        const [entry] = this.pings.splice(i, 1);
        clearTimeout(entry!.timer);
        entry!.done();
      }
      return;
    }
    if (this.server) this.keepalivePolicy();
    this.frame(PING, FLAG_ACK, 0, Buffer.from(payload));
  }

  /**
   * grpc-go's keepalive enforcement: a PING closer than keepaliveMinIntervalMs to the previous one
   * (2 h without a stream, unless permitted) is a strike, unless this side sent HEADERS or DATA
   * since; one strike more than maxPingStrikes is GOAWAY ENHANCE_YOUR_CALM "too_many_pings". A
   * client that measures its bandwidth pings as data arrives: that data resets the strikes.
   */
  private keepalivePolicy(): void {
    const now = Date.now();
    const limits = this.limits;
    if (this.pingStrikesReset) {
      this.pingStrikesReset = false;
      this.pingStrikes = 0;
    } else {
      const min = this.streams.size > 0 || limits.keepalivePermitWithoutStream ? limits.keepaliveMinIntervalMs : PING_WITHOUT_STREAM_MS;
      if (now - this.lastPingAt < min) this.pingStrikes++;
    }
    this.lastPingAt = now;
    if (this.pingStrikes > limits.maxPingStrikes) throw new ProtocolError(H2_ENHANCE_YOUR_CALM, TOO_MANY_PINGS);
  }

  /** A frame with nothing in it and no end flag; too many in a row are a flood (CVE-2019-9518, CVE-2024-27316). */
  private emptyFrame(): void {
    if (this.server && ++this.emptyFrames > this.limits.maxConsecutiveEmptyFrames) throw new ProtocolError(H2_ENHANCE_YOUR_CALM);
  }

  private onData(flags: number, streamId: number, payload: Buffer): void {
    const length = payload.length;
    this.recvWindow -= length;
    if (this.recvWindow < 0) throw new ProtocolError(H2_FLOW_CONTROL_ERROR);
    const start = contentStart(DATA, flags);
    const end = contentEnd(flags, payload);
    const content = end - start;
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    if (content > 0) this.emptyFrames = 0;
    else if (!endStream) this.emptyFrame();
    const stream = this.streams.get(streamId);
    if (!stream) {
      // Dropped, whatever else: the connection window is returned at once.
      this.returnConnectionWindow(length);
      if (this.isIdle(streamId)) throw new ProtocolError(H2_PROTOCOL_ERROR);
      // Closed: data that crossed this side's reset is discarded (§5.1); after the stream ended
      // either way, it is a stream error STREAM_CLOSED (§6.1).
      if (!this.server || this.closedHow(streamId) === 'reset') return;
      return this.refuse(streamId, H2_STREAM_CLOSED);
    }
    if (stream.remoteEnded || !stream.headersReceived) {
      this.returnConnectionWindow(length);
      return this.resetStream(stream, H2_STREAM_CLOSED);
    }
    stream.recvWindow -= length;
    if (stream.recvWindow < 0) {
      this.returnConnectionWindow(length);
      return this.resetStream(stream, H2_FLOW_CONTROL_ERROR);
    }
    if (stream.contentLength >= 0) {
      // A request whose content-length differs from its data is malformed (RFC 9113 §8.1.1).
      stream.contentLength -= content;
      if (stream.contentLength < 0 || (endStream && stream.contentLength !== 0)) {
        this.returnConnectionWindow(length);
        return this.resetStream(stream, H2_PROTOCOL_ERROR);
      }
    }
    if (endStream) stream.remoteEnded = true;
    stream.lastActive = this.clock;
    const padding = length - content;
    if (padding > 0) {
      this.returnConnectionWindow(padding);
      this.consumed(stream, padding);
    }
    if (!stream.manualFlowControl) {
      this.returnConnectionWindow(content);
      this.consumed(stream, content);
    } else if (content > 0) {
      // Held until the owner passes it on: within the budgets the connection window is returned
      // now (a stalled stream holds back its own window only), beyond them when it is consumed.
      stream.held += content;
      this.requestBytes += content;
      this.requestDoor.used += content;
      if (this.requestBytes <= this.limits.maxRequestBytesPerConnection && this.requestDoor.used <= this.requestDoor.max) this.returnConnectionWindow(content);
      else this.owed += content;
    }
    const data = this.opts.externalRead ? Buffer.from(payload.subarray(start, end)) : payload.subarray(start, end);
    stream.onData(data, endStream);
    if (endStream && stream.localEnded) this.closeStream(stream, undefined);
  }

  private returnConnectionWindow(bytes: number): void {
    if (bytes <= 0) return;
    this.recvUnacked += bytes;
    if (this.recvUnacked >= this.limits.connectionWindowBytes / 2 || this.recvWindow < DEFAULT_WINDOW) {
      this.windowUpdate(0, this.recvUnacked);
      this.recvWindow += this.recvUnacked;
      this.recvUnacked = 0;
    }
  }

  private onHeaders(flags: number, streamId: number, payload: Buffer): void {
    // Every octet counts against the block's size, the padding and priority fields included.
    if (payload.length > this.limits.maxHeaderBlockBytes) throw new ProtocolError(H2_ENHANCE_YOUR_CALM);
    const start = contentStart(HEADERS, flags);
    const end = contentEnd(flags, payload);
    const endHeaders = (flags & FLAG_END_HEADERS) !== 0;
    if (end === start && !endHeaders) this.emptyFrame();
    else this.emptyFrames = 0;
    // A block continued in later frames is kept across reads: copied when the read buffer is reused.
    const fragment = payload.subarray(start, end);
    const kept = endHeaders || !this.opts.externalRead ? fragment : Buffer.from(fragment);
    this.headerBlock = { streamId, endStream: (flags & FLAG_END_STREAM) !== 0, fragments: [kept], bytes: payload.length, frames: 0, startedAt: this.clock };
    if (endHeaders) this.onHeaderBlock();
  }

  private onContinuation(flags: number, streamId: number, payload: Buffer): void {
    const block = this.headerBlock;
    if (!block || block.streamId !== streamId) throw new ProtocolError(H2_PROTOCOL_ERROR);
    const endHeaders = (flags & FLAG_END_HEADERS) !== 0;
    if (payload.length === 0 && !endHeaders) this.emptyFrame();
    else if (payload.length > 0) this.emptyFrames = 0;
    block.bytes += payload.length;
    if (++block.frames > this.limits.maxContinuationFrames || block.bytes > this.limits.maxHeaderBlockBytes) throw new ProtocolError(H2_ENHANCE_YOUR_CALM);
    if (payload.length > 0) block.fragments.push(this.opts.externalRead ? Buffer.from(payload) : payload);
    if (endHeaders) this.onHeaderBlock();
  }

  private onHeaderBlock(): void {
    const block = this.headerBlock!;
    this.headerBlock = undefined;
    // Always decoded, even for a stream that is gone: HPACK state is per connection.
    const headers = this.decoder.decode(block.fragments.length === 1 ? block.fragments[0]! : Buffer.concat(block.fragments));
    const tooLarge = this.decoder.listTooLarge;
    const { streamId, endStream } = block;
    let stream = this.streams.get(streamId);
    if (!stream) {
      if (!this.server) {
        // An answer to a stream this side already reset; anything else is the peer's mistake.
        if (this.isIdle(streamId)) throw new ProtocolError(H2_PROTOCOL_ERROR);
        return;
      }
      if (streamId % 2 === 0) throw new ProtocolError(H2_PROTOCOL_ERROR);
      if (streamId <= this.lastPeerStreamId) {
        // Trailers that crossed this side's reset are discarded; HEADERS on a stream that ended
        // is STREAM_CLOSED (§5.1); a lower id than one already opened, PROTOCOL_ERROR (§5.1.1).
        const how = this.closedHow(streamId);
        if (how === 'reset') return;
        throw new ProtocolError(how === 'closed' ? H2_STREAM_CLOSED : H2_PROTOCOL_ERROR);
      }
      this.lastPeerStreamId = streamId;
      if (this.goingAway || this.streams.size >= this.limits.maxConcurrentStreams) return this.refuse(streamId, H2_REFUSED_STREAM);
      // Too large once decoded (HPACK's dynamic table makes a few octets many): refused, the
      // connection serves on; gRPC clients read ENHANCE_YOUR_CALM as RESOURCE_EXHAUSTED.
      if (tooLarge) return this.refuse(streamId, H2_ENHANCE_YOUR_CALM);
      // A malformed request is a stream error (RFC 9113 §8.1.1): refused here, never handed on.
      const check = this.requestCheck;
      if (!check.request(headers) || (endStream && check.contentLength > 0)) {
        this.malformedRequests++;
        return this.refuse(streamId, H2_PROTOCOL_ERROR);
      }
      stream = new H2Stream(streamId, this, this.peerStreamWindow, this.limits.streamWindowBytes, this.clock);
      stream.contentLength = check.contentLength;
      this.streams.set(streamId, stream);
      stream.headersReceived = true;
      if (endStream) stream.remoteEnded = true;
      this.onStream(stream, headers, endStream);
      return;
    }
    if (stream.remoteEnded) return this.resetStream(stream, H2_STREAM_CLOSED);
    stream.lastActive = this.clock;
    if (tooLarge) return this.resetStream(stream, H2_ENHANCE_YOUR_CALM);
    const trailers = stream.headersReceived;
    stream.headersReceived = true;
    if (trailers && !endStream) return this.resetStream(stream, H2_PROTOCOL_ERROR);
    if (trailers && this.server && (!this.requestCheck.trailers(headers) || stream.contentLength > 0)) {
      this.malformedRequests++;
      return this.resetStream(stream, H2_PROTOCOL_ERROR);
    }
    if (endStream) stream.remoteEnded = true;
    stream.onHeaders(headers, endStream);
    if (endStream && stream.localEnded) this.closeStream(stream, undefined);
  }
}

/** The fields of `opts` that are set (an explicit undefined must not hide a default). */
function definedOf(opts: H2ConnectionOptions): Partial<H2Limits> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts)) if (v !== undefined) out[k] = v;
  return out as Partial<H2Limits>;
}

/** The value of header `name` (the first, if repeated). */
export function headerValue(headers: readonly Header[], name: string): string | undefined {
  for (const h of headers) if (h[0] === name) return h[1];
  return undefined;
}
