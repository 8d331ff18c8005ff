// The limits of a door (lib/h2/limits.ts) on H2Server and H2FrontDoor in this process, each set low
// so a test reaches it in a few frames, against a raw-frame client (test/helpers/h2-raw.ts): the
// timeouts on the server's tick, the rates, the keepalive policy, the sizes of field blocks, and
// the request and answer budgets. test/integration/h2-hostile.test.ts attacks the real doors.
import { ByteBudget } from '../../../../lib/h2/budget';
import { H2_NO_ERROR, type H2Stream, type Header } from '../../../../lib/h2/connection';
import { H2FrontDoor } from '../../../../lib/h2/front-door';
import { respondMessage, statusOf } from '../../../../lib/h2/grpc';
import { DEFAULT_H2_LIMITS, h2LimitsOf } from '../../../../lib/h2/limits';
import type { H2ServerOptions } from '../../../../lib/h2/server';
import { loadConfig } from '../../../../lib/config';
import {
  ERROR,
  FRAME,
  SETTING,
  fieldBlock,
  grpcRequestHeaders,
  hpack,
  RawH2Client,
  valueOf,
  type RawConnectOptions,
} from '../../../helpers/h2-raw';
import { Closer, HOST, sleep, startH2Server } from './peers';

const closer = new Closer();
const clients: RawH2Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await closer.closeAll();
});

const HOT = '/test.Svc/Hot';
const HEADERS = grpcRequestHeaders('/test.Svc/Echo');

/** Our server with `opts`; each stream is answered 200 with its body echoed once the request ends. */
async function server(opts: H2ServerOptions = {}, onStream?: (stream: H2Stream, headers: Header[], endStream: boolean) => void) {
  return startH2Server(closer, onStream ?? ((stream, _headers, endStream) => {
    const chunks: Buffer[] = [];
    const answer = () => {
      stream.sendHeaders([[':status', '200']]);
      stream.end([['grpc-status', '0']], Buffer.concat(chunks));
    };
    if (endStream) return answer();
    stream.onData = (c, end) => {
      chunks.push(Buffer.from(c));
      if (end) answer();
    };
  }), opts);
}

async function open(address: string, opts: Omit<RawConnectOptions, 'preface' | 'read'> = {}): Promise<RawH2Client> {
  const c = await RawH2Client.open(address, opts);
  clients.push(c);
  return c;
}

async function connect(address: string, opts: RawConnectOptions = {}): Promise<RawH2Client> {
  const c = await RawH2Client.connect(address, opts);
  clients.push(c);
  return c;
}

describe('limits from the configuration', () => {
  it('every INFERMESH_H2_* setting reaches the door, and the defaults are the table\'s', () => {
    expect(h2LimitsOf(loadConfig({}))).toEqual(DEFAULT_H2_LIMITS);
    const set = h2LimitsOf(loadConfig({ INFERMESH_H2_MAX_CONCURRENT_STREAMS: '7', INFERMESH_H2_KEEPALIVE_PERMIT_WITHOUT_STREAM: 'true', INFERMESH_H2_STREAM_IDLE_TIMEOUT_MS: '5' }));
    expect(set).toMatchObject({ maxConcurrentStreams: 7, keepalivePermitWithoutStream: true, streamIdleTimeoutMs: 5 });
    expect(() => loadConfig({ INFERMESH_H2_MAX_SETTINGS_ENTRIES: '3' })).toThrow(/INFERMESH_H2_MAX_SETTINGS_ENTRIES/);
  });
});

