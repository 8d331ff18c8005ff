// HTTP/2 framing (RFC 9113 §4 and §6) without a socket or any connection state: the frame header,
// what each frame type's payload must look like on its own, and where the content of a padded
// frame lies. connection.ts keeps the state (streams, windows, settings) and calls these on every
// frame; they allocate nothing, so the check is a few comparisons per frame, and they are fuzzed
// on their own (fuzz/targets.ts "h2-frames"), as nghttp2 keeps nghttp2_frame.c apart from its
// session.

export const FRAME_HEADER_BYTES = 9;

/** Frame types (RFC 9113 §6). */
export const DATA = 0x0;
export const HEADERS = 0x1;
export const PRIORITY = 0x2;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const PUSH_PROMISE = 0x5;
export const PING = 0x6;
export const GOAWAY = 0x7;
export const WINDOW_UPDATE = 0x8;
export const CONTINUATION = 0x9;

/** Frame flags. */
export const FLAG_END_STREAM = 0x1;
export const FLAG_ACK = 0x1;
export const FLAG_END_HEADERS = 0x4;
export const FLAG_PADDED = 0x8;
export const FLAG_PRIORITY = 0x20;

/** SETTINGS parameters (RFC 9113 §6.5.2). */
export const SETTINGS_HEADER_TABLE_SIZE = 0x1;
export const SETTINGS_ENABLE_PUSH = 0x2;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
export const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
export const SETTINGS_MAX_FRAME_SIZE = 0x5;
export const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

/** Error codes (RFC 9113 §7). */
export const H2_NO_ERROR = 0x0;
export const H2_PROTOCOL_ERROR = 0x1;
export const H2_INTERNAL_ERROR = 0x2;
export const H2_FLOW_CONTROL_ERROR = 0x3;
export const H2_SETTINGS_TIMEOUT = 0x4;
export const H2_STREAM_CLOSED = 0x5;
export const H2_FRAME_SIZE_ERROR = 0x6;
export const H2_REFUSED_STREAM = 0x7;
export const H2_CANCEL = 0x8;
export const H2_COMPRESSION_ERROR = 0x9;
export const H2_ENHANCE_YOUR_CALM = 0xb;

/** The largest frame payload every endpoint takes (SETTINGS_MAX_FRAME_SIZE's initial value). */
export const DEFAULT_MAX_FRAME_BYTES = 16_384;
/** The largest SETTINGS_MAX_FRAME_SIZE (2^24−1). */
export const MAX_MAX_FRAME_BYTES = 16_777_215;
/** The largest flow-control window (2^31−1). */
export const MAX_WINDOW = 2 ** 31 - 1;

/**
 * A frame error is returned as one number: 0 for none, else the HTTP/2 error code, with
 * STREAM_ERROR set when it is a stream error (RST_STREAM on the frame's stream) rather than a
 * connection error (GOAWAY and the end).
 */
export const STREAM_ERROR = 0x100;
export const FRAME_OK = 0;

/** The error code of a frame error. */
export function errorCode(error: number): number {
  return error & 0xff;
}

/** Whether a frame error is a stream error (else it ends the connection). */
export function isStreamError(error: number): boolean {
  return (error & STREAM_ERROR) !== 0;
}

// ---- the frame header (§4.1) ----

/**
 * The whole frame's size (header and payload) at `p` when `buf` holds all of it; 0 when more bytes
 * are needed; -1 when its length field is above `maxFrameBytes` (a FRAME_SIZE_ERROR).
 */
export function frameSizeAt(buf: Buffer, p: number, maxFrameBytes: number): number {
  if (buf.length - p < FRAME_HEADER_BYTES) return 0;
  const length = (buf[p]! << 16) | (buf[p + 1]! << 8) | buf[p + 2]!;
  if (length > maxFrameBytes) return -1;
  return buf.length - p < FRAME_HEADER_BYTES + length ? 0 : FRAME_HEADER_BYTES + length;
}

/** The type of the frame at `p`. */
export function frameType(buf: Buffer, p: number): number {
  return buf[p + 3]!;
}

/** The flags of the frame at `p`. */
export function frameFlags(buf: Buffer, p: number): number {
  return buf[p + 4]!;
}

/** The stream identifier of the frame at `p`, its reserved bit ignored (§4.1). */
export function frameStreamId(buf: Buffer, p: number): number {
  return ((buf[p + 5]! & 0x7f) * 0x1000000) + ((buf[p + 6]! << 16) | (buf[p + 7]! << 8) | buf[p + 8]!);
}

/** Writes a frame header into `out` at `p`. */
export function writeFrameHeader(out: Buffer, p: number, length: number, type: number, flags: number, streamId: number): void {
  out[p] = (length >>> 16) & 0xff;
  out[p + 1] = (length >>> 8) & 0xff;
  out[p + 2] = length & 0xff;
  out[p + 3] = type;
  out[p + 4] = flags;
  out.writeUInt32BE(streamId >>> 0, p + 5);
}

// ---- payloads (§6) ----

/**
 * What is wrong with a frame on its own, whatever the state of its connection: the stream it may
 * be on, its length, padding and priority fields, and the values in SETTINGS and WINDOW_UPDATE
 * (RFC 9113 §6). FRAME_OK, or a frame error (see STREAM_ERROR). Unknown types are never wrong
 * (§5.5): they are ignored.
 */
