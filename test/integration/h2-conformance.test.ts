// HTTP/2 (RFC 9113) and HPACK (RFC 7541) conformance of the mesh's two front doors, the router's
// and a pod's, each a real service process (test/helpers/doors.ts) reached by a raw-frame client
// (test/helpers/h2-raw.ts). Cases are grouped by section as h2spec groups its own, in RFC 9113's
// numbering; each sends what the section speaks of and checks what the RFC requires: a connection
// error is GOAWAY with that code and then the end of the TCP connection (§5.4.1); a stream error is
// RST_STREAM with that code on the stream, or the same code as a connection error (an endpoint may
// treat a stream error as a connection error, §5.4.1); a frame to ignore is read and the next PING
// is answered with nothing before it. Every check waits on the door's answer, not on a clock: a PING
// after the frames under test shows when the door has read them all.
import { protos } from '../../lib/grpc/proto';
import { startDoors, type DoorName, type Doors } from '../helpers/doors';
import {
  ERROR,
  FLAG,
  FRAME,
  PREFACE,
  SETTING,
  errorName,
  fieldBlock,
  frame,
  grpcMessage,
  grpcRequestHeaders,
  hpack,
  priorityFields,
  RawH2Client,
  settingsPayload,
  u32,
  valueOf,
  type ErrorName,
  type Header,
  type RawConnectOptions,
} from '../helpers/h2-raw';

jest.setTimeout(60_000);

const SERVER_LIVE = '/inference.GRPCInferenceService/ServerLive';
const MODEL_INFER = '/inference.GRPCInferenceService/ModelInfer';
const HEALTH_WATCH = '/grpc.health.v1.Health/Watch';
/** Both doors refuse a request message above this (INFERMESH_MAX_MESSAGE_BYTES). */
const MAX_MESSAGE_BYTES = 1 << 20;
const MAX_WINDOW = 2 ** 31 - 1;
const SERVED = ':status 200 grpc-status 0';

/** An empty protobuf message (ServerLiveRequest, HealthCheckRequest for the whole server). */
const EMPTY = Buffer.alloc(0);
const LIVE = grpcRequestHeaders(SERVER_LIVE);

/** A protobuf message of `bytes` octets that ServerLiveRequest reads as empty: one unknown field (15). */
function unknownFieldMessage(bytes: number): Buffer {
  for (let data = bytes - 2; data > 0; data--) {
    const len = varint(data);
    if (1 + len.length + data === bytes) return Buffer.concat([Buffer.from([(15 << 3) | 2]), len, Buffer.alloc(data, 0x61)]);
  }
  throw new Error(`no message of ${bytes} octets`);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Buffer.from(out);
}

/** Huffman-coded "www.example.com" (RFC 7541 C.4.1). */
const HUFFMAN_WWW_EXAMPLE_COM = Buffer.from('f1e3c2e5f23a6ba0ab90f4ff', 'hex');

let doors: Doors;
const clients: RawH2Client[] = [];

beforeAll(async () => {
  doors = await startDoors({ env: { INFERMESH_MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES) } });
});

afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
});

afterAll(async () => {
  await doors?.close();
});