describe('timeouts, on the server\'s tick', () => {
  it('a connection that never sends the preface is closed', async () => {
    const { address } = await server({ prefaceTimeoutMs: 100 });
    const c = await connect(address, { preface: false });
    c.write(Buffer.from('PRI * HTTP/2.0\r\n'));
    expect(await c.closedWithin(2_000)).toBe(true);
  });

  it('a client that never acknowledges the SETTINGS gets GOAWAY SETTINGS_TIMEOUT', async () => {
    const { address } = await server({ settingsAckTimeoutMs: 100 });
    const c = await connect(address, { ackSettings: false });
    expect(await c.goawayWithin(2_000)).toBe('GOAWAY SETTINGS_TIMEOUT and closed');
  });

  it('a field block begun and never finished: GOAWAY ENHANCE_YOUR_CALM', async () => {
    const { address } = await server({ headersTimeoutMs: 100 });
    const c = await open(address);
    c.headers(1, HEADERS.slice(0, 3), { endHeaders: false });
    expect(await c.goawayWithin(2_000)).toBe('GOAWAY ENHANCE_YOUR_CALM and closed');
  });

  it('an idle connection is closed whatever PINGs keep coming (GOAWAY NO_ERROR)', async () => {
    const { address } = await server({ idleTimeoutMs: 300, keepalivePermitWithoutStream: true, keepaliveMinIntervalMs: 0 });
    const c = await open(address);
    // A call first: the timer runs from the end of the last stream.
    c.grpcRequest(1, '/test.Svc/Echo', Buffer.from('x'));
    await c.response(1);
    const start = Date.now();
    for (let i = 0; !c.goaway && Date.now() - start < 2_000; i++) {
      c.ping(i);
      await sleep(50);
    }
    expect(c.goaway?.code).toBe(ERROR.NO_ERROR);
    expect(Date.now() - start).toBeGreaterThanOrEqual(250);
    expect(await c.closedWithin(2_000)).toBe(true);
  });

  it('a stream with no frame either way is reset (CANCEL) and its connection serves on', async () => {
    const closed: (number | undefined)[] = [];
    const { address } = await server({ streamIdleTimeoutMs: 200 }, (stream) => {
      stream.onClose = (code) => closed.push(code);
    });
    const c = await open(address);
    c.headers(1, HEADERS);
    expect(await c.response(1, 3_000)).toBe('RST_STREAM CANCEL');
    expect(closed).toEqual([ERROR.CANCEL]);
    expect(await c.reaction()).toBe('ignored');
  });
});

describe('the keepalive policy (grpc-go\'s EnforcementPolicy)', () => {
  it('PINGs without a stream: the first is free, two strikes are allowed, the third is GOAWAY ENHANCE_YOUR_CALM "too_many_pings"', async () => {
    const { address } = await server();
    const c = await open(address);
    for (let i = 0; i < 3; i++) {
      c.ping(i);
      await c.until('the ACK', () => c.pingAcked(i), 2_000);
    }
    c.ping(3);
    expect(await c.goawayWithin(2_000)).toBe('GOAWAY ENHANCE_YOUR_CALM and closed');
    expect(c.goaway?.debug).toBe('too_many_pings');
    expect(c.pingAcked(3)).toBe(false);
  });

  it('data the door sends between PINGs resets the strikes (a client measuring its bandwidth pings as data arrives)', async () => {
    const { address } = await server({ keepaliveMinIntervalMs: 60_000 });
    const c = await open(address);
    for (let i = 0; i < 10; i++) {
      c.grpcRequest(1 + 2 * i, '/test.Svc/Echo', Buffer.from('x'));
      await c.response(1 + 2 * i);
      c.ping(i);
      await c.until('the ACK', () => c.pingAcked(i), 2_000);
    }
    expect(c.goaway).toBeUndefined();
  });

  it('PINGs at the allowed interval are fine, with a stream open or, when permitted, without', async () => {
    const { address } = await server({ keepaliveMinIntervalMs: 100, keepalivePermitWithoutStream: true });
    const c = await open(address);
    for (let i = 0; i < 5; i++) {
      c.ping(i);
      await c.until('the ACK', () => c.pingAcked(i), 2_000);
      await sleep(120);
    }
    expect(c.goaway).toBeUndefined();
  });
});

