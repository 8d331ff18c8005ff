// lib/h2/frames.ts on its own, no socket: the frame header, and every check a frame's payload gets
// before any state is looked at (RFC 9113 §4 and §6), as a table by section.
import {
  CONTINUATION,
  DATA,
  DEFAULT_MAX_FRAME_BYTES,
  FLAG_ACK,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FLAG_PADDED,
  FLAG_PRIORITY,
  FRAME_OK,
  GOAWAY,
  H2_FLOW_CONTROL_ERROR,
  H2_FRAME_SIZE_ERROR,
  H2_PROTOCOL_ERROR,
  HEADERS,
  PING,
  PRIORITY,
  PUSH_PROMISE,
  RST_STREAM,
  SETTINGS,
  SETTINGS_ENABLE_PUSH,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SETTINGS_MAX_FRAME_SIZE,
  STREAM_ERROR,
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
  settingId,
  settingValue,
  settingsCount,
  windowIncrement,
  writeFrameHeader,
} from '../../../../lib/h2/frames';

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function settings(...entries: [number, number][]): Buffer {
  const b = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, v], i) => {
    b.writeUInt16BE(id, i * 6);
    b.writeUInt32BE(v >>> 0, i * 6 + 2);
  });
  return b;
}

function frame(type: number, flags: number, streamId: number, payload: Buffer, length = payload.length): Buffer {
  const out = Buffer.alloc(9 + payload.length);
  writeFrameHeader(out, 0, length, type, flags, streamId);
  payload.copy(out, 9);
  return out;
}

describe('the frame header (§4.1)', () => {
  it('reads length, type, flags and stream id, ignoring the reserved bit', () => {
    const f = frame(HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, 2 ** 31 - 1, Buffer.from('abc'));
    f[5]! |= 0x80; // the reserved bit
    expect(frameSizeAt(f, 0, DEFAULT_MAX_FRAME_BYTES)).toBe(12);
    expect(frameType(f, 0)).toBe(HEADERS);
    expect(frameFlags(f, 0)).toBe(FLAG_END_HEADERS | FLAG_END_STREAM);
    expect(frameStreamId(f, 0)).toBe(2 ** 31 - 1);
  });

  it('asks for more bytes until the whole frame is there, at any offset', () => {
    const two = Buffer.concat([frame(PING, 0, 0, Buffer.alloc(8)), frame(DATA, 0, 3, Buffer.alloc(100))]);
    expect(frameSizeAt(two, 0, DEFAULT_MAX_FRAME_BYTES)).toBe(17);
    expect(frameSizeAt(two, 17, DEFAULT_MAX_FRAME_BYTES)).toBe(109);
    for (let cut = 17; cut < two.length; cut++) expect(frameSizeAt(two.subarray(0, cut), 17, DEFAULT_MAX_FRAME_BYTES)).toBe(0);
    expect(frameStreamId(two, 17)).toBe(3);
  });

  it('refuses a length above the maximum frame size from the header alone (§4.2)', () => {
    const header = frame(DATA, 0, 1, Buffer.alloc(0), DEFAULT_MAX_FRAME_BYTES + 1);
    expect(frameSizeAt(header, 0, DEFAULT_MAX_FRAME_BYTES)).toBe(-1);
    expect(frameSizeAt(frame(DATA, 0, 1, Buffer.alloc(DEFAULT_MAX_FRAME_BYTES)), 0, DEFAULT_MAX_FRAME_BYTES)).toBe(9 + DEFAULT_MAX_FRAME_BYTES);
  });
});