export function frameError(type: number, flags: number, streamId: number, payload: Buffer): number {
  const length = payload.length;
  switch (type) {
    case DATA:
      if (streamId === 0) return H2_PROTOCOL_ERROR;
      return paddingError(flags, payload, 0);
    case HEADERS: {
      if (streamId === 0) return H2_PROTOCOL_ERROR;
      const fixed = flags & FLAG_PRIORITY ? 5 : 0;
      const padded = flags & FLAG_PADDED ? 1 : 0;
      const error = paddingError(flags, payload, fixed);
      if (error !== FRAME_OK) return error;
      // No room for the priority fields (§4.2: too small for its mandatory fields).
      if (length < padded + fixed) return H2_FRAME_SIZE_ERROR;
      // A stream that depends on itself (§5.3.1).
      if (fixed && dependency(payload, padded) === streamId) return H2_PROTOCOL_ERROR | STREAM_ERROR;
      return FRAME_OK;
    }
    case PRIORITY:
      if (streamId === 0) return H2_PROTOCOL_ERROR;
      if (length !== 5) return H2_FRAME_SIZE_ERROR | STREAM_ERROR;
      if (dependency(payload, 0) === streamId) return H2_PROTOCOL_ERROR | STREAM_ERROR;
      return FRAME_OK;
    case RST_STREAM:
      if (streamId === 0) return H2_PROTOCOL_ERROR;
      return length === 4 ? FRAME_OK : H2_FRAME_SIZE_ERROR;
    case SETTINGS:
      if (streamId !== 0) return H2_PROTOCOL_ERROR;
      if (flags & FLAG_ACK) return length === 0 ? FRAME_OK : H2_FRAME_SIZE_ERROR;
      if (length % 6 !== 0) return H2_FRAME_SIZE_ERROR;
      return settingsError(payload);
    case PUSH_PROMISE:
      // Push is off (a client's SETTINGS say so) and a server never receives it (§8.4).
      return H2_PROTOCOL_ERROR;
    case PING:
      if (streamId !== 0) return H2_PROTOCOL_ERROR;
      return length === 8 ? FRAME_OK : H2_FRAME_SIZE_ERROR;
    case GOAWAY:
      if (streamId !== 0) return H2_PROTOCOL_ERROR;
      return length >= 8 ? FRAME_OK : H2_FRAME_SIZE_ERROR;
    case WINDOW_UPDATE:
      if (length !== 4) return H2_FRAME_SIZE_ERROR;
      if (windowIncrement(payload) === 0) return streamId === 0 ? H2_PROTOCOL_ERROR : H2_PROTOCOL_ERROR | STREAM_ERROR;
      return FRAME_OK;
    case CONTINUATION:
      return streamId === 0 ? H2_PROTOCOL_ERROR : FRAME_OK;
    default:
      return FRAME_OK;
  }
}

/** Padding that leaves no room for the content is a connection error PROTOCOL_ERROR (§6.1, §6.2). */
function paddingError(flags: number, payload: Buffer, fixed: number): number {
  if (!(flags & FLAG_PADDED)) return FRAME_OK;
  // The pad length octet, the fixed fields and the padding must fit; the content may be empty. A
  // PADDED frame without even the pad length octet is refused the same way (read as a pad length
  // of 0 it would leave a content of -1 octets).
  return payload.length < 1 || 1 + fixed + payload[0]! > payload.length ? H2_PROTOCOL_ERROR : FRAME_OK;
}

/** The stream a priority block at `p` depends on. */
function dependency(payload: Buffer, p: number): number {
  return payload.readUInt32BE(p) & 0x7fffffff;
}

/** Where the content of a DATA or HEADERS frame starts: after the pad length and priority fields. */
export function contentStart(type: number, flags: number): number {
  return (flags & FLAG_PADDED ? 1 : 0) + (type === HEADERS && flags & FLAG_PRIORITY ? 5 : 0);
}

/** Where the content of a DATA or HEADERS frame ends: before its padding. Only for a frame frameError passed. */
export function contentEnd(flags: number, payload: Buffer): number {
  return flags & FLAG_PADDED ? payload.length - payload[0]! : payload.length;
}

/** A WINDOW_UPDATE's increment (its reserved bit ignored). */
export function windowIncrement(payload: Buffer): number {
  return payload.readUInt32BE(0) & 0x7fffffff;
}

/** An RST_STREAM's error code. */
export function rstCode(payload: Buffer): number {
  return payload.readUInt32BE(0);
}

/** Entries in a SETTINGS payload. */
export function settingsCount(payload: Buffer): number {
  return (payload.length / 6) | 0;
}

/** The identifier of SETTINGS entry `i`. */
export function settingId(payload: Buffer, i: number): number {
  return payload.readUInt16BE(i * 6);
}

/** The value of SETTINGS entry `i`. */
export function settingValue(payload: Buffer, i: number): number {
  return payload.readUInt32BE(i * 6 + 2);
}

/** Values no SETTINGS may carry (§6.5.2); unknown identifiers are ignored. */
function settingsError(payload: Buffer): number {
  const n = settingsCount(payload);
  for (let i = 0; i < n; i++) {
    const id = settingId(payload, i);
    const value = settingValue(payload, i);
    if (id === SETTINGS_ENABLE_PUSH && value > 1) return H2_PROTOCOL_ERROR;
    if (id === SETTINGS_INITIAL_WINDOW_SIZE && value > MAX_WINDOW) return H2_FLOW_CONTROL_ERROR;
    if (id === SETTINGS_MAX_FRAME_SIZE && (value < DEFAULT_MAX_FRAME_BYTES || value > MAX_MAX_FRAME_BYTES)) return H2_PROTOCOL_ERROR;
  }
  return FRAME_OK;
}

/** A GOAWAY's last stream identifier. */
export function goawayLastStreamId(payload: Buffer): number {
  return payload.readUInt32BE(0) & 0x7fffffff;
}

/** A GOAWAY's error code. */
export function goawayCode(payload: Buffer): number {
  return payload.readUInt32BE(4);
}