describe('rates and sizes answered with ENHANCE_YOUR_CALM', () => {
  it('RST_STREAM beyond the burst and rate', async () => {
    const { address } = await server({ resetBurst: 5, resetsPerSecond: 1 });
    const c = await open(address);
    for (let i = 0; i < 5; i++) {
      c.headers(1 + 2 * i, HEADERS);
      c.rstStream(1 + 2 * i);
    }
    expect(await c.reaction()).toBe('ignored');
    c.headers(11, HEADERS);
    c.rstStream(11);
    expect(await c.connectionError()).toBe('GOAWAY ENHANCE_YOUR_CALM and closed');
  });

  it('SETTINGS beyond the burst, and a SETTINGS frame of more entries than allowed', async () => {
    const { address } = await server({ settingsBurst: 3, maxSettingsEntries: 4 });
    const a = await open(address); // its preface's SETTINGS is the first of 3
    a.settings([[SETTING.MAX_FRAME_SIZE, 16_384]]);
    a.settings([]);
    expect(await a.reaction()).toBe('ignored');
    a.settings([]);
    expect(await a.connectionError()).toBe('GOAWAY ENHANCE_YOUR_CALM and closed');
    const b = await open(address);
    b.settings(Array.from({ length: 5 }, () => [SETTING.INITIAL_WINDOW_SIZE, 1_000] as const));
    expect(await b.connectionError()).toBe('GOAWAY ENHANCE_YOUR_CALM and closed');
  });

  it('empty frames in a row: one is allowed, the second is a flood', async () => {
    const { address } = await server({ maxConsecutiveEmptyFrames: 1 });
    const c = await open(address);
    c.headers(1, HEADERS);
    c.data(1, Buffer.alloc(0));
    c.data(1, Buffer.from('x'));
    c.data(1, Buffer.alloc(0));
    expect(await c.reaction()).toBe('ignored');
    c.data(1, Buffer.alloc(0));
    expect(await c.connectionError()).toBe('GOAWAY ENHANCE_YOUR_CALM and closed');
  });

  it('CONTINUATION frames beyond the limit of a block, and a block larger than allowed as sent', async () => {
    const { address } = await server({ maxContinuationFrames: 2, maxHeaderBlockBytes: 2_000 });
    const a = await open(address);
    const block = fieldBlock(HEADERS);
    a.headers(1, block.subarray(0, 5), { endHeaders: false });
    a.continuation(1, block.subarray(5, 10), false);
    a.continuation(1, block.subarray(10, 15), false);
    a.continuation(1, block.subarray(15), true);
    expect(await a.goawayWithin(2_000)).toBe('GOAWAY ENHANCE_YOUR_CALM and closed');
    // Padding counts: a small block padded past the limit in two frames.
    const b = await open(address);
    b.headers(3, block.subarray(0, 5), { endHeaders: false, padLength: 250 });
    for (let i = 0; i < 2; i++) b.send(FRAME.CONTINUATION, 0, 3, Buffer.alloc(900, 0x20));
    expect(await b.goawayWithin(2_000)).toBe('GOAWAY ENHANCE_YOUR_CALM and closed');
  });

  it('a header list too large once decoded refuses its stream only, and the dynamic table stays in step', async () => {
    const { address } = await server({ maxHeaderListBytes: 2_000 });
    const c = await open(address);
    // 1,500 octets enter the dynamic table (62) on stream 1; stream 3 names them twice: 3,000 decoded from 2 octets.
    c.headers(1, Buffer.concat([fieldBlock(HEADERS), hpack.indexedLiteral('x-big', 'b'.repeat(1_500))]), { endStream: true });
    expect(await c.response(1)).toBe(':status 200 grpc-status 0');
    c.headers(3, Buffer.concat([fieldBlock(HEADERS), hpack.indexed(62), hpack.indexed(62)]), { endStream: true });
    expect(await c.response(3)).toBe('RST_STREAM ENHANCE_YOUR_CALM');
    c.headers(5, Buffer.concat([fieldBlock(HEADERS), hpack.indexed(62)]), { endStream: true });
    expect(await c.response(5)).toBe(':status 200 grpc-status 0');
  });
});

