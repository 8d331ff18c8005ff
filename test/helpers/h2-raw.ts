// A raw-frame HTTP/2 client for the conformance and hostile suites: it writes any frame byte for
// byte, malformed ones included, reads and keeps every frame the peer sends, answers the peer's
// SETTINGS and PINGs only when told to, and reports GOAWAY, RST_STREAM and the end of the
// connection. Field blocks are built with the project's own encoder (static indices and literals,
// lib/h2/hpack.ts) or by hand (the `hpack` helpers) when a test needs a dynamic table, Huffman
// strings or a broken block; the peer's blocks are decoded with the project's decoder.
import net from 'node:net';
import { encodeHeaders, HpackDecoder, type Header } from '../../lib/h2/hpack';

export type { Header };

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Frame types (RFC 9113 §6). */
export const FRAME = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Frame flags (RFC 9113 §6). */
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

/** SETTINGS parameters (RFC 9113 §6.5.2). */
export const SETTING = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** Error codes (RFC 9113 §7). */
export const ERROR = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

export type ErrorName = keyof typeof ERROR;

/** The name of an error code, or its number in hex when it has none. */
export function errorName(code: number): string {
  for (const [name, value] of Object.entries(ERROR)) if (value === code) return name;
  return `0x${code.toString(16)}`;
}

const EMPTY = Buffer.alloc(0);
/** The default SETTINGS_INITIAL_WINDOW_SIZE and connection window (RFC 9113 §6.9.2). */
export const DEFAULT_WINDOW = 65_535;
/** The largest frame payload a peer must accept without a SETTINGS_MAX_FRAME_SIZE of its own. */
export const DEFAULT_MAX_FRAME = 16_384;

/**
 * A frame: the 9-octet header and `payload`. `length` writes another value in the length field (a
 * frame that lies about its size); `reserved` sets the reserved bit of the stream identifier.
 */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = EMPTY, opts: { length?: number; reserved?: boolean } = {}): Buffer {
  const out = Buffer.allocUnsafe(9 + payload.length);
  out.writeUIntBE(opts.length ?? payload.length, 0, 3);
  out[3] = type;
  out[4] = flags;
  out.writeUInt32BE(((opts.reserved ? 0x80000000 : 0) | streamId) >>> 0, 5);
  payload.copy(out, 9);
  return out;
}

/** A SETTINGS payload of `entries` [identifier, value], in order. */
export function settingsPayload(entries: readonly (readonly [number, number])[]): Buffer {
  const out = Buffer.allocUnsafe(entries.length * 6);
  entries.forEach(([id, value], i) => {
    out.writeUInt16BE(id, i * 6);
    out.writeUInt32BE(value >>> 0, i * 6 + 2);
  });
  return out;
}

/** A 32-bit big-endian value (RST_STREAM and WINDOW_UPDATE payloads). */
export function u32(value: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(value >>> 0, 0);
  return out;
}

/** A GOAWAY payload. */
export function goawayPayload(lastStreamId: number, code: number, debug = ''): Buffer {
  return Buffer.concat([u32(lastStreamId), u32(code), Buffer.from(debug, 'latin1')]);
}

/** The priority fields of HEADERS or the PRIORITY payload: dependency, exclusive bit, weight. */
export function priorityFields(dependsOn: number, weight = 16, exclusive = false): Buffer {
  const out = Buffer.allocUnsafe(5);
  out.writeUInt32BE(((exclusive ? 0x80000000 : 0) | dependsOn) >>> 0, 0);
  out[4] = weight - 1;
  return out;
}

/** A PADDED payload: the pad length octet, `content`, then `padLength` zero octets. */
export function padded(content: Buffer, padLength: number): Buffer {
  return Buffer.concat([Buffer.from([padLength]), content, Buffer.alloc(padLength)]);
}