/** [section, what, type, flags, stream, payload, expected error]. */
const CASES: [string, string, number, number, number, Buffer, number][] = [
  ['§6.1', 'DATA on stream 0', DATA, 0, 0, Buffer.from('x'), H2_PROTOCOL_ERROR],
  ['§6.1', 'DATA', DATA, FLAG_END_STREAM, 1, Buffer.from('x'), FRAME_OK],
  ['§6.1', 'padded DATA with empty content', DATA, FLAG_PADDED, 1, Buffer.from([2, 0, 0]), FRAME_OK],
  ['§6.1', 'padding as long as the payload', DATA, FLAG_PADDED, 1, Buffer.from([2, 0]), H2_PROTOCOL_ERROR],
  ['§6.1', 'PADDED with no pad length', DATA, FLAG_PADDED, 1, Buffer.alloc(0), H2_PROTOCOL_ERROR],
  ['§6.2', 'HEADERS on stream 0', HEADERS, FLAG_END_HEADERS, 0, Buffer.from([0x82]), H2_PROTOCOL_ERROR],
  ['§6.2', 'HEADERS with PADDED and an empty payload', HEADERS, FLAG_PADDED, 1, Buffer.alloc(0), H2_PROTOCOL_ERROR],
  ['§6.2', 'HEADERS whose padding leaves no room', HEADERS, FLAG_PADDED, 1, Buffer.from([5, 0x82, 0, 0]), H2_PROTOCOL_ERROR],
  ['§6.2', 'HEADERS padded to an empty fragment', HEADERS, FLAG_PADDED, 1, Buffer.from([2, 0, 0]), FRAME_OK],
  ['§6.2', 'HEADERS too short for its priority fields', HEADERS, FLAG_PRIORITY, 1, Buffer.from([0, 0, 0]), H2_FRAME_SIZE_ERROR],
  ['§6.2', 'HEADERS whose padding eats the priority fields', HEADERS, FLAG_PADDED | FLAG_PRIORITY, 1, Buffer.concat([Buffer.from([3]), u32(0), Buffer.from([15])]), H2_PROTOCOL_ERROR],
  ['§5.3.1', 'HEADERS depending on their own stream', HEADERS, FLAG_PRIORITY, 3, Buffer.concat([u32(3), Buffer.from([15, 0x82])]), H2_PROTOCOL_ERROR | STREAM_ERROR],
  ['§6.2', 'HEADERS with padding and priority', HEADERS, FLAG_PADDED | FLAG_PRIORITY, 3, Buffer.concat([Buffer.from([1]), u32(0x80000001), Buffer.from([15, 0x82, 0])]), FRAME_OK],
  ['§6.3', 'PRIORITY on stream 0', PRIORITY, 0, 0, Buffer.concat([u32(1), Buffer.from([1])]), H2_PROTOCOL_ERROR],
  ['§6.3', 'PRIORITY of 4 octets', PRIORITY, 0, 1, u32(0), H2_FRAME_SIZE_ERROR | STREAM_ERROR],
  ['§5.3.1', 'PRIORITY depending on its own stream', PRIORITY, 0, 5, Buffer.concat([u32(5), Buffer.from([1])]), H2_PROTOCOL_ERROR | STREAM_ERROR],
  ['§6.3', 'PRIORITY', PRIORITY, 0, 5, Buffer.concat([u32(3), Buffer.from([1])]), FRAME_OK],
  ['§6.4', 'RST_STREAM on stream 0', RST_STREAM, 0, 0, u32(8), H2_PROTOCOL_ERROR],
  ['§6.4', 'RST_STREAM of 3 octets', RST_STREAM, 0, 1, Buffer.alloc(3), H2_FRAME_SIZE_ERROR],
  ['§6.4', 'RST_STREAM', RST_STREAM, 0, 1, u32(8), FRAME_OK],
  ['§6.5', 'SETTINGS on a stream', SETTINGS, 0, 1, Buffer.alloc(0), H2_PROTOCOL_ERROR],
  ['§6.5', 'SETTINGS ACK with a payload', SETTINGS, FLAG_ACK, 0, settings([3, 1]), H2_FRAME_SIZE_ERROR],
  ['§6.5', 'SETTINGS of 5 octets', SETTINGS, 0, 0, Buffer.alloc(5), H2_FRAME_SIZE_ERROR],
  ['§6.5.2', 'ENABLE_PUSH 2', SETTINGS, 0, 0, settings([SETTINGS_ENABLE_PUSH, 2]), H2_PROTOCOL_ERROR],
  ['§6.5.2', 'INITIAL_WINDOW_SIZE 2^31', SETTINGS, 0, 0, settings([SETTINGS_INITIAL_WINDOW_SIZE, 2 ** 31]), H2_FLOW_CONTROL_ERROR],
  ['§6.5.2', 'MAX_FRAME_SIZE 2^14 − 1', SETTINGS, 0, 0, settings([SETTINGS_MAX_FRAME_SIZE, 16_383]), H2_PROTOCOL_ERROR],
  ['§6.5.2', 'MAX_FRAME_SIZE 2^24', SETTINGS, 0, 0, settings([SETTINGS_MAX_FRAME_SIZE, 2 ** 24]), H2_PROTOCOL_ERROR],
  ['§6.5.2', 'an unknown setting', SETTINGS, 0, 0, settings([0xff, 7], [SETTINGS_MAX_FRAME_SIZE, 2 ** 24 - 1]), FRAME_OK],
  ['§8.4', 'PUSH_PROMISE', PUSH_PROMISE, FLAG_END_HEADERS, 1, Buffer.concat([u32(2), Buffer.from([0x82])]), H2_PROTOCOL_ERROR],
  ['§6.7', 'PING on a stream', PING, 0, 1, Buffer.alloc(8), H2_PROTOCOL_ERROR],
  ['§6.7', 'PING of 7 octets', PING, 0, 0, Buffer.alloc(7), H2_FRAME_SIZE_ERROR],
  ['§6.7', 'PING ACK', PING, FLAG_ACK, 0, Buffer.alloc(8), FRAME_OK],
  ['§6.8', 'GOAWAY on a stream', GOAWAY, 0, 1, Buffer.alloc(8), H2_PROTOCOL_ERROR],
  ['§6.8', 'GOAWAY of 4 octets', GOAWAY, 0, 0, Buffer.alloc(4), H2_FRAME_SIZE_ERROR],
  ['§6.8', 'GOAWAY with debug data', GOAWAY, 0, 0, Buffer.concat([u32(7), u32(0xb), Buffer.from('too_many_pings')]), FRAME_OK],
  ['§6.9', 'WINDOW_UPDATE of 3 octets', WINDOW_UPDATE, 0, 0, Buffer.alloc(3), H2_FRAME_SIZE_ERROR],
  ['§6.9', 'a connection increment of 0', WINDOW_UPDATE, 0, 0, u32(0), H2_PROTOCOL_ERROR],
  ['§6.9', 'a stream increment of 0', WINDOW_UPDATE, 0, 1, u32(0x80000000), H2_PROTOCOL_ERROR | STREAM_ERROR],
  ['§6.9', 'WINDOW_UPDATE', WINDOW_UPDATE, 0, 1, u32(1), FRAME_OK],
  ['§6.10', 'CONTINUATION on stream 0', CONTINUATION, 0, 0, Buffer.from([0x82]), H2_PROTOCOL_ERROR],
  ['§6.10', 'an empty CONTINUATION', CONTINUATION, 0, 1, Buffer.alloc(0), FRAME_OK],
  ['§5.5', 'an unknown type with every flag', 0xfa, 0xff, 7, Buffer.from('anything'), FRAME_OK],
];