describe('memory budgets', () => {
  /** A door whose hot method answers `answer(body)`; the fallback is never reached here. */
  async function door(limits: H2ServerOptions, answer: (body: Buffer) => Buffer = (b) => b.subarray(5), hold?: (stream: H2Stream) => boolean) {
    const d = new H2FrontDoor({
      path: HOT,
      onUnary: (stream, _headers, body) => {
        if (hold?.(stream)) return;
        respondMessage(stream, answer(body), 1 << 30);
      },
      maxMessageBytes: 1 << 20,
      who: 'the test door',
      fallbackAddress: `${HOST}:1`,
      limits,
    });
    closer.add(d, (x) => x.drain(0));
    const port = await d.listen(HOST, 0);
    return `${HOST}:${port}`;
  }

  it('a message that does not fit the request budget is refused by its prefix, before any of it is read', async () => {
    const held: H2Stream[] = [];
    const address = await door({ maxRequestBytesPerConnection: 10_000 }, undefined, (s) => held.push(s) > 0);
    const c = await open(address);
    // 6,000 fits; 6,000 more on the same connection does not while the first is held.
    c.grpcRequest(1, HOT, Buffer.alloc(6_000, 1));
    await c.until('the first to be handed over', () => held.length === 1, 2_000);
    const head = Buffer.alloc(5);
    head.writeUInt32BE(6_000, 1);
    c.headers(3, grpcRequestHeaders(HOT));
    c.data(3, head);
    await c.until('the refusal', () => c.resets.has(3), 2_000);
    expect(statusOf(c.blocks(3)[0])?.code).toBe(8);
    expect(statusOf(c.blocks(3)[0])?.message).toMatch(/request of 6000 bytes does not fit the test door's buffers/);
    // Once the first call ends, its bytes are the budget's again.
    respondMessage(held[0]!, Buffer.from('done'), 1 << 20);
    expect(await c.response(1)).toBe(':status 200 grpc-status 0');
    c.grpcRequest(5, HOT, Buffer.alloc(6_000, 2));
    await c.until('the third to be handed over', () => held.length === 2, 2_000);
  });

  it('the door-wide request budget holds across connections', async () => {
    const held: H2Stream[] = [];
    const address = await door({ maxRequestBytes: 10_000 }, undefined, (s) => held.push(s) > 0);
    const a = await open(address);
    a.grpcRequest(1, HOT, Buffer.alloc(6_000));
    await a.until('the first to be handed over', () => held.length === 1, 2_000);
    const b = await open(address);
    b.grpcRequest(1, HOT, Buffer.alloc(6_000));
    await b.until('the refusal', () => b.blocks(1).length > 0, 2_000);
    expect(statusOf(b.blocks(1)[0])?.code).toBe(8);
  });

  it('data a stream holds reopens the connection window only within the budget', async () => {
    const streams: H2Stream[] = [];
    const { address } = await server({ maxRequestBytesPerConnection: 100_000, connectionWindowBytes: 65_535, streamWindowBytes: 1 << 20 }, (stream) => {
      // An owner that passes nothing on: the data stays held.
      stream.manualFlowControl = true;
      streams.push(stream);
    });
    const c = await open(address);
    c.headers(1, HEADERS);
    c.headers(3, HEADERS);
    // Stream 1 takes the budget and more; then stream 3 finds the connection window shut.
    const first = await c.upload(1, 400_000, { stallMs: 300 });
    expect(first).toBeGreaterThan(100_000);
    expect(first).toBeLessThanOrEqual(100_000 + 65_535 + 16_384);
    expect(await c.upload(3, 10_000, { stallMs: 300 })).toBeLessThan(10_000);
    // Passing the data on gives the window back.
    streams[0]!.consume(first);
    expect(await c.upload(3, 10_000, { stallMs: 1_000 })).toBe(10_000);
  });

  it('answers queued for a client that does not read: up to the budget, then RESOURCE_EXHAUSTED (one of any size always fits an empty connection)', async () => {
    const address = await door({ maxResponseBytesPerConnection: 10_000 }, () => Buffer.alloc(6_000, 7));
    const c = await open(address, { settings: [[SETTING.INITIAL_WINDOW_SIZE, 0]] });
    const codes: string[] = [];
    for (let id = 1; id <= 5; id += 2) {
      c.grpcRequest(id, HOT, Buffer.from('x'));
      await c.until(`an answer on ${id}`, () => c.blocks(id).length > 0, 2_000);
      codes.push(valueOf(c.blocks(id)[0]!, 'grpc-status') ?? 'queued');
    }
    // 6,005 queued; 12,010 would be over 10,000: refused; the third likewise.
    expect(codes).toEqual(['queued', '8', '8']);
    expect(c.dataBytes.get(1) ?? 0).toBe(0);
    // The client opens its window: the first answer goes out, and the next fits again.
    c.windowUpdate(1, 10_000);
    expect(await c.response(1)).toBe(':status 200 grpc-status 0');
    c.grpcRequest(7, HOT, Buffer.from('x'));
    await c.until('an answer on 7', () => c.blocks(7).length > 0, 2_000);
    expect(valueOf(c.blocks(7)[0]!, 'grpc-status')).toBeUndefined();
  });

  it('ByteBudget counts what fits', () => {
    const b = new ByteBudget(10);
    expect(b.fits(10)).toBe(true);
    b.used = 4;
    expect(b.fits(7)).toBe(false);
  });

  it('an upload stopped by the door (RST_STREAM NO_ERROR) and the frames that crossed it leave nothing held', async () => {
    const address = await door({ maxRequestBytesPerConnection: 1_000 });
    const c = await open(address);
    const head = Buffer.alloc(5);
    head.writeUInt32BE(5_000, 1);
    c.headers(1, grpcRequestHeaders(HOT));
    c.data(1, head);
    c.data(1, Buffer.alloc(3_000));
    await c.until('the answer and the end of the upload', () => c.resets.has(1), 2_000);
    expect(valueOf(c.blocks(1)[0]!, 'grpc-status')).toBe('8');
    expect(c.resets.get(1)).toBe(H2_NO_ERROR);
    expect(await c.reaction()).toBe('ignored');
    c.grpcRequest(3, HOT, Buffer.alloc(900, 3));
    expect(await c.response(3)).toBe(':status 200 grpc-status 0');
    expect(c.dataBytes.get(3)).toBe(905);
  });
});