/** One gRPC length-prefixed message, uncompressed. */
export function grpcMessage(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** HPACK representations written by hand (RFC 7541 §5–6). */
export const hpack = {
  /** An integer with an N-bit prefix whose other bits are `high` (§5.1). */
  int(prefixBits: number, high: number, value: number): Buffer {
    const max = (1 << prefixBits) - 1;
    if (value < max) return Buffer.from([high | value]);
    const out = [high | max];
    let rest = value - max;
    while (rest >= 0x80) {
      out.push((rest % 0x80) | 0x80);
      rest = Math.floor(rest / 0x80);
    }
    out.push(rest);
    return Buffer.from(out);
  },
  /** A string literal, raw octets (§5.2, H = 0). */
  string(value: string | Buffer): Buffer {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
    return Buffer.concat([hpack.int(7, 0x00, bytes.length), bytes]);
  },
  /** A string literal whose octets are already Huffman-coded (§5.2, H = 1). */
  huffman(coded: Buffer): Buffer {
    return Buffer.concat([hpack.int(7, 0x80, coded.length), coded]);
  },
  /** An indexed field (§6.1). */
  indexed(index: number): Buffer {
    return hpack.int(7, 0x80, index);
  },
  /** A literal field with incremental indexing and a new name (§6.2.1): it enters the dynamic table. */
  indexedLiteral(name: string, value: string | Buffer): Buffer {
    return Buffer.concat([Buffer.from([0x40]), hpack.string(name), hpack.string(value)]);
  },
  /** A literal field with incremental indexing whose name is at `nameIndex` (§6.2.1). */
  indexedLiteralNamed(nameIndex: number, value: string | Buffer): Buffer {
    return Buffer.concat([hpack.int(6, 0x40, nameIndex), hpack.string(value)]);
  },
  /** A literal field without indexing whose name is at `nameIndex` (§6.2.2). */
  literalNamed(nameIndex: number, value: string | Buffer): Buffer {
    return Buffer.concat([hpack.int(4, 0x00, nameIndex), hpack.string(value)]);
  },
  /** A literal field without indexing, new name (§6.2.2). */
  literal(name: string, value: string | Buffer): Buffer {
    return Buffer.concat([Buffer.from([0x00]), hpack.string(name), hpack.string(value)]);
  },
  /** A dynamic table size update (§6.3). */
  sizeUpdate(size: number): Buffer {
    return hpack.int(5, 0x20, size);
  },
};

/** A field block of `headers` by the project's encoder (no dynamic table, no Huffman). */
export function fieldBlock(headers: readonly Header[]): Buffer {
  return Buffer.from(encodeHeaders(headers));
}

/** A frame as received. */
export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  /** The payload; DATA payloads beyond the first MiB a connection received are not kept (empty). */
  payload: Buffer;
  length: number;
}

/** How a connection ended, or what ended a stream. */
export interface Goaway {
  lastStreamId: number;
  code: number;
  debug: string;
}

export interface RawConnectOptions {
  /** Send the client preface and a SETTINGS frame at once (default true). */
  preface?: boolean;
  /** The entries of that SETTINGS frame (default none). */
  settings?: readonly (readonly [number, number])[];
  /** Acknowledge the peer's SETTINGS (default: when the preface is sent). */
  ackSettings?: boolean;
  /** Answer the peer's PINGs (default: when the preface is sent). */
  ackPings?: boolean;
  /**
   * Read what the peer sends (default true). False: the socket is never read, so the kernel's
   * buffers fill and the peer's output queues up on its side, until resume() is called.
   */
  read?: boolean;
  /** Send WINDOW_UPDATEs for DATA received, connection and stream (default true). */
  replenish?: boolean;
  /**
   * Keep every frame received in `frames` (default true). False for floods, whose answers would
   * fill this process: GOAWAY, resets, SETTINGS and field blocks are still tracked.
   */
  record?: boolean;
}