describe.each<DoorName>(['router', 'pod'])('the %s door', (which) => {
  const address = () => doors[which].address;

  /** A connection after the handshake (§3.4). */
  async function open(opts: Omit<RawConnectOptions, 'preface' | 'read'> = {}): Promise<RawH2Client> {
    const c = await RawH2Client.open(address(), opts);
    clients.push(c);
    return c;
  }

  /** A TCP connection on which nothing was sent yet. */
  async function bare(): Promise<RawH2Client> {
    const c = await RawH2Client.connect(address(), { preface: false });
    clients.push(c);
    return c;
  }

  /** ServerLive on `id`, in one HEADERS and one DATA frame with END_STREAM. */
  function live(c: RawH2Client, id: number): void {
    c.grpcRequest(id, SERVER_LIVE, EMPTY);
  }

  /** A stream left open: ModelInfer's headers, with the body still to come. */
  function openStream(c: RawH2Client, id: number): void {
    c.headers(id, grpcRequestHeaders(MODEL_INFER));
  }

  /** A stream half-closed (remote) on the door: a health Watch, whose answer never ends; resolves once answered. */
  async function watch(c: RawH2Client, id: number): Promise<void> {
    c.grpcRequest(id, HEALTH_WATCH, EMPTY);
    await c.until(`the Watch answer on stream ${id}`, () => c.blocks(id).length > 0, 5_000);
  }

  /** A stream that both sides ended: ServerLive, answered. */
  async function closedStream(c: RawH2Client, id: number): Promise<void> {
    live(c, id);
    expect(await c.response(id)).toBe(SERVED);
  }

  async function expectConnectionError(c: RawH2Client, ...codes: ErrorName[]): Promise<void> {
    expect(codes.map((code) => `GOAWAY ${code} and closed`)).toContain(await c.connectionError());
  }

  async function expectStreamError(c: RawH2Client, id: number, ...codes: ErrorName[]): Promise<void> {
    expect(codes.flatMap((code) => [`RST_STREAM ${code}`, `GOAWAY ${code}`])).toContain(await c.reaction(id));
  }

  async function expectIgnored(c: RawH2Client): Promise<void> {
    expect(await c.reaction()).toBe('ignored');
  }

  async function expectServed(c: RawH2Client, id: number): Promise<void> {
    expect(await c.response(id)).toBe(SERVED);
  }

  /** A malformed request on `id` is a stream error PROTOCOL_ERROR, and the connection serves on. */
  async function expectMalformed(c: RawH2Client, id: number): Promise<void> {
    await expectStreamError(c, id, 'PROTOCOL_ERROR');
    live(c, id + 2);
    await expectServed(c, id + 2);
  }

  /** A request on `id` whose header list is `headers` (END_STREAM on the HEADERS). */
  function requestWith(c: RawH2Client, id: number, headers: readonly Header[]): void {
    c.headers(id, headers, { endStream: true });
  }

  describe('RFC 9113 §3.4 HTTP/2 connection preface', () => {
    it('answers the client preface with SETTINGS as its first frame, and acknowledges the client\'s', async () => {
      const c = await open();
      expect(c.frames[0]).toMatchObject({ type: FRAME.SETTINGS, flags: 0, streamId: 0 });
      expect(c.settingsAcked).toBe(1);
      live(c, 1);
      await expectServed(c, 1);
    });

    it('an invalid preface is a connection error PROTOCOL_ERROR (the GOAWAY may be left out)', async () => {
      const c = await bare();
      c.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n', 'latin1'), frame(FRAME.SETTINGS, 0, 0)]));
      expect(await c.closedWithin(5_000)).toBe(true);
      expect(['PROTOCOL_ERROR', 'none']).toContain(c.goaway ? errorName(c.goaway.code) : 'none');
    });

    it('an HTTP/1.1 request instead of the preface closes the connection', async () => {
      const c = await bare();
      c.write(Buffer.from('GET / HTTP/1.1\r\nHost: infermesh.test\r\n\r\n', 'latin1'));
      expect(await c.closedWithin(5_000)).toBe(true);
      expect(['PROTOCOL_ERROR', 'none']).toContain(c.goaway ? errorName(c.goaway.code) : 'none');
    });

    it('a preface whose first frame is not SETTINGS is a connection error PROTOCOL_ERROR', async () => {
      const c = await bare();
      c.write(Buffer.concat([PREFACE, frame(FRAME.PING, 0, 0, Buffer.alloc(8))]));
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });
  });

  describe('RFC 9113 §4.1 frame format', () => {
    it('ignores a frame of an unknown type', async () => {
      const c = await open();
      c.send(0x20, 0, 0, Buffer.from('unknown'));
      c.send(0x21, 0xff, 1, Buffer.from('unknown'));
      await expectIgnored(c);
      live(c, 1);
      await expectServed(c, 1);
    });

    it('ignores undefined flags: a PING with every other flag set is answered', async () => {
      const c = await open();
      const payload = Buffer.from('h2-flags');
      c.send(FRAME.PING, 0xfe, 0, payload);
      await c.until('the PING ACK', () => c.frames.some((f) => f.type === FRAME.PING && f.flags === FLAG.ACK && f.payload.equals(payload)), 5_000);
    });

    it('ignores the reserved bit of the stream identifier', async () => {
      const c = await open();
      c.send(FRAME.HEADERS, FLAG.END_HEADERS, 1, fieldBlock(LIVE), { reserved: true });
      c.send(FRAME.DATA, FLAG.END_STREAM, 1, grpcMessage(EMPTY), { reserved: true });
      await expectServed(c, 1);
    });
  });

  describe('RFC 9113 §4.2 frame size', () => {
    it('reads a DATA frame of 2^14 octets, the size every endpoint must take', async () => {
      const c = await open();
      c.headers(1, LIVE);
      c.data(1, grpcMessage(unknownFieldMessage(16_384 - 5)), true);
      await expectServed(c, 1);
    });

    it('a DATA frame above SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR', async () => {
      const c = await open();
      openStream(c, 1);
      c.send(FRAME.DATA, 0, 1, Buffer.alloc(16_385));
      await expectStreamError(c, 1, 'FRAME_SIZE_ERROR');
    });

    it('a HEADERS frame above SETTINGS_MAX_FRAME_SIZE is a connection error FRAME_SIZE_ERROR', async () => {
      const c = await open();
      c.send(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, fieldBlock([...LIVE, ['x-big', 'b'.repeat(16_400)]]));
      await expectConnectionError(c, 'FRAME_SIZE_ERROR');
    });

    it('a SETTINGS frame above SETTINGS_MAX_FRAME_SIZE is a connection error FRAME_SIZE_ERROR', async () => {
      const c = await open();
      c.send(FRAME.SETTINGS, 0, 0, settingsPayload(Array.from({ length: 2731 }, () => [SETTING.MAX_CONCURRENT_STREAMS, 100] as const)));
      await expectConnectionError(c, 'FRAME_SIZE_ERROR');
    });
  });

  describe('RFC 9113 §4.3 field section compression and decompression', () => {
    it('a field block it cannot decode is a connection error COMPRESSION_ERROR', async () => {
      const c = await open();
      // A literal whose name claims 10 octets and has 1.
      c.headers(1, Buffer.concat([fieldBlock(LIVE), Buffer.from([0x40, 0x0a, 0x61])]), { endStream: true });
      await expectConnectionError(c, 'COMPRESSION_ERROR');
    });

    it('a PRIORITY frame inside a field block is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.headers(1, LIVE.slice(0, 3), { endHeaders: false });
      c.send(FRAME.PRIORITY, 0, 1, priorityFields(0));
      c.continuation(1, LIVE.slice(3));
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('HEADERS of another stream inside a field block is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.headers(1, LIVE, { endHeaders: false });
      c.headers(3, LIVE, { endStream: true });
      // Stream 1's block is never finished, so no PING can follow to see whether the door read this.
      expect(await c.goawayWithin(3_000)).toBe('GOAWAY PROTOCOL_ERROR and closed');
    });

    it('decodes a field block split between HEADERS and CONTINUATION in the middle of a string', async () => {
      const c = await open();
      const block = fieldBlock([...LIVE, ['x-split', 'split-in-the-middle']]);
      const cut = block.length - 8;
      c.headers(1, block.subarray(0, cut), { endHeaders: false });
      c.continuation(1, block.subarray(cut));
      c.data(1, grpcMessage(EMPTY), true);
      await expectServed(c, 1);
    });

    it('decodes the field block of a stream it refuses, so that the table stays in step', async () => {
      const c = await open();
      // Stream 1 is malformed (an upper-case name) and adds x-tenant to the dynamic table (index 62).
      c.headers(1, Buffer.concat([fieldBlock(LIVE), hpack.indexedLiteral('x-tenant', 'acme'), hpack.literal('X-Upper', 'no')]), { endStream: true });
      await expectStreamError(c, 1, 'PROTOCOL_ERROR');
      c.headers(3, Buffer.concat([fieldBlock(LIVE), hpack.indexed(62)]));
      c.data(3, grpcMessage(EMPTY), true);
      await expectServed(c, 3);
    });
  });

  describe('RFC 9113 §5.1 stream states', () => {
    it('idle: DATA is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.data(1, Buffer.from('test'), true);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('idle: RST_STREAM is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.rstStream(1);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('idle: WINDOW_UPDATE is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.windowUpdate(1, 100);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('idle: CONTINUATION is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.continuation(1, LIVE);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('half-closed (remote): DATA is a stream error STREAM_CLOSED', async () => {
      const c = await open();
      await watch(c, 1);
      c.data(1, Buffer.from('test'), true);
      await expectStreamError(c, 1, 'STREAM_CLOSED');
    });

    it('half-closed (remote): HEADERS is a stream error STREAM_CLOSED', async () => {
      const c = await open();
      await watch(c, 1);
      c.headers(1, [['x-late', 'trailer']], { endStream: true });
      await expectStreamError(c, 1, 'STREAM_CLOSED');
    });

    it('half-closed (remote): CONTINUATION is an error STREAM_CLOSED or PROTOCOL_ERROR', async () => {
      const c = await open();
      await watch(c, 1);
      c.continuation(1, [['x-late', 'trailer']]);
      await expectStreamError(c, 1, 'STREAM_CLOSED', 'PROTOCOL_ERROR');
    });

    it('half-closed (remote): WINDOW_UPDATE, PRIORITY and RST_STREAM are allowed', async () => {
      const c = await open();
      await watch(c, 1);
      c.windowUpdate(1, 1_000);
      c.send(FRAME.PRIORITY, 0, 1, priorityFields(0));
      await expectIgnored(c);
      c.rstStream(1, ERROR.CANCEL);
      live(c, 3);
      await expectServed(c, 3);
    });

    it('closed by the client\'s RST_STREAM: DATA is an error STREAM_CLOSED', async () => {
      const c = await open();
      openStream(c, 1);
      c.rstStream(1, ERROR.CANCEL);
      c.data(1, Buffer.from('test'), true);
      await expectStreamError(c, 1, 'STREAM_CLOSED');
    });

    it('closed by the client\'s RST_STREAM: HEADERS is an error STREAM_CLOSED', async () => {
      const c = await open();
      openStream(c, 1);
      c.rstStream(1, ERROR.CANCEL);
      c.headers(1, LIVE, { endStream: true });
      await expectStreamError(c, 1, 'STREAM_CLOSED', 'PROTOCOL_ERROR');
    });

    it('closed by the client\'s RST_STREAM: CONTINUATION is an error STREAM_CLOSED or PROTOCOL_ERROR', async () => {
      const c = await open();
      openStream(c, 1);
      c.rstStream(1, ERROR.CANCEL);
      c.continuation(1, [['x-late', 'trailer']]);
      await expectStreamError(c, 1, 'STREAM_CLOSED', 'PROTOCOL_ERROR');
    });

    it('closed after END_STREAM both ways: DATA is an error STREAM_CLOSED (§6.1)', async () => {
      const c = await open();
      await closedStream(c, 1);
      c.data(1, Buffer.from('test'), true);
      await expectStreamError(c, 1, 'STREAM_CLOSED');
    });

    it('closed after END_STREAM both ways: HEADERS is an error STREAM_CLOSED or PROTOCOL_ERROR (§5.1.1)', async () => {
      const c = await open();
      await closedStream(c, 1);
      c.headers(1, LIVE, { endStream: true });
      await expectStreamError(c, 1, 'STREAM_CLOSED', 'PROTOCOL_ERROR');
    });

    it('closed after END_STREAM both ways: CONTINUATION is an error STREAM_CLOSED or PROTOCOL_ERROR', async () => {
      const c = await open();
      await closedStream(c, 1);
      c.continuation(1, [['x-late', 'trailer']]);
      await expectStreamError(c, 1, 'STREAM_CLOSED', 'PROTOCOL_ERROR');
    });

    it('closed: WINDOW_UPDATE and RST_STREAM that cross the end of the stream are ignored', async () => {
      const c = await open();
      await closedStream(c, 1);
      c.windowUpdate(1, 100);
      c.rstStream(1, ERROR.CANCEL);
      await expectIgnored(c);
      live(c, 3);
      await expectServed(c, 3);
    });

    it('closed by the door: frames the client had already sent on a stream the door reset are discarded', async () => {
      const c = await open();
      // A request above the door's message limit: the door answers RESOURCE_EXHAUSTED and resets the upload.
      c.headers(1, grpcRequestHeaders(MODEL_INFER));
      const announced = Buffer.alloc(5);
      announced.writeUInt32BE(2 * MAX_MESSAGE_BYTES, 1);
      c.data(1, announced);
      await c.upload(1, 2 * MAX_MESSAGE_BYTES, { stallMs: 2_000, deadline: Date.now() + 10_000 });
      await c.until('the door\'s RST_STREAM', () => c.resets.has(1), 5_000);
      // What a client sends before the RST_STREAM reaches it.
      c.data(1, Buffer.alloc(Math.max(0, Math.min(100, c.sendWindow))));
      expect(await c.reaction()).toBe('ignored');
      expect(valueOf(c.blocks(1).flat(), 'grpc-status')).toBe('8');
      live(c, 3);
      await expectServed(c, 3);
    });
  });

  describe('RFC 9113 §5.1.1 stream identifiers', () => {
    it('an even-numbered stream opened by the client is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      live(c, 2);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('a stream identifier lower than one the client opened before is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      await closedStream(c, 5);
      live(c, 3);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });
  });

  describe('RFC 9113 §5.1.2 stream concurrency', () => {
    it('advertises SETTINGS_MAX_CONCURRENT_STREAMS and refuses a stream beyond it', async () => {
      const c = await open();
      const max = c.peerSettings.get(SETTING.MAX_CONCURRENT_STREAMS);
      // Without a limit every stream costs the door memory; the hardened door allows 100–250.
      expect(max).toBeGreaterThan(0);
      expect(max).toBeLessThanOrEqual(1_000);
      for (let i = 0; i < max!; i++) openStream(c, 1 + 2 * i);
      const beyond = 1 + 2 * max!;
      openStream(c, beyond);
      await expectStreamError(c, beyond, 'REFUSED_STREAM', 'PROTOCOL_ERROR');
      // The streams it took are still open.
      expect(c.resets.size).toBe(1);
    });
  });

  describe('RFC 9113 §5.3.1 stream dependencies', () => {
    it('HEADERS that make a stream depend on itself are a stream error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.headers(1, LIVE, { endStream: true, priority: priorityFields(1) });
      await expectStreamError(c, 1, 'PROTOCOL_ERROR');
    });

    it('a PRIORITY frame that makes a stream depend on itself is a stream error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.send(FRAME.PRIORITY, 0, 1, priorityFields(1));
      await expectStreamError(c, 1, 'PROTOCOL_ERROR');
    });
  });

  describe('RFC 9113 §5.4.1 connection error handling', () => {
    it('sends GOAWAY naming the last stream it processed, then closes the TCP connection', async () => {
      const c = await open();
      await closedStream(c, 1);
      c.send(FRAME.PING, 0, 0, Buffer.alloc(7));
      await expectConnectionError(c, 'FRAME_SIZE_ERROR');
      expect(c.goaway!.lastStreamId).toBe(1);
    });
  });

  describe('RFC 9113 §5.5 extending HTTP/2', () => {
    it('ignores an unknown extension frame', async () => {
      const c = await open();
      c.send(0x16, 0, 0, Buffer.from('extension'));
      await expectIgnored(c);
    });

    it('an unknown extension frame inside a field block is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.headers(1, LIVE.slice(0, 3), { endHeaders: false });
      c.send(0x16, 0, 0, Buffer.from('extension'));
      c.continuation(1, LIVE.slice(3));
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });
  });

  describe('RFC 9113 §6.1 DATA', () => {
    it('DATA on stream 0 is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.send(FRAME.DATA, FLAG.END_STREAM, 0, Buffer.from('test'));
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('padding as long as the payload or longer is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      openStream(c, 1);
      c.send(FRAME.DATA, FLAG.PADDED | FLAG.END_STREAM, 1, Buffer.from([5, 0x61, 0x62]));
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('reads padded DATA without its padding', async () => {
      const c = await open();
      c.headers(1, LIVE);
      c.data(1, grpcMessage(EMPTY), true, 200);
      await expectServed(c, 1);
    });
  });

  describe('RFC 9113 §6.2 HEADERS', () => {
    it('HEADERS on stream 0 is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.headers(0, LIVE, { endStream: true });
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('padding longer than what is left for the field block is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      const block = fieldBlock(LIVE);
      c.send(FRAME.HEADERS, FLAG.PADDED | FLAG.END_HEADERS | FLAG.END_STREAM, 1, Buffer.concat([Buffer.from([block.length + 1]), block]));
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('PADDED with no room for the pad length is a connection error FRAME_SIZE_ERROR or PROTOCOL_ERROR', async () => {
      const c = await open();
      c.send(FRAME.HEADERS, FLAG.PADDED | FLAG.END_HEADERS | FLAG.END_STREAM, 1);
      await expectConnectionError(c, 'FRAME_SIZE_ERROR', 'PROTOCOL_ERROR');
    });

    it('PADDED with no room for the pad length, the block continued, is a connection error FRAME_SIZE_ERROR or PROTOCOL_ERROR', async () => {
      const c = await open();
      c.send(FRAME.HEADERS, FLAG.PADDED, 1);
      c.continuation(1, LIVE);
      c.data(1, grpcMessage(EMPTY), true);
      await expectConnectionError(c, 'FRAME_SIZE_ERROR', 'PROTOCOL_ERROR');
    });

    it('PRIORITY with fewer than 5 octets for its fields is a connection error FRAME_SIZE_ERROR or PROTOCOL_ERROR', async () => {
      const c = await open();
      c.send(FRAME.HEADERS, FLAG.PRIORITY | FLAG.END_HEADERS | FLAG.END_STREAM, 1, Buffer.from([0, 0, 0]));
      await expectConnectionError(c, 'FRAME_SIZE_ERROR', 'PROTOCOL_ERROR');
    });

    it('padding longer than what the priority fields leave is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.send(FRAME.HEADERS, FLAG.PADDED | FLAG.PRIORITY | FLAG.END_HEADERS | FLAG.END_STREAM, 1, Buffer.concat([Buffer.from([3]), priorityFields(0)]));
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('serves HEADERS with padding and priority fields', async () => {
      const c = await open();
      c.headers(1, LIVE, { padLength: 17, priority: priorityFields(0, 200, true) });
      c.data(1, grpcMessage(EMPTY), true);
      await expectServed(c, 1);
    });
  });

  describe('RFC 9113 §6.3 PRIORITY', () => {
    it('PRIORITY on stream 0 is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.send(FRAME.PRIORITY, 0, 0, priorityFields(1));
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('PRIORITY of a length other than 5 is a stream error FRAME_SIZE_ERROR', async () => {
      const c = await open();
      openStream(c, 1);
      c.send(FRAME.PRIORITY, 0, 1, Buffer.alloc(4));
      await expectStreamError(c, 1, 'FRAME_SIZE_ERROR');
    });

    it('PRIORITY on an idle stream does not open it', async () => {
      const c = await open();
      c.send(FRAME.PRIORITY, 0, 9, priorityFields(0));
      await expectIgnored(c);
      live(c, 1);
      await expectServed(c, 1);
    });

    it('PRIORITY on a closed stream is ignored', async () => {
      const c = await open();
      await closedStream(c, 1);
      c.send(FRAME.PRIORITY, 0, 1, priorityFields(0));
      await expectIgnored(c);
    });
  });

  describe('RFC 9113 §6.4 RST_STREAM', () => {
    it('RST_STREAM on stream 0 is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.rstStream(0);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('RST_STREAM of a length other than 4 is a connection error FRAME_SIZE_ERROR', async () => {
      const c = await open();
      openStream(c, 1);
      c.send(FRAME.RST_STREAM, 0, 1, Buffer.alloc(3));
      await expectConnectionError(c, 'FRAME_SIZE_ERROR');
    });

    it('RST_STREAM ends a stream in flight and the connection serves on', async () => {
      const c = await open();
      await watch(c, 1);
      c.rstStream(1, ERROR.CANCEL);
      live(c, 3);
      await expectServed(c, 3);
    });
  });

  describe('RFC 9113 §6.5 SETTINGS', () => {
    it('a SETTINGS ACK with a payload is a connection error FRAME_SIZE_ERROR', async () => {
      const c = await open();
      c.send(FRAME.SETTINGS, FLAG.ACK, 0, settingsPayload([[SETTING.MAX_CONCURRENT_STREAMS, 1]]));
      await expectConnectionError(c, 'FRAME_SIZE_ERROR');
    });

    it('SETTINGS on a stream other than 0 is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.send(FRAME.SETTINGS, 0, 1, settingsPayload([[SETTING.MAX_CONCURRENT_STREAMS, 1]]));
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('SETTINGS of a length that is not a multiple of 6 is a connection error FRAME_SIZE_ERROR', async () => {
      const c = await open();
      c.send(FRAME.SETTINGS, 0, 0, Buffer.alloc(5));
      await expectConnectionError(c, 'FRAME_SIZE_ERROR');
    });

    it('§6.5.2: SETTINGS_ENABLE_PUSH other than 0 or 1 is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.settings([[SETTING.ENABLE_PUSH, 2]]);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('§6.5.2: SETTINGS_INITIAL_WINDOW_SIZE above 2^31−1 is a connection error FLOW_CONTROL_ERROR', async () => {
      const c = await open();
      c.settings([[SETTING.INITIAL_WINDOW_SIZE, 2 ** 31]]);
      await expectConnectionError(c, 'FLOW_CONTROL_ERROR');
    });

    it('§6.5.2: SETTINGS_MAX_FRAME_SIZE below 2^14 is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.settings([[SETTING.MAX_FRAME_SIZE, 16_383]]);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('§6.5.2: SETTINGS_MAX_FRAME_SIZE above 2^24−1 is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.settings([[SETTING.MAX_FRAME_SIZE, 2 ** 24]]);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('§6.5.2: an unknown setting is ignored and the frame acknowledged', async () => {
      const c = await open();
      c.settings([[0xff, 1]]);
      await expectIgnored(c);
      expect(c.settingsAcked).toBe(2);
    });

    it('§6.5.3: of several values of one setting in a frame the last counts', async () => {
      const c = await open();
      c.settings([[SETTING.INITIAL_WINDOW_SIZE, 100], [SETTING.INITIAL_WINDOW_SIZE, 1]]);
      await c.until('the ACK', () => c.settingsAcked === 2, 5_000);
      live(c, 1);
      await expectServed(c, 1);
      const data = c.frames.filter((f) => f.type === FRAME.DATA && f.streamId === 1 && f.length > 0);
      expect(data.length).toBeGreaterThan(1);
      expect(data.map((f) => f.length)).toEqual(data.map(() => 1));
    });
  });

  describe('RFC 9113 §6.7 PING', () => {
    it('answers a PING with an ACK of the same payload', async () => {
      const c = await open();
      c.ping(7);
      await c.until('the PING ACK', () => c.pingAcked(7), 5_000);
    });

    it('does not answer a PING ACK', async () => {
      const c = await open();
      c.ping(8, true);
      await expectIgnored(c);
      expect(c.frames.filter((f) => f.type === FRAME.PING && f.payload.readUInt32BE(4) === 8)).toEqual([]);
    });

    it('PING on a stream other than 0 is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.send(FRAME.PING, 0, 1, Buffer.alloc(8));
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('PING of a length other than 8 is a connection error FRAME_SIZE_ERROR', async () => {
      const c = await open();
      c.send(FRAME.PING, 0, 0, Buffer.alloc(6));
      await expectConnectionError(c, 'FRAME_SIZE_ERROR');
    });
  });

  describe('RFC 9113 §6.8 GOAWAY', () => {
    it('GOAWAY on a stream other than 0 is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.send(FRAME.GOAWAY, 0, 1, Buffer.concat([u32(0), u32(ERROR.NO_ERROR)]));
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('GOAWAY shorter than its 8 octets of fields is a connection error FRAME_SIZE_ERROR (§4.2)', async () => {
      const c = await open();
      c.send(FRAME.GOAWAY, 0, 0, Buffer.alloc(4));
      await expectConnectionError(c, 'FRAME_SIZE_ERROR');
    });

    it('after the client\'s GOAWAY the streams it opened are still answered, then the connection ends', async () => {
      const c = await open();
      live(c, 1);
      c.goAway(1, ERROR.NO_ERROR);
      await expectServed(c, 1);
      expect(await c.closedWithin(5_000)).toBe(true);
    });
  });

  describe('RFC 9113 §6.9 WINDOW_UPDATE', () => {
    it('an increment of 0 for the connection is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.windowUpdate(0, 0);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('an increment of 0 for a stream is a stream error PROTOCOL_ERROR', async () => {
      const c = await open();
      openStream(c, 1);
      c.windowUpdate(1, 0);
      await expectStreamError(c, 1, 'PROTOCOL_ERROR');
    });

    it('WINDOW_UPDATE of a length other than 4 is a connection error FRAME_SIZE_ERROR', async () => {
      const c = await open();
      c.send(FRAME.WINDOW_UPDATE, 0, 0, Buffer.alloc(3));
      await expectConnectionError(c, 'FRAME_SIZE_ERROR');
    });

    it('§6.9.1: a connection window above 2^31−1 is a connection error FLOW_CONTROL_ERROR', async () => {
      const c = await open();
      c.windowUpdate(0, MAX_WINDOW);
      await expectConnectionError(c, 'FLOW_CONTROL_ERROR');
    });

    it('§6.9.1: a stream window above 2^31−1 is a stream error FLOW_CONTROL_ERROR', async () => {
      const c = await open();
      openStream(c, 1);
      c.windowUpdate(1, MAX_WINDOW);
      await expectStreamError(c, 1, 'FLOW_CONTROL_ERROR');
    });

    it('§6.9.2: a new SETTINGS_INITIAL_WINDOW_SIZE applies to the streams already open', async () => {
      const c = await open({ settings: [[SETTING.INITIAL_WINDOW_SIZE, 0]] });
      live(c, 1);
      await c.until('the response headers', () => c.blocks(1).length > 0, 5_000);
      await expectIgnored(c);
      expect(c.dataBytes.get(1) ?? 0).toBe(0);
      c.settings([[SETTING.INITIAL_WINDOW_SIZE, 65_535]]);
      await expectServed(c, 1);
      expect(c.dataBytes.get(1)).toBeGreaterThan(0);
    });

    it('§6.9.2: a SETTINGS_INITIAL_WINDOW_SIZE that takes an open stream\'s window above 2^31−1 is a connection error FLOW_CONTROL_ERROR', async () => {
      const c = await open();
      openStream(c, 1);
      // The door's window for stream 1 is then exactly 2^31−1; one more octet overflows it.
      c.windowUpdate(1, MAX_WINDOW - 65_535);
      await expectIgnored(c);
      c.settings([[SETTING.INITIAL_WINDOW_SIZE, 65_536]]);
      await expectConnectionError(c, 'FLOW_CONTROL_ERROR');
    });
  });

  describe('RFC 9113 §6.10 CONTINUATION', () => {
    it('reads a field block in HEADERS and several CONTINUATION frames', async () => {
      const c = await open();
      c.headers(1, LIVE.slice(0, 2), { endHeaders: false });
      c.continuation(1, LIVE.slice(2, 4), false);
      c.continuation(1, LIVE.slice(4), true);
      c.data(1, grpcMessage(EMPTY), true);
      await expectServed(c, 1);
    });

    it('a frame other than CONTINUATION inside a field block is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.headers(1, LIVE.slice(0, 3), { endHeaders: false });
      c.continuation(1, LIVE.slice(3), false);
      c.data(1, grpcMessage(EMPTY), true);
      c.continuation(1, EMPTY);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('CONTINUATION on stream 0 is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.headers(1, LIVE.slice(0, 3), { endHeaders: false });
      c.continuation(0, LIVE.slice(3), true);
      c.continuation(1, EMPTY);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('CONTINUATION after HEADERS with END_HEADERS is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.headers(1, LIVE);
      c.continuation(1, [['x-more', '1']], true);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('CONTINUATION after CONTINUATION with END_HEADERS is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.headers(1, LIVE.slice(0, 3), { endHeaders: false });
      c.continuation(1, LIVE.slice(3), true);
      c.continuation(1, [['x-more', '1']], true);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('CONTINUATION after DATA is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.headers(1, LIVE);
      c.data(1, Buffer.from([0]));
      c.continuation(1, [['x-more', '1']], true);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });

    it('CONTINUATION of another stream than the HEADERS is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.headers(1, LIVE.slice(0, 3), { endHeaders: false });
      c.continuation(3, LIVE.slice(3), true);
      c.continuation(1, EMPTY);
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });
  });

  describe('RFC 9113 §7 error codes', () => {
    it('an unknown error code in RST_STREAM ends the stream like any other', async () => {
      const c = await open();
      openStream(c, 1);
      c.rstStream(1, 0xff);
      live(c, 3);
      await expectServed(c, 3);
    });

    it('an unknown error code in GOAWAY is a GOAWAY like any other', async () => {
      const c = await open();
      live(c, 1);
      c.goAway(1, 0xff);
      await expectServed(c, 1);
    });
  });

  describe('RFC 9113 §8.1 HTTP message framing', () => {
    it('a second HEADERS without END_STREAM is a stream error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.headers(1, LIVE);
      c.data(1, grpcMessage(EMPTY));
      c.headers(1, [['x-trailer', '1']]);
      await expectMalformed(c, 1);
    });

    it('serves a request ended by trailers', async () => {
      const c = await open();
      c.headers(1, LIVE);
      c.data(1, grpcMessage(EMPTY));
      c.headers(1, [['x-trailer', '1']], { endStream: true });
      await expectServed(c, 1);
    });

    it('§8.1.1: content-length that disagrees with the one DATA frame is a stream error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.headers(1, [...LIVE, ['content-length', '10']]);
      c.data(1, grpcMessage(EMPTY), true);
      await expectMalformed(c, 1);
    });

    it('§8.1.1: content-length that disagrees with the sum of several DATA frames is a stream error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.headers(1, [...LIVE, ['content-length', '4']]);
      c.data(1, Buffer.from([0, 0]));
      c.data(1, Buffer.from([0, 0, 0]), true);
      await expectMalformed(c, 1);
    });
  });

  describe('RFC 9113 §8.2 HTTP fields', () => {
    it.each<[string, Header]>([
      ['an upper-case field name', ['X-Upper', 'v']],
      ['an empty field name', ['', 'v']],
      ['a field name with a space', ['x name', 'v']],
      ['a field value with CR LF', ['x-v', 'a\r\nx-injected: 1']],
      ['a field value with NUL', ['x-v', 'a\0b']],
      ['a field value with a leading space', ['x-v', ' a']],
      ['a field value with a trailing tab', ['x-v', 'a\t']],
    ])('%s is a malformed request: stream error PROTOCOL_ERROR', async (_what, field) => {
      const c = await open();
      requestWith(c, 1, [...LIVE, field]);
      await expectMalformed(c, 1);
    });

    it.each(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'])(
      '§8.2.2: the connection-specific field %s is a malformed request: stream error PROTOCOL_ERROR',
      async (name) => {
        const c = await open();
        requestWith(c, 1, [...LIVE, [name, name === 'upgrade' ? 'h2c' : 'keep-alive']]);
        await expectMalformed(c, 1);
      },
    );

    it('§8.2.2: te other than "trailers" is a malformed request: stream error PROTOCOL_ERROR', async () => {
      const c = await open();
      requestWith(c, 1, [...LIVE.filter((h) => h[0] !== 'te'), ['te', 'trailers, deflate']]);
      await expectMalformed(c, 1);
    });
  });

  describe('RFC 9113 §8.3 HTTP control data', () => {
    const without = (name: string) => LIVE.filter((h) => h[0] !== name);
    const pseudo = LIVE.filter((h) => h[0].startsWith(':'));
    const regular = LIVE.filter((h) => !h[0].startsWith(':'));

    it.each<[string, Header[]]>([
      ['an unknown pseudo-header', [...pseudo, [':unknown', 'x'], ...regular]],
      ['a response pseudo-header', [...pseudo, [':status', '200'], ...regular]],
      ['a pseudo-header after a regular field', [...pseudo.slice(0, 2), ...regular, ...pseudo.slice(2)]],
      ['an empty :path', [...without(':path'), [':path', '']]],
      ['no :method', without(':method')],
      ['no :scheme', without(':scheme')],
      ['no :path', without(':path')],
      ['a second :method', [[':method', 'POST'], ...LIVE]],
      ['a second :scheme', [[':scheme', 'http'], ...LIVE]],
      ['a second :path', [[':path', SERVER_LIVE], ...LIVE]],
    ])('§8.3.1: %s is a malformed request: stream error PROTOCOL_ERROR', async (_what, headers) => {
      const c = await open();
      requestWith(c, 1, headers);
      await expectMalformed(c, 1);
    });

    it('§8.1: a pseudo-header in trailers is a malformed request: stream error PROTOCOL_ERROR', async () => {
      const c = await open();
      c.headers(1, LIVE);
      c.data(1, grpcMessage(EMPTY));
      c.headers(1, [[':method', 'POST']], { endStream: true });
      await expectMalformed(c, 1);
    });
  });

  describe('RFC 9113 §8.4 server push', () => {
    it('PUSH_PROMISE from a client is a connection error PROTOCOL_ERROR', async () => {
      const c = await open();
      await closedStream(c, 1);
      c.send(FRAME.PUSH_PROMISE, FLAG.END_HEADERS, 1, Buffer.concat([u32(2), fieldBlock(LIVE)]));
      await expectConnectionError(c, 'PROTOCOL_ERROR');
    });
  });

  describe('RFC 7541 HPACK', () => {
    /** A request on `id` whose field block is LIVE then `extra` as it is. */
    function requestWithBlock(c: RawH2Client, id: number, extra: Buffer, before: Buffer = EMPTY): void {
      c.headers(id, Buffer.concat([before, fieldBlock(LIVE), extra]));
      c.data(id, grpcMessage(EMPTY), true);
    }

    it('§2.3.3: an index beyond both tables is a connection error COMPRESSION_ERROR', async () => {
      const c = await open();
      requestWithBlock(c, 1, hpack.indexed(70));
      await expectConnectionError(c, 'COMPRESSION_ERROR');
    });

    it('§2.3.3: a literal whose name index is beyond both tables is a connection error COMPRESSION_ERROR', async () => {
      const c = await open();
      requestWithBlock(c, 1, hpack.literalNamed(70, 'v'));
      await expectConnectionError(c, 'COMPRESSION_ERROR');
    });

    it('§4.2: a dynamic table size update above SETTINGS_HEADER_TABLE_SIZE is a connection error COMPRESSION_ERROR', async () => {
      const c = await open();
      const limit = c.peerSettings.get(SETTING.HEADER_TABLE_SIZE) ?? 4096;
      requestWithBlock(c, 1, EMPTY, hpack.sizeUpdate(limit + 1));
      await expectConnectionError(c, 'COMPRESSION_ERROR');
    });

    it('§4.2: a size update within the limit applies: the entries it evicts are gone', async () => {
      const c = await open();
      requestWithBlock(c, 1, hpack.indexedLiteral('x-tenant', 'acme'));
      await expectServed(c, 1);
      requestWithBlock(c, 3, hpack.indexed(62));
      await expectServed(c, 3);
      requestWithBlock(c, 5, hpack.indexed(62), hpack.sizeUpdate(0));
      await expectConnectionError(c, 'COMPRESSION_ERROR');
    });

    it('§4.4: entries are evicted oldest first, and one larger than the table empties it', async () => {
      const c = await open();
      const value = (ch: string) => ch.repeat(1_400);
      // Three entries of 1,438 octets each in a 4,096-octet table: the first is evicted.
      requestWithBlock(c, 1, Buffer.concat([hpack.indexedLiteral('x-a', value('a')), hpack.indexedLiteral('x-b', value('b')), hpack.indexedLiteral('x-c', value('c'))]));
      await expectServed(c, 1);
      requestWithBlock(c, 3, Buffer.concat([hpack.indexed(62), hpack.indexed(63)]));
      await expectServed(c, 3);
      // An entry larger than the whole table: the table ends empty, without an error.
      requestWithBlock(c, 5, hpack.indexedLiteral('x-big', 'z'.repeat(5_000)));
      await expectServed(c, 5);
      requestWithBlock(c, 7, hpack.indexed(62));
      await expectConnectionError(c, 'COMPRESSION_ERROR');
    });

    it('§5.1: an integer beyond any index is a connection error COMPRESSION_ERROR', async () => {
      const c = await open();
      requestWithBlock(c, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]));
      await expectConnectionError(c, 'COMPRESSION_ERROR');
    });

    it('§5.1: an integer cut off by the end of the block is a connection error COMPRESSION_ERROR', async () => {
      const c = await open();
      requestWithBlock(c, 1, Buffer.from([0xff, 0x80]));
      await expectConnectionError(c, 'COMPRESSION_ERROR');
    });

    it('§5.2: a string longer than the rest of the block is a connection error COMPRESSION_ERROR', async () => {
      const c = await open();
      requestWithBlock(c, 1, Buffer.concat([Buffer.from([0x00]), hpack.string('x-v'), Buffer.from([0x10]), Buffer.from('short')]));
      await expectConnectionError(c, 'COMPRESSION_ERROR');
    });

    it('§5.2: decodes Huffman-coded strings', async () => {
      const c = await open();
      requestWithBlock(c, 1, Buffer.concat([Buffer.from([0x00]), hpack.string('x-host'), hpack.huffman(HUFFMAN_WWW_EXAMPLE_COM)]));
      await expectServed(c, 1);
    });

    it.each<[string, Buffer]>([
      // 'a' (00011), then EOS (30 ones), padded with ones.
      ['a Huffman string holding EOS', Buffer.from([0x1f, 0xff, 0xff, 0xff, 0xff])],
      // 'a' (00011), then 11 bits of ones.
      ['Huffman padding longer than 7 bits', Buffer.from([0x1f, 0xff])],
      // 'a' (00011), then 000: padding that is not the start of EOS.
      ['Huffman padding that is not the most significant bits of EOS', Buffer.from([0x18])],
    ])('§5.2: %s is a connection error COMPRESSION_ERROR', async (_what, coded) => {
      const c = await open();
      requestWithBlock(c, 1, Buffer.concat([Buffer.from([0x00]), hpack.string('x-v'), hpack.huffman(coded)]));
      await expectConnectionError(c, 'COMPRESSION_ERROR');
    });

    it('§6.1: index 0 is a connection error COMPRESSION_ERROR', async () => {
      const c = await open();
      requestWithBlock(c, 1, hpack.indexed(0));
      await expectConnectionError(c, 'COMPRESSION_ERROR');
    });

    it('§6.3: a dynamic table size update after a field is a connection error COMPRESSION_ERROR', async () => {
      const c = await open();
      requestWithBlock(c, 1, hpack.sizeUpdate(100));
      await expectConnectionError(c, 'COMPRESSION_ERROR');
    });
  });
});

// ModelInfer's message through the raw client is read by the door itself: a sanity check that the
// raw client speaks to both doors' hot path as gRPC clients do.
describe.each<DoorName>(['router', 'pod'])('the %s door\'s hot path through the raw client', (which) => {
  it('answers a ModelInfer sent frame by frame', async () => {
    const c = await RawH2Client.open(doors[which].address);
    clients.push(c);
    const message = protos().inference.GRPCInferenceService.service.ModelInfer.requestSerialize({ model_name: 'nope', inputs: [] });
    c.grpcRequest(1, MODEL_INFER, message);
    expect(await c.response(1)).toBe(':status 200 grpc-status 5');
  });
});