describe('frameError: each frame type on its own (§6)', () => {
  it.each(CASES)('%s %s', (_section, _what, type, flags, streamId, payload, expected) => {
    const error = frameError(type, flags, streamId, payload);
    expect({ code: errorCode(error), stream: isStreamError(error) }).toEqual({ code: errorCode(expected), stream: isStreamError(expected) });
  });
});

describe('the content of padded frames', () => {
  it('lies after the pad length and priority fields and before the padding', () => {
    const headers = Buffer.concat([Buffer.from([2]), u32(0), Buffer.from([15]), Buffer.from('block'), Buffer.alloc(2)]);
    const flags = FLAG_PADDED | FLAG_PRIORITY;
    expect(frameError(HEADERS, flags, 1, headers)).toBe(FRAME_OK);
    expect(headers.toString('latin1', contentStart(HEADERS, flags), contentEnd(flags, headers))).toBe('block');
    const data = Buffer.concat([Buffer.from([3]), Buffer.from('body'), Buffer.alloc(3)]);
    expect(data.toString('latin1', contentStart(DATA, FLAG_PADDED), contentEnd(FLAG_PADDED, data))).toBe('body');
    // PRIORITY is a HEADERS flag only: on DATA it is an undefined flag, ignored.
    expect(contentStart(DATA, FLAG_PADDED | FLAG_PRIORITY)).toBe(1);
    expect(contentEnd(0, Buffer.from('plain'))).toBe(5);
  });

  it('is never out of the payload for any frame frameError passes', () => {
    for (let length = 0; length < 24; length++) {
      for (let pad = 0; pad < 30; pad++) {
        const payload = Buffer.alloc(length);
        if (length > 0) payload[0] = pad;
        for (const type of [DATA, HEADERS]) {
          for (const flags of [0, FLAG_PADDED, FLAG_PRIORITY, FLAG_PADDED | FLAG_PRIORITY]) {
            if (frameError(type, flags, 1, payload) !== FRAME_OK) continue;
            const start = contentStart(type, flags);
            const end = contentEnd(flags, payload);
            expect(start).toBeLessThanOrEqual(end);
            expect(end).toBeLessThanOrEqual(payload.length);
          }
        }
      }
    }
  });
});

describe('payload fields', () => {
  it('reads SETTINGS entries, WINDOW_UPDATE increments and GOAWAY fields', () => {
    const s = settings([SETTINGS_INITIAL_WINDOW_SIZE, 100], [SETTINGS_MAX_FRAME_SIZE, 20_000]);
    expect(settingsCount(s)).toBe(2);
    expect([settingId(s, 1), settingValue(s, 1)]).toEqual([SETTINGS_MAX_FRAME_SIZE, 20_000]);
    expect(windowIncrement(u32(0x80000005))).toBe(5);
    const g = Buffer.concat([u32(0x80000009), u32(0xb)]);
    expect([goawayLastStreamId(g), goawayCode(g)]).toEqual([9, 0xb]);
  });
});