/** A raw HTTP/2 client connection. */
export class RawH2Client {
  /** Every frame received, in order. */
  readonly frames: Frame[] = [];
  /** The peer's first GOAWAY. */
  goaway: Goaway | undefined;
  /** RST_STREAM codes received, by stream. */
  readonly resets = new Map<number, number>();
  /** The peer's SETTINGS as they stand (values it sent). */
  readonly peerSettings = new Map<number, number>();
  /** Whether the peer's first SETTINGS frame (its preface) arrived, and whether it acknowledged ours. */
  peerSettingsReceived = false;
  settingsAcked = 0;
  /** Decoded field blocks received, by stream (headers, then trailers). */
  readonly headerBlocks = new Map<number, Header[][]>();
  /** DATA octets received, by stream. */
  readonly dataBytes = new Map<number, number>();
  /** Streams the peer ended with END_STREAM. */
  readonly ended = new Set<number>();
  /** Payloads (hex) of the PING ACKs received; at most 10,000 kept. */
  private readonly pingAcks = new Set<string>();
  /** The TCP connection is closed (either way). */
  closed = false;
  /** The peer reset the TCP connection (rather than closing it). */
  reset = false;
  /** Octets written that the socket took. */
  bytesWritten = 0;

  /** What may still be sent: the connection window and each stream's, as the peer opened them. */
  sendWindow = DEFAULT_WINDOW;
  private readonly streamWindows = new Map<number, number>();

  private readonly socket: net.Socket;
  private readonly decoder = new HpackDecoder(4096, 1 << 24);
  private pending: Buffer = EMPTY;
  private block: { streamId: number; fragments: Buffer[] } | undefined;
  private keptData = 0;
  private readonly waiters = new Set<() => void>();
  private readonly opts: Required<RawConnectOptions>;
  readonly closedPromise: Promise<void>;

  private constructor(socket: net.Socket, opts: RawConnectOptions) {
    this.socket = socket;
    // A connection that sends no preface answers nothing unless told to: an ACK would be its first bytes.
    this.opts = { preface: true, settings: [], ackSettings: opts.preface ?? true, ackPings: opts.preface ?? true, read: true, replenish: true, record: true, ...opts };
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET') this.reset = true;
    });
    this.closedPromise = new Promise((resolve) =>
      socket.once('close', () => {
        this.closed = true;
        this.wake();
        resolve();
      }),
    );
    if (!this.opts.read) socket.pause();
  }

  /** Connects to `address` (host:port); sends the preface and SETTINGS unless told not to. */
  static connect(address: string, opts: RawConnectOptions = {}): Promise<RawH2Client> {
    const colon = address.lastIndexOf(':');
    const socket = net.connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)) });
    const client = new RawH2Client(socket, opts);
    return new Promise((resolve, reject) => {
      socket.once('connect', () => {
        socket.off('error', reject);
        if (client.opts.preface) client.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0, settingsPayload(client.opts.settings))]));
        resolve(client);
      });
      socket.once('error', reject);
    });
  }

  /**
   * Connects, sends the preface and SETTINGS, and waits until the peer's SETTINGS arrived and ours
   * were acknowledged (the handshake of RFC 9113 §3.4).
   */
  static async open(address: string, opts: Omit<RawConnectOptions, 'preface' | 'read'> = {}, timeoutMs = 5_000): Promise<RawH2Client> {
    const client = await RawH2Client.connect(address, { ...opts, preface: true, read: true });
    try {
      await client.until('the peer\'s SETTINGS and the ACK of ours', () => client.peerSettingsReceived && client.settingsAcked > 0, timeoutMs);
    } catch (err) {
      client.destroy();
      throw err;
    }
    return client;
  }

  // ---- writing ----

  /** Writes `bytes` as they are; false when the socket's buffer is full (see drained()). */
  write(bytes: Buffer): boolean {
    if (this.closed || this.socket.destroyed) return false;
    this.bytesWritten += bytes.length;
    return this.socket.write(bytes);
  }

  /** Writes one frame. */
  send(type: number, flags: number, streamId: number, payload: Buffer = EMPTY, opts: { length?: number; reserved?: boolean } = {}): boolean {
    return this.write(frame(type, flags, streamId, payload, opts));
  }

  /** Octets written but not yet taken by the kernel. */
  get unsent(): number {
    return this.socket.writableLength;
  }

  /** Resolves once the socket's buffer has room again, the connection closed, or `timeoutMs` passed; true when it has room. */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (!this.socket.writableNeedDrain) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.socket.off('drain', onDrain);
        this.socket.off('close', onClose);
        resolve(ok);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.socket.once('drain', onDrain);
      this.socket.once('close', onClose);
    });
  }

  /**
   * HEADERS carrying `headers` (a list, encoded by the project's encoder, or a block as it is);
   * END_HEADERS unless `endHeaders` is false; `padLength` adds padding, `priority` the priority fields.
   */
  headers(streamId: number, headers: readonly Header[] | Buffer, opts: { endStream?: boolean; endHeaders?: boolean; padLength?: number; priority?: Buffer } = {}): boolean {
    let payload = Buffer.isBuffer(headers) ? headers : fieldBlock(headers);
    let flags = (opts.endStream ? FLAG.END_STREAM : 0) | (opts.endHeaders === false ? 0 : FLAG.END_HEADERS);
    if (opts.priority) {
      payload = Buffer.concat([opts.priority, payload]);
      flags |= FLAG.PRIORITY;
    }
    if (opts.padLength !== undefined) {
      payload = padded(payload, opts.padLength);
      flags |= FLAG.PADDED;
    }
    this.streamWindows.set(streamId, this.initialStreamWindow);
    return this.send(FRAME.HEADERS, flags, streamId, payload);
  }

  /** CONTINUATION with `fragment` (a block or a header list). */
  continuation(streamId: number, fragment: readonly Header[] | Buffer, endHeaders = true): boolean {
    return this.send(FRAME.CONTINUATION, endHeaders ? FLAG.END_HEADERS : 0, streamId, Buffer.isBuffer(fragment) ? fragment : fieldBlock(fragment));
  }

  /** DATA; counted against the windows this client keeps (the frame is sent whatever they say). */
  data(streamId: number, payload: Buffer, endStream = false, padLength?: number): boolean {
    const body = padLength === undefined ? payload : padded(payload, padLength);
    this.sendWindow -= body.length;
    this.streamWindows.set(streamId, this.streamWindow(streamId) - body.length);
    return this.send(FRAME.DATA, (endStream ? FLAG.END_STREAM : 0) | (padLength === undefined ? 0 : FLAG.PADDED), streamId, body);
  }

  /** RST_STREAM with `code`. */
  rstStream(streamId: number, code: number = ERROR.CANCEL): boolean {
    return this.send(FRAME.RST_STREAM, 0, streamId, u32(code));
  }

  /** WINDOW_UPDATE by `increment`. */
  windowUpdate(streamId: number, increment: number): boolean {
    return this.send(FRAME.WINDOW_UPDATE, 0, streamId, u32(increment));
  }

  /** SETTINGS with `entries`. */
  settings(entries: readonly (readonly [number, number])[]): boolean {
    return this.send(FRAME.SETTINGS, 0, 0, settingsPayload(entries));
  }

  /** GOAWAY. */
  goAway(lastStreamId: number, code: number = ERROR.NO_ERROR): boolean {
    return this.send(FRAME.GOAWAY, 0, 0, goawayPayload(lastStreamId, code));
  }

  /** PING with an 8-octet payload made from `n`. */
  ping(n: number, ack = false): boolean {
    return this.send(FRAME.PING, ack ? FLAG.ACK : 0, 0, pingPayload(n));
  }

  /**
   * A gRPC request as a well-behaved client sends it: HEADERS for POST `path` and, when `message`
   * is given, one DATA frame with it as a gRPC message and END_STREAM.
   */
  grpcRequest(streamId: number, path: string, message?: Buffer, extra: readonly Header[] = []): void {
    this.headers(streamId, grpcRequestHeaders(path, extra), { endStream: message === undefined });
    if (message !== undefined) this.data(streamId, grpcMessage(message), true);
  }

  // ---- flow control, as the peer grants it ----

  /** The peer's SETTINGS_INITIAL_WINDOW_SIZE. */
  get initialStreamWindow(): number {
    return this.peerSettings.get(SETTING.INITIAL_WINDOW_SIZE) ?? DEFAULT_WINDOW;
  }

  /** What may still be sent on `streamId`. */
  streamWindow(streamId: number): number {
    return this.streamWindows.get(streamId) ?? this.initialStreamWindow;
  }

  /**
   * Sends `total` octets of DATA on `streamId` as the peer's windows allow, in frames of at most
   * 16 KiB; ends the stream after them when `endStream`. Stops when all is sent, the connection
   * closes, the peer ends the stream, the windows stay shut for `stallMs`, or `deadline` (epoch ms)
   * passes. Resolves to the octets sent.
   */
  async upload(streamId: number, total: number, opts: { endStream?: boolean; stallMs?: number; deadline?: number; fill?: number } = {}): Promise<number> {
    const chunk = Buffer.alloc(DEFAULT_MAX_FRAME, opts.fill ?? 0);
    let sent = 0;
    let stalledSince = 0;
    while (sent < total && !this.streamEnded(streamId)) {
      if (opts.deadline !== undefined && Date.now() > opts.deadline) break;
      const n = Math.min(total - sent, this.sendWindow, this.streamWindow(streamId), DEFAULT_MAX_FRAME);
      if (n <= 0) {
        stalledSince ||= Date.now();
        if (Date.now() - stalledSince > (opts.stallMs ?? 1_000)) break;
        await this.next(50);
        continue;
      }
      stalledSince = 0;
      const last = sent + n === total && opts.endStream === true;
      const ok = this.data(streamId, n === chunk.length ? chunk : chunk.subarray(0, n), last);
      sent += n;
      if (!ok) await this.drained(1_000);
    }
    return sent;
  }

  // ---- reading ----

  /** Starts reading a connection made with `read: false`. */
  resume(): void {
    this.socket.resume();
  }

  /** Ends the connection at once. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Closes this side gracefully (FIN). */
  end(): void {
    this.socket.end();
  }

  /** Resolves when something arrives or the connection closes, or after `timeoutMs`. */
  next(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, timeoutMs);
      this.waiters.add(wake);
    });
  }

  /** Resolves once `check` holds; rejects naming `what` after `timeoutMs`. */
  async until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await this.next(Math.max(1, deadline - Date.now()));
    }
  }

  /** Resolves true once the connection has closed, false after `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await this.next(deadline - Date.now());
    return this.closed;
  }

  /** Whether a PING ACK with the payload of `n` has arrived. */
  pingAcked(n: number): boolean {
    return this.pingAcks.has(pingPayload(n).toString('hex'));
  }

  /**
   * What the peer did about what was just sent, in the order it did it: this sends a PING and
   * waits for the first of GOAWAY, RST_STREAM on `streamId` (when given), the end of the
   * connection, or the PING's ACK, which means the peer read everything before it and answered
   * none of it with an error. Returns 'GOAWAY <code>', 'RST_STREAM <code>', 'closed' or 'ignored'
   * ('timeout' when none came within `timeoutMs`).
   */
  async reaction(streamId?: number, timeoutMs = 5_000): Promise<string> {
    const marker = 0x5eed0000 + ((Math.random() * 0xffff) | 0);
    this.ping(marker);
    const deadline = Date.now() + timeoutMs;
    // The peer answers in order, so whatever it sent before the ACK has been read by then.
    for (;;) {
      if (this.goaway) return `GOAWAY ${errorName(this.goaway.code)}`;
      if (streamId !== undefined && this.resets.has(streamId)) return `RST_STREAM ${errorName(this.resets.get(streamId)!)}`;
      if (this.pingAcked(marker)) return 'ignored';
      if (this.closed) return 'closed';
      if (Date.now() >= deadline) return 'timeout';
      await this.next(deadline - Date.now());
    }
  }

  /**
   * A connection error as RFC 9113 §5.4.1 has it: GOAWAY with `code`, then the TCP connection
   * closes. Resolves to 'GOAWAY <code> and closed', or what happened instead.
   */
  async connectionError(timeoutMs = 5_000): Promise<string> {
    const reaction = await this.reaction(undefined, timeoutMs);
    if (!reaction.startsWith('GOAWAY')) return reaction;
    return (await this.closedWithin(timeoutMs)) ? `${reaction} and closed` : `${reaction}, still open`;
  }

  /**
   * Waits, sending nothing, for the peer to end the connection: 'GOAWAY <code> and closed',
   * 'GOAWAY <code>, still open', 'closed', or 'none' when nothing came within `timeoutMs`. For a
   * frame under test inside an unfinished field block, where reaction()'s PING would itself be the
   * error.
   */
  async goawayWithin(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.goaway && !this.closed && Date.now() < deadline) await this.next(deadline - Date.now());
    if (!this.goaway) return this.closed ? 'closed' : 'none';
    const code = `GOAWAY ${errorName(this.goaway.code)}`;
    return (await this.closedWithin(Math.max(1_000, deadline - Date.now()))) ? `${code} and closed` : `${code}, still open`;
  }

  /** The field blocks received on `streamId`: its response headers, then trailers. */
  blocks(streamId: number): Header[][] {
    return this.headerBlocks.get(streamId) ?? [];
  }

  /** Whether the peer ended `streamId` (END_STREAM, a reset, or the connection's end). */
  streamEnded(streamId: number): boolean {
    return this.closed || this.resets.has(streamId) || this.ended.has(streamId);
  }

  /**
   * Waits for the peer to end `streamId` and returns how: ':status <s> grpc-status <g>' for an
   * answer, 'RST_STREAM <code>', 'GOAWAY <code>' or 'closed'; 'timeout' after `timeoutMs`.
   */
  async response(streamId: number, timeoutMs = 5_000): Promise<string> {
    try {
      await this.until(`the end of stream ${streamId}`, () => this.streamEnded(streamId), timeoutMs);
    } catch {
      return 'timeout';
    }
    const blocks = this.blocks(streamId);
    if (blocks.length > 0 && !this.resets.has(streamId)) {
      const status = valueOf(blocks[0]!, ':status');
      const grpc = blocks.map((b) => valueOf(b, 'grpc-status')).find((v) => v !== undefined);
      return `:status ${status ?? '-'} grpc-status ${grpc ?? '-'}`;
    }
    if (this.resets.has(streamId)) return `RST_STREAM ${errorName(this.resets.get(streamId)!)}`;
    if (this.goaway) return `GOAWAY ${errorName(this.goaway.code)}`;
    return 'closed';
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private receive(chunk: Buffer): void {
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let p = 0;
    while (buf.length - p >= 9) {
      const length = buf.readUIntBE(p, 3);
      if (buf.length - p < 9 + length) break;
      const type = buf[p + 3]!;
      const flags = buf[p + 4]!;
      const streamId = buf.readUInt32BE(p + 5) & 0x7fffffff;
      let payload = buf.subarray(p + 9, p + 9 + length);
      p += 9 + length;
      if (type === FRAME.DATA) {
        this.keptData += length;
        payload = this.keptData <= 1 << 20 ? Buffer.from(payload) : EMPTY;
      } else payload = Buffer.from(payload);
      const f: Frame = { type, flags, streamId, payload, length };
      if (this.opts.record) this.frames.push(f);
      this.onFrame(f);
    }
    this.pending = p < buf.length ? Buffer.from(buf.subarray(p)) : EMPTY;
    this.wake();
  }

  private onFrame(f: Frame): void {
    switch (f.type) {
      case FRAME.SETTINGS:
        if (f.flags & FLAG.ACK) {
          this.settingsAcked++;
          return;
        }
        for (let i = 0; i + 6 <= f.payload.length; i += 6) {
          const id = f.payload.readUInt16BE(i);
          const value = f.payload.readUInt32BE(i + 2);
          if (id === SETTING.INITIAL_WINDOW_SIZE) {
            const delta = value - this.initialStreamWindow;
            for (const [s, w] of this.streamWindows) this.streamWindows.set(s, w + delta);
          }
          this.peerSettings.set(id, value);
        }
        this.peerSettingsReceived = true;
        if (this.opts.ackSettings) this.send(FRAME.SETTINGS, FLAG.ACK, 0);
        return;
      case FRAME.PING:
        if (f.flags & FLAG.ACK) {
          if (this.pingAcks.size >= 10_000) this.pingAcks.clear();
          this.pingAcks.add(f.payload.toString('hex'));
        } else if (this.opts.ackPings) this.send(FRAME.PING, FLAG.ACK, 0, f.payload);
        return;
      case FRAME.GOAWAY:
        if (!this.goaway && f.payload.length >= 8) {
          this.goaway = { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4), debug: f.payload.toString('latin1', 8) };
        }
        return;
      case FRAME.RST_STREAM:
        if (f.payload.length >= 4) this.resets.set(f.streamId, f.payload.readUInt32BE(0));
        return;
      case FRAME.WINDOW_UPDATE: {
        const increment = f.payload.readUInt32BE(0) & 0x7fffffff;
        if (f.streamId === 0) this.sendWindow += increment;
        else this.streamWindows.set(f.streamId, this.streamWindow(f.streamId) + increment);
        return;
      }
      case FRAME.DATA:
        if (f.flags & FLAG.END_STREAM) this.ended.add(f.streamId);
        this.dataBytes.set(f.streamId, (this.dataBytes.get(f.streamId) ?? 0) + f.length);
        if (this.opts.replenish && f.length > 0) {
          this.windowUpdate(0, f.length);
          if (!(f.flags & FLAG.END_STREAM)) this.windowUpdate(f.streamId, f.length);
        }
        return;
      case FRAME.HEADERS: {
        let start = 0;
        let end = f.payload.length;
        if (f.flags & FLAG.PADDED) {
          end -= f.payload[0] ?? 0;
          start = 1;
        }
        if (f.flags & FLAG.PRIORITY) start += 5;
        if (f.flags & FLAG.END_STREAM) this.ended.add(f.streamId);
        this.block = { streamId: f.streamId, fragments: [f.payload.subarray(start, Math.max(start, end))] };
        if (f.flags & FLAG.END_HEADERS) this.endBlock();
        return;
      }
      case FRAME.CONTINUATION:
        this.block?.fragments.push(f.payload);
        if (f.flags & FLAG.END_HEADERS) this.endBlock();
        return;
      default:
    }
  }

  private endBlock(): void {
    const block = this.block!;
    this.block = undefined;
    let headers: Header[];
    try {
      headers = this.decoder.decode(Buffer.concat(block.fragments));
    } catch (err) {
      headers = [['x-undecodable', String(err)]];
    }
    const list = this.headerBlocks.get(block.streamId) ?? [];
    list.push(headers);
    this.headerBlocks.set(block.streamId, list);
  }
}

function pingPayload(n: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeUInt32BE(n >>> 0, 4);
  return out;
}

/** The value of `name` in a header list. */
export function valueOf(headers: readonly Header[], name: string): string | undefined {
  return headers.find((h) => h[0] === name)?.[1];
}

/** The headers of a gRPC request to `path`, in the order gRPC clients send them. */
export function grpcRequestHeaders(path: string, extra: readonly Header[] = []): Header[] {
  return [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', 'infermesh.test'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ...extra,
  ];
}
