// H2Connection, H2Server and H2Upstream against real peers: node:http2 (nghttp2) and grpc-js as
// clients of our server, a node:http2 server for our client. Bodies larger than every window,
// hundreds of streams on one connection, trailers, resets either way, GOAWAY, PING, stream limits and
// peers that do not speak HTTP/2.
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import {
  CONNECTION_LOST,
  H2_CANCEL,
  H2_COMPRESSION_ERROR,
  H2_FLOW_CONTROL_ERROR,
  H2_FRAME_SIZE_ERROR,
  H2Connection,
  H2_PROTOCOL_ERROR,
  H2_REFUSED_STREAM,
  H2_ENHANCE_YOUR_CALM,
  HeaderListTooLarge,
  type H2Stream,
  type Header,
} from '../../../../lib/h2/connection';
import { encodeHeaders } from '../../../../lib/h2/hpack';
import { H2Upstream } from '../../../../lib/h2/upstream';
import { respondStatus } from '../../../../lib/h2/grpc';
import { createCa, issueCertificate } from '../../../../lib/pki';
import {
  Closer,
  collect,
  connectNode,
  connectOurs,
  grpcFrame,
  HOST,
  nodeRequest,
  parseFrames,
  pattern,
  PREFACE,
  QUIET,
  rawFrame,
  sleep,
  startH2Server,
  startNodeServer,
  until,
  valueOf,
} from './peers';
import { FLAG, FRAME, RawH2Client } from '../../../helpers/h2-raw';

const closer = new Closer();
afterEach(() => closer.closeAll());

const ENHANCE_YOUR_CALM = http2.constants.NGHTTP2_ENHANCE_YOUR_CALM;
const MiB = 1 << 20;

/**
 * Our side of an echo: the body goes back as it comes, the peer's window reopened only once a chunk
 * has gone out (manual flow control), then trailers with the byte count and the client's trailers.
 */
function echo(stream: H2Stream, endStream: boolean, stats = { drains: 0 }): void {
  stream.manualFlowControl = true;
  let total = 0;
  let unconsumed = 0;
  stream.sendHeaders([[':status', '200'], ['content-type', 'application/octet-stream']]);
  if (endStream) return stream.end([['x-bytes', '0']]);
  stream.onDrain = () => {
    stats.drains++;
    stream.consume(unconsumed);
    unconsumed = 0;
  };
  stream.onData = (chunk, end) => {
    total += chunk.length;
    if (stream.write(chunk)) stream.consume(chunk.length);
    else unconsumed += chunk.length;
    if (end) stream.end([['x-bytes', String(total)]]);
  };
  stream.onHeaders = (trailers) => stream.end([['x-bytes', String(total)], ['x-client-checksum', valueOf(trailers, 'x-checksum') ?? 'none']]);
}

function requestHeaders(address: string, path: string, extra: Header[] = []): Header[] {
  return [[':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', address], ['content-type', 'application/octet-stream'], ...extra];
}

describe('H2Server with a node:http2 client', () => {
  it('answers headers, body and trailers, and reads the client trailers', async () => {
    const seen: { headers: Header[]; trailers?: Header[] }[] = [];
    const { port } = await startH2Server(closer, (stream, headers, endStream) => {
      const entry: { headers: Header[]; trailers?: Header[] } = { headers };
      seen.push(entry);
      echo(stream, endStream);
      const onHeaders = stream.onHeaders;
      stream.onHeaders = (trailers, end) => {
        entry.trailers = trailers;
        onHeaders(trailers, end);
      };
    });
    const session = await connectNode(closer, port);
    const res = await nodeRequest(session, { ':method': 'POST', ':path': '/echo', 'x-team': 'search' }, Buffer.from('hello'), { 'x-checksum': 'c0ffee' });
    expect(res.headers[':status']).toBe(200);
    expect(res.body.toString()).toBe('hello');
    expect(res.trailers).toMatchObject({ 'x-bytes': '5', 'x-client-checksum': 'c0ffee' });
    expect(valueOf(seen[0]!.headers, 'x-team')).toBe('search');
    expect(valueOf(seen[0]!.headers, ':path')).toBe('/echo');
    expect(seen[0]!.trailers).toEqual([['x-checksum', 'c0ffee']]);

    const empty = await nodeRequest(session, { ':path': '/empty' });
    expect(empty.body.length).toBe(0);
    expect(empty.trailers).toMatchObject({ 'x-bytes': '0' });
  });

  it('moves 5 MiB each way through 64 KiB peer windows and a 1 MiB stream window, sends queued and drained', async () => {
    const stats = { drains: 0 };
    const { port } = await startH2Server(closer, (stream, _headers, endStream) => echo(stream, endStream, stats));
    const session = await connectNode(closer, port);
    const body = pattern(5 * MiB, 7);
    const res = await nodeRequest(session, { ':method': 'POST', ':path': '/echo' }, body);
    expect(res.body.length).toBe(body.length);
    expect(res.body.equals(body)).toBe(true);
    expect(res.trailers?.['x-bytes']).toBe(String(body.length));
    // nghttp2's windows (64 KiB) held our answer back: write() queued and onDrain reopened the client's.
    expect(stats.drains).toBeGreaterThan(0);
  });

  it('sends no header list longer than the peer\'s SETTINGS said it takes, and marks a stream sent before they came', async () => {
    const { port } = await startH2Server(closer, (stream) => stream.end([[':status', '200']]), { maxHeaderListBytes: 1024 });
    const base: Header[] = [[':method', 'POST'], [':scheme', 'http'], [':path', '/x'], [':authority', 'a']];
    // Before the server's SETTINGS: sent, and marked; the server refuses it itself.
    const early = new H2Connection(net.connect(port, '127.0.0.1'), 'client', undefined, QUIET);
    closer.add(early, (c) => c.destroy());
    const first = early.request([...base, ['x-pad', 'p'.repeat(2000)]], true);
    expect(first.headerListUnchecked).toBe(true);
    expect((await collect(first)).code).toBe(H2_ENHANCE_YOUR_CALM);
    // After them: refused here, with the sizes; a list within the limit goes, unmarked.
    const conn = await connectOurs(closer, port);
    expect(() => conn.request([...base, ['x-pad', 'p'.repeat(2000)]], true)).toThrow(HeaderListTooLarge);
    expect(() => conn.request([...base, ['x-pad', 'p'.repeat(2000)]], true)).toThrow(/^a header list of 2\d{3} bytes, more than the 1024 the peer takes$/);
    const ok = conn.request(base, true);
    expect(ok.headerListUnchecked).toBe(false);
    expect(valueOf((await collect(ok)).headers, ':status')).toBe('200');
  });

  it('sends 5 MiB written at once: write() returns false and onDrain comes once it has all gone', async () => {
    const events: string[] = [];
    const { port } = await startH2Server(closer, (stream) => {
      stream.sendHeaders([[':status', '200']]);
      stream.onDrain = () => {
        events.push('drain');
        stream.end([['grpc-status', '0']]);
      };
      events.push(`write:${stream.write(pattern(5 * MiB, 3))}`);
    });
    const session = await connectNode(closer, port);
    const res = await nodeRequest(session, { ':path': '/download' });
    expect(res.body.equals(pattern(5 * MiB, 3))).toBe(true);
    expect(res.trailers?.['grpc-status']).toBe('0');
    expect(events).toEqual(['write:false', 'drain']);
  });

  it('carries 200 concurrent streams on one connection', async () => {
    const { port } = await startH2Server(closer, (stream, _headers, endStream) => echo(stream, endStream));
    const session = await connectNode(closer, port);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => nodeRequest(session, { ':method': 'POST', ':path': `/echo/${i}` }, pattern(1_000 + i * 37, i + 1))),
    );
    results.forEach((res, i) => {
      expect(res.headers[':status']).toBe(200);
      expect(res.body.equals(pattern(1_000 + i * 37, i + 1))).toBe(true);
    });
  });

  it('reads padded HEADERS and DATA frames and HEADERS with a priority', async () => {
    const { port } = await startH2Server(closer, (stream, _headers, endStream) => echo(stream, endStream));
    const session = await connectNode(closer, port, { paddingStrategy: http2.constants.PADDING_STRATEGY_MAX });
    const body = pattern(300_000, 9);
    const res = await nodeRequest(session, { ':method': 'POST', ':path': '/padded' }, body, { 'x-checksum': 'padded' });
    expect(res.body.equals(body)).toBe(true);
    expect(res.trailers).toMatchObject({ 'x-client-checksum': 'padded' });
    const weighted = await new Promise<Buffer>((resolve) => {
      const req = session.request({ ':method': 'POST', ':path': '/weighted' }, { weight: 200, exclusive: true });
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('close', () => resolve(Buffer.concat(chunks)));
      req.end('weighted');
    });
    expect(weighted.toString()).toBe('weighted');
  });

  it('delivers a client RST_STREAM to onClose with its code', async () => {
    const closed: (number | undefined)[] = [];
    const { port } = await startH2Server(closer, (stream) => {
      stream.sendHeaders([[':status', '200']]);
      stream.onClose = (code) => closed.push(code);
    });
    const session = await connectNode(closer, port);
    const req = session.request({ ':path': '/hold' });
    req.on('error', () => undefined);
    await new Promise((r) => req.once('response', r));
    req.close(ENHANCE_YOUR_CALM);
    await until('the server stream to close', () => closed.length === 1);
    expect(closed).toEqual([ENHANCE_YOUR_CALM]);
  });

  it('sends our RST_STREAM to the node:http2 client with its code', async () => {
    let code: number | undefined = -2;
    const { port } = await startH2Server(closer, (stream) => {
      stream.sendHeaders([[':status', '200']]);
      stream.write(Buffer.from('partial'));
      stream.onClose = (c) => (code = c);
      setImmediate(() => stream.reset(ENHANCE_YOUR_CALM));
    });
    const session = await connectNode(closer, port);
    const res = await nodeRequest(session, { ':path': '/reset' });
    expect(res.rstCode).toBe(ENHANCE_YOUR_CALM);
    expect(code).toBe(ENHANCE_YOUR_CALM);
    // The connection is still good for the next stream.
    const again = nodeRequest(session, { ':path': '/reset' });
    expect((await again).rstCode).toBe(ENHANCE_YOUR_CALM);
  });

  it('drain: GOAWAY to the client, the stream in flight finishes, then the connection closes', async () => {
    const held: H2Stream[] = [];
    const { server, port } = await startH2Server(closer, (stream) => {
      stream.sendHeaders([[':status', '200']]);
      held.push(stream);
    });
    const session = await connectNode(closer, port);
    const goaway = new Promise<number>((r) => session.once('goaway', (code: number) => r(code)));
    const sessionClosed = new Promise<void>((r) => session.once('close', () => r()));
    const answer = nodeRequest(session, { ':path': '/slow' });
    await until('the stream to reach the server', () => held.length === 1);

    const drained = server.drain(5_000);
    expect(await goaway).toBe(0);
    await sleep(50);
    expect(session.destroyed).toBe(false);
    held[0]!.end([['grpc-status', '0']], Buffer.from('finished after GOAWAY'));
    const res = await answer;
    expect(res.body.toString()).toBe('finished after GOAWAY');
    expect(res.trailers?.['grpc-status']).toBe('0');
    expect(await drained).toBe(true);
    await sessionClosed;
    // And it takes no new connections.
    await expect(connectNode(closer, port)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('maxConnectionAgeMs: GOAWAY after about that age, the stream in flight still finishes', async () => {
    const held: H2Stream[] = [];
    const { port } = await startH2Server(
      closer,
      (stream) => {
        stream.sendHeaders([[':status', '200']]);
        held.push(stream);
      },
      { maxConnectionAgeMs: 300 },
    );
    const started = Date.now();
    const session = await connectNode(closer, port);
    const goaway = new Promise<number>((r) => session.once('goaway', (code: number) => r(code)));
    const answer = nodeRequest(session, { ':path': '/long' });
    await until('the stream to reach the server', () => held.length === 1);
    expect(await goaway).toBe(0);
    const age = Date.now() - started;
    expect(age).toBeGreaterThanOrEqual(260);
    expect(age).toBeLessThan(1_500);
    held[0]!.end(undefined, Buffer.from('done'));
    expect((await answer).body.toString()).toBe('done');
    await until('the session to close', () => session.closed || session.destroyed);
  });

  it('answers the node:http2 client PING', async () => {
    const { port } = await startH2Server(closer, (stream) => stream.sendHeaders([[':status', '204']], true));
    const session = await connectNode(closer, port);
    const payload = Buffer.from('8 octets');
    const echoed = await new Promise<Buffer>((resolve, reject) => {
      session.ping(payload, (err, _ms, p) => (err ? reject(err) : resolve(p)));
    });
    expect(echoed.equals(payload)).toBe(true);
  });

  it('keeps to maxConcurrentStreams: nghttp2 holds the streams over it back, all finish', async () => {
    const held: H2Stream[] = [];
    let most = 0;
    const { port } = await startH2Server(
      closer,
      (stream) => {
        held.push(stream);
        most = Math.max(most, held.filter((s) => !s.closed).length);
        stream.sendHeaders([[':status', '200']]);
        setTimeout(() => stream.end(undefined, Buffer.from(String(stream.id))), 20);
      },
      { maxConcurrentStreams: 4 },
    );
    const session = await connectNode(closer, port);
    const results = await Promise.all(Array.from({ length: 12 }, () => nodeRequest(session, { ':path': '/limited' })));
    expect(results.map((r) => r.headers[':status'])).toEqual(Array(12).fill(200));
    expect(held).toHaveLength(12);
    expect(most).toBeLessThanOrEqual(4);
  });

  it('closes the connection on a peer that sends something other than the preface, and keeps serving', async () => {
    const { port } = await startH2Server(closer, (stream) => stream.sendHeaders([[':status', '204']], true));
    const sock = closer.add(net.connect(port, HOST), (s) => s.destroy());
    const got: Buffer[] = [];
    sock.on('data', (d: Buffer) => got.push(d));
    sock.on('error', () => undefined);
    const ended = new Promise((r) => sock.once('end', r));
    sock.write('GET / HTTP/1.1\r\nHost: example\r\n\r\n');
    await ended;
    const frames = parseFrames(Buffer.concat(got));
    const goaway = frames.find((f) => f.type === 0x7);
    expect(goaway?.payload.readUInt32BE(4)).toBe(H2_PROTOCOL_ERROR);

    const session = await connectNode(closer, port);
    expect((await nodeRequest(session, { ':path': '/' })).headers[':status']).toBe(204);
  });

  it('tears down the TCP connection of a garbage peer that keeps its own side open', async () => {
    const { port } = await startH2Server(closer, (stream) => stream.sendHeaders([[':status', '204']], true));
    const sock = closer.add(net.connect({ port, host: HOST, allowHalfOpen: true }), (s) => s.destroy());
    sock.on('data', () => undefined);
    sock.on('error', () => undefined);
    let ended = false;
    let closed = false;
    sock.once('end', () => (ended = true));
    sock.once('close', () => (closed = true));
    sock.write('GET / HTTP/1.1\r\nHost: example\r\n\r\n');
    await until('the server to end its side', () => ended);
    // RFC 9113 §5.4.1: after a connection error the endpoint MUST close the TCP connection. A
    // half-closed socket the peer may hold open for ever is a file descriptor the server never gets back.
    // Write again: a socket the server really closed answers with a reset (EPIPE/ECONNRESET).
    const deadline = Date.now() + 6_000;
    while (!closed && Date.now() < deadline) {
      sock.write('more garbage');
      await sleep(100);
    }
    expect(closed).toBe(true);
  }, 10_000);

  it.each([
    ['a frame larger than 16 KiB', rawFrame(0x0, 0, 1, Buffer.alloc(20_000)), H2_FRAME_SIZE_ERROR],
    ['a header block HPACK cannot decode', rawFrame(0x1, 0x5, 1, Buffer.from([0xbe])), H2_COMPRESSION_ERROR],
    ['DATA on stream 0', rawFrame(0x0, 0, 0, Buffer.from('x')), H2_PROTOCOL_ERROR],
    ['a PUSH_PROMISE from a client', rawFrame(0x5, 0x4, 1, Buffer.alloc(4)), H2_PROTOCOL_ERROR],
    ['a HEADERS frame on an even stream', rawFrame(0x1, 0x5, 2, Buffer.from([0x82, 0x86, 0x84])), H2_PROTOCOL_ERROR],
    ['HEADERS whose padding is longer than the frame', rawFrame(0x1, 0x5 | 0x8, 1, Buffer.from([10, 0x82, 0x86])), H2_PROTOCOL_ERROR],
    ['another frame between HEADERS and its CONTINUATION', Buffer.concat([rawFrame(0x1, 0x1, 1, Buffer.from([0x82])), rawFrame(0x6, 0, 0, Buffer.alloc(8))]), H2_PROTOCOL_ERROR],
    ['a SETTINGS frame of 5 octets', rawFrame(0x4, 0, 0, Buffer.alloc(5)), H2_FRAME_SIZE_ERROR],
    ['a connection WINDOW_UPDATE of 0', rawFrame(0x8, 0, 0, Buffer.alloc(4)), H2_PROTOCOL_ERROR],
    ['a connection window over 2^31-1', rawFrame(0x8, 0, 0, Buffer.from([0x7f, 0xff, 0xff, 0xff])), H2_FLOW_CONTROL_ERROR],
    ['a PING of 4 octets', rawFrame(0x6, 0, 0, Buffer.alloc(4)), H2_FRAME_SIZE_ERROR],
  ])('answers %s after the preface with GOAWAY and the right code', async (_what, frame, code) => {
    const { port } = await startH2Server(closer, (stream) => stream.sendHeaders([[':status', '204']], true));
    const sock = closer.add(net.connect(port, HOST), (s) => s.destroy());
    const got: Buffer[] = [];
    sock.on('data', (d: Buffer) => got.push(d));
    sock.on('error', () => undefined);
    const ended = new Promise((r) => sock.once('end', r));
    sock.write(Buffer.concat([PREFACE, rawFrame(0x4, 0, 0), frame]));
    await ended;
    const goaway = parseFrames(Buffer.concat(got)).find((f) => f.type === 0x7);
    expect(goaway?.payload.readUInt32BE(4)).toBe(code);
  });
});

describe('limits and timers', () => {
  it('refuses a stream whose header list is over maxHeaderListBytes (RST_STREAM ENHANCE_YOUR_CALM) and serves the next on the same connection', async () => {
    const { port } = await startH2Server(closer, (stream) => stream.sendHeaders([[':status', '204']], true), { maxHeaderListBytes: 1_024 });
    const sock = closer.add(net.connect(port, HOST), (s) => s.destroy());
    const got: Buffer[] = [];
    sock.on('data', (d: Buffer) => got.push(d));
    sock.on('error', () => undefined);
    let ended = false;
    sock.once('end', () => (ended = true));
    const request = (extra: [string, string]) => encodeHeaders([[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'a'], extra]);
    // The server's SETTINGS acknowledged (0x4 with ACK): no SETTINGS timeout may end the connection instead.
    sock.write(Buffer.concat([PREFACE, rawFrame(0x4, 0, 0), rawFrame(0x4, 0x1, 0), rawFrame(0x1, 0x5, 1, request(['x-big', 'v'.repeat(1_500)])), rawFrame(0x1, 0x5, 3, request(['x-small', 'ok']))]));
    const frames = () => parseFrames(Buffer.concat(got));
    await until('an answer on the second stream', () => frames().some((f) => f.type === 0x1 && f.streamId === 3));
    const f = frames();
    expect(f.some((x) => x.type === 0x1 && x.streamId === 1)).toBe(false); // no answer on the first
    expect(f.find((x) => x.type === 0x3 && x.streamId === 1)?.payload.readUInt32BE(0)).toBe(0xb); // ENHANCE_YOUR_CALM
    expect(f.some((x) => x.type === 0x7)).toBe(false);
    expect(ended).toBe(false);
  });

  it('keepalive: a peer that never answers PING loses the connection; one that answers keeps it', async () => {
    // A peer that speaks just enough HTTP/2 (SETTINGS) and then ignores every frame.
    const deaf = net.createServer((sock) => {
      sock.on('error', () => undefined);
      sock.once('data', () => sock.write(rawFrame(0x4, 0, 0)));
      sock.on('data', () => undefined);
    });
    closer.add(deaf, (s) => new Promise((r) => s.close(r)));
    const deafSockets = new Set<net.Socket>();
    deaf.on('connection', (s) => deafSockets.add(s));
    closer.add(deafSockets, (all) => all.forEach((s) => s.destroy()));
    await new Promise<void>((r) => deaf.listen(0, HOST, r));
    const toDeaf = closer.add(
      new H2Connection(net.connect((deaf.address() as net.AddressInfo).port, HOST), 'client', undefined, { keepaliveIntervalMs: 50, keepaliveTimeoutMs: 50 }),
      (c) => c.destroy(),
    );
    let lost = false;
    toDeaf.onClose = () => (lost = true);

    const { port } = await startNodeServer(closer, (stream) => stream.respond({ ':status': 204 }, { endStream: true }));
    // A generous timeout here: the point is that answered pings keep it, not how fast they come.
    const toNode = closer.add(new H2Connection(net.connect(port, HOST), 'client', undefined, { keepaliveIntervalMs: 50, keepaliveTimeoutMs: 2_000 }), (c) => c.destroy());
    await until('the unanswered keepalive to end the connection', () => lost, 2_000);
    await sleep(150);
    expect(toNode.closed).toBe(false);
  });

  it('idleTimeoutMs: a connection without frames either way is ended', async () => {
    const { port } = await startH2Server(closer, (stream) => stream.sendHeaders([[':status', '204']], true), { idleTimeoutMs: 100 });
    const session = await connectNode(closer, port);
    expect((await nodeRequest(session, { ':path': '/' })).headers[':status']).toBe(204);
    const started = Date.now();
    await new Promise((r) => session.once('close', r));
    expect(Date.now() - started).toBeGreaterThanOrEqual(80);
  });

  it('a graceful close serves the request that crossed its GOAWAY, and names the last stream once its PING is answered', async () => {
    const { address } = await startH2Server(closer, (stream) => stream.sendHeaders([[':status', '204']], true), { idleTimeoutMs: 100 });
    // A client that answers no PING: as one whose request was on its way when the GOAWAY came.
    const c = closer.add(await RawH2Client.open(address, { ackPings: false }), (x) => x.destroy());
    await c.until('the GOAWAY of the idle connection', () => c.goaway !== undefined, 5_000);
    expect(c.goaway).toMatchObject({ lastStreamId: 2 ** 31 - 1, code: 0 });
    c.headers(1, [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'x']], { endStream: true });
    await c.until('the request\'s answer', () => c.blocks(1).length > 0 || c.resets.has(1), 5_000);
    expect(c.resets.get(1)).toBeUndefined();
    expect(c.blocks(1)[0]).toContainEqual([':status', '204']);
    expect(c.closed).toBe(false);
    const ping = c.frames.find((f) => f.type === FRAME.PING && !(f.flags & FLAG.ACK));
    c.send(FRAME.PING, FLAG.ACK, 0, ping!.payload);
    const goaways = () => c.frames.filter((f) => f.type === FRAME.GOAWAY);
    await c.until('the last GOAWAY', () => goaways().length === 2, 5_000);
    expect(goaways()[1]!.payload.readUInt32BE(0)).toBe(1);
    expect(await c.closedWithin(5_000)).toBe(true);
  });

  it('a drain waits on a client that never answers its GOAWAY\'s PING for half its budget, not the notice\'s minute', async () => {
    const { server, address } = await startH2Server(closer, (stream) => stream.sendHeaders([[':status', '204']], true), { idleTimeoutMs: 100 });
    // One whose idle close (and its minute of notice) began before the drain, one the drain closes.
    const early = closer.add(await RawH2Client.open(address, { ackPings: false }), (x) => x.destroy());
    await early.until('the GOAWAY of the idle connection', () => early.goaway !== undefined, 5_000);
    const late = closer.add(await RawH2Client.open(address, { ackPings: false }), (x) => x.destroy());
    expect(await server.drain(2_000)).toBe(true);
    for (const c of [early, late]) {
      const goaways = c.frames.filter((f) => f.type === FRAME.GOAWAY);
      expect(goaways.map((f) => f.payload.readUInt32BE(0))).toEqual([2 ** 31 - 1, 0]);
      expect(await c.closedWithin(5_000)).toBe(true);
    }
  });
});

describe('H2Server with a grpc-js client', () => {
  /** A unary gRPC handler over our server: the request message is read whole, then `answer` decides. */
  async function grpcServer(answer: (stream: H2Stream, headers: Header[], message: Buffer) => void): Promise<grpc.Client> {
    const { address } = await startH2Server(closer, (stream, headers, endStream) => {
      const chunks: Buffer[] = [];
      const done = () => {
        const body = Buffer.concat(chunks);
        expect(body[0]).toBe(0); // not compressed
        const length = body.readUInt32BE(1);
        expect(body.length).toBe(5 + length);
        answer(stream, headers, body.subarray(5));
      };
      if (endStream) return done();
      stream.onData = (c, end) => {
        chunks.push(Buffer.from(c));
        if (end) done();
      };
    });
    const client = closer.add(
      new grpc.Client(address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 }),
      (c) => c.close(),
    );
    return client;
  }

  const identity = (b: Buffer): Buffer => b;

  function unary(client: grpc.Client, message: Buffer, metadata = new grpc.Metadata()): Promise<{ err: grpc.ServiceError | null; res?: Buffer; trailers?: grpc.Metadata }> {
    return new Promise((resolve) => {
      let trailers: grpc.Metadata | undefined;
      const call = client.makeUnaryRequest('/test.Echo/Echo', identity, identity, message, metadata, {}, (err, res) => {
        // The status (with its trailers) comes after the callback in some grpc-js versions.
        setImmediate(() => resolve({ err, res, trailers }));
      });
      call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
    });
  }

  it('answers a unary call: message, headers and trailing metadata reach grpc-js', async () => {
    let seen: Header[] = [];
    const client = await grpcServer((stream, headers, message) => {
      seen = headers;
      stream.sendHeaders([[':status', '200'], ['content-type', 'application/grpc']]);
      stream.write(grpcFrame(Buffer.from(message.toString().toUpperCase())));
      stream.end([['grpc-status', '0'], ['x-answer', '42']]);
    });
    const md = new grpc.Metadata();
    md.set('x-team', 'search');
    const { err, res, trailers } = await unary(client, Buffer.from('hello grpc'), md);
    expect(err).toBeNull();
    expect(res?.toString()).toBe('HELLO GRPC');
    expect(trailers?.get('x-answer')).toEqual(['42']);
    expect(valueOf(seen, ':path')).toBe('/test.Echo/Echo');
    expect(valueOf(seen, 'content-type')).toBe('application/grpc');
    expect(valueOf(seen, 'te')).toBe('trailers');
    expect(valueOf(seen, 'x-team')).toBe('search');
  });

  it('answers trailers-only errors that grpc-js reads with their code and percent-encoded message', async () => {
    const client = await grpcServer((stream) => respondStatus(stream, grpc.status.NOT_FOUND, 'no model "ü" at 100%\nsorry'));
    const { err } = await unary(client, Buffer.from('x'));
    expect(err?.code).toBe(grpc.status.NOT_FOUND);
    expect(err?.details).toBe('no model "ü" at 100%\nsorry');
  });

  it('carries 100 concurrent unary calls and a 5 MiB message each way', async () => {
    const client = await grpcServer((stream, _headers, message) => {
      stream.sendHeaders([[':status', '200'], ['content-type', 'application/grpc']]);
      stream.write(grpcFrame(message));
      stream.end([['grpc-status', '0']]);
    });
    const calls = await Promise.all(Array.from({ length: 100 }, (_, i) => unary(client, pattern(100 + i * 50, i + 1))));
    calls.forEach((c, i) => {
      expect(c.err).toBeNull();
      expect(c.res?.equals(pattern(100 + i * 50, i + 1))).toBe(true);
    });
    const big = await unary(client, pattern(5 * MiB, 11));
    expect(big.err).toBeNull();
    expect(big.res?.equals(pattern(5 * MiB, 11))).toBe(true);
  });
});

describe('our client with a node:http2 server', () => {
  /** node:http2 echo: the body back, then trailers with the byte count and the client's trailers. */
  function nodeEcho(stream: http2.ServerHttp2Stream): void {
    let bytes = 0;
    let clientTrailers: http2.IncomingHttpHeaders = {};
    stream.on('trailers', (t) => (clientTrailers = t));
    stream.respond({ ':status': 200 }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'x-bytes': String(bytes), 'x-client-checksum': String(clientTrailers['x-checksum'] ?? 'none') }));
    stream.on('data', (c: Buffer) => (bytes += c.length));
    stream.pipe(stream);
  }

  it('sends headers, body and trailers and reads the answer, its trailers and a PING', async () => {
    let seen: http2.IncomingHttpHeaders = {};
    const { port, address } = await startNodeServer(closer, (stream, headers) => {
      seen = headers;
      nodeEcho(stream);
    });
    const conn = await connectOurs(closer, port);
    await conn.ping();
    const s = conn.request(requestHeaders(address, '/echo', [['x-team', 'search'], ['x-latin1', 'caf\u00e9\u00ff']]));
    const done = collect(s);
    s.write(Buffer.from('hello '));
    s.end([['x-checksum', 'abc']], Buffer.from('node'));
    const res = await done;
    expect(res.code).toBeUndefined();
    expect(valueOf(res.headers, ':status')).toBe('200');
    expect(res.body.toString()).toBe('hello node');
    expect(res.trailers).toEqual([['x-bytes', '10'], ['x-client-checksum', 'abc']]);
    expect(seen).toMatchObject({ ':path': '/echo', ':method': 'POST', 'x-team': 'search', 'x-latin1': 'caf\u00e9\u00ff' });
    expect(conn.openStreams).toBe(0);
  });

  it('moves 5 MiB each way through 64 KiB node:http2 windows, with manual flow control on our side', async () => {
    const { port, address } = await startNodeServer(closer, nodeEcho);
    const conn = await connectOurs(closer, port);
    const s = conn.request(requestHeaders(address, '/echo'));
    // Reopen the server's window late and in batches: the answer must still arrive whole.
    s.manualFlowControl = true;
    const chunks: Buffer[] = [];
    let unconsumed = 0;
    let trailers: Header[] | undefined;
    const closed = new Promise<number | undefined>((resolve) => {
      s.onData = (c) => {
        chunks.push(Buffer.from(c));
        unconsumed += c.length;
        if (unconsumed >= 200_000) {
          const n = unconsumed;
          unconsumed = 0;
          setTimeout(() => s.consume(n), 1);
        }
      };
      s.onHeaders = (h, end) => {
        if (end) trailers = h;
      };
      s.onClose = resolve;
    });
    // The last window's worth is never consumed by the chunk rule above: consume the rest on a timer.
    const flush = setInterval(() => {
      if (unconsumed > 0) {
        s.consume(unconsumed);
        unconsumed = 0;
      }
    }, 20);
    const body = pattern(5 * MiB, 5);
    expect(s.write(body)).toBe(false);
    s.end();
    const code = await closed;
    clearInterval(flush);
    expect(code).toBeUndefined();
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
    expect(trailers).toEqual([['x-bytes', String(5 * MiB)], ['x-client-checksum', 'none']]);
  });

  it('calls onDrain once data write() queued has gone, also when end() came after the write', async () => {
    const { port, address } = await startNodeServer(closer, nodeEcho);
    const conn = await connectOurs(closer, port);
    // write() then end(): the documented contract is that onDrain follows a write() that returned false.
    const a = conn.request(requestHeaders(address, '/echo'));
    const aDone = collect(a);
    let aDrained = 0;
    a.onDrain = () => aDrained++;
    expect(a.write(pattern(1 * MiB, 1))).toBe(false);
    a.end();
    expect((await aDone).body.length).toBe(1 * MiB);
    // write(), wait for onDrain, then end(): the same data, the same callback.
    const b = conn.request(requestHeaders(address, '/echo'));
    const bDone = collect(b);
    let bDrained = 0;
    b.onDrain = () => {
      bDrained++;
      b.end();
    };
    expect(b.write(pattern(1 * MiB, 1))).toBe(false);
    expect((await bDone).body.length).toBe(1 * MiB);
    expect(bDrained).toBe(1);
    expect(aDrained).toBe(1);
  });

  it('reads padded frames from a node:http2 server', async () => {
    const { port, address } = await startNodeServer(closer, nodeEcho, { paddingStrategy: http2.constants.PADDING_STRATEGY_MAX });
    const conn = await connectOurs(closer, port);
    const s = conn.request(requestHeaders(address, '/echo'));
    const done = collect(s);
    s.end([['x-checksum', 'p']], pattern(100_000, 2));
    const res = await done;
    expect(res.body.equals(pattern(100_000, 2))).toBe(true);
    expect(res.trailers).toEqual([['x-bytes', '100000'], ['x-client-checksum', 'p']]);
  });

  it('carries 200 concurrent streams on one connection', async () => {
    const { port, address } = await startNodeServer(closer, nodeEcho);
    const conn = await connectOurs(closer, port);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const s = conn.request(requestHeaders(address, `/echo/${i}`));
        const done = collect(s);
        s.end(undefined, pattern(500 + i * 41, i + 3));
        return done;
      }),
    );
    results.forEach((r, i) => {
      expect(r.code).toBeUndefined();
      expect(r.body.equals(pattern(500 + i * 41, i + 3))).toBe(true);
    });
  });

  it('RST_STREAM either way reaches the other side with its code', async () => {
    const serverClosed: number[] = [];
    const { port, address } = await startNodeServer(closer, (stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.on('close', () => serverClosed.push(stream.rstCode ?? -1));
      if (headers[':path'] === '/server-resets') setImmediate(() => stream.close(ENHANCE_YOUR_CALM));
    });
    const conn = await connectOurs(closer, port);

    const byServer = collect(conn.request(requestHeaders(address, '/server-resets')));
    expect((await byServer).code).toBe(ENHANCE_YOUR_CALM);

    const ours = conn.request(requestHeaders(address, '/client-resets'));
    const byClient = collect(ours);
    await new Promise<void>((r) => (ours.onHeaders = () => r()));
    ours.reset(H2_CANCEL);
    expect((await byClient).code).toBe(H2_CANCEL);
    await until('the server to see the reset', () => serverClosed.length === 2);
    expect(serverClosed).toEqual([ENHANCE_YOUR_CALM, H2_CANCEL]);
  });

  it('keeps to the server maxConcurrentStreams; H2Upstream spreads streams over its connections', async () => {
    const held: http2.ServerHttp2Stream[] = [];
    const { port, address } = await startNodeServer(
      closer,
      (stream) => {
        stream.respond({ ':status': 200 });
        held.push(stream);
      },
      { settings: { maxConcurrentStreams: 3 } },
    );
    const conn = await connectOurs(closer, port);
    const streams = [0, 1, 2].map(() => conn.request(requestHeaders(address, '/held'), true));
    expect(conn.canRequest).toBe(false);
    expect(() => conn.request(requestHeaders(address, '/held'))).toThrow(/stream limit/);
    const first = collect(streams[0]!);
    await until('the server to hold three streams', () => held.length === 3);
    held[0]!.end('bye');
    expect(await first).toMatchObject({ code: undefined, body: Buffer.from('bye') });
    expect(conn.canRequest).toBe(true);

    const upstream = closer.add(new H2Upstream(address, 2, { keepaliveIntervalMs: 0 }), (u) => u.close());
    // One stream on each connection, answered: both have the server's SETTINGS by then.
    const answered = [0, 1].map(() => {
      const s = upstream.request(requestHeaders(address, '/held'));
      return new Promise<void>((r) => (s.onHeaders = () => r()));
    });
    await Promise.all(answered);
    for (let i = 0; i < 4; i++) upstream.request(requestHeaders(address, '/held'));
    // Both at the server's limit: a third connection takes the next stream (as Envoy's pool does)...
    upstream.request(requestHeaders(address, '/held'));
    expect(upstream.connections).toBe(3);
    await until('the server to hold all streams', () => held.length === 3 + 7);
    // ...up to maxConnections.
    const capped = closer.add(new H2Upstream(address, 1, { keepaliveIntervalMs: 0, maxConnections: 1 }), (u) => u.close());
    const one = capped.request(requestHeaders(address, '/held'));
    await new Promise<void>((r) => (one.onHeaders = () => r()));
    capped.request(requestHeaders(address, '/held'));
    capped.request(requestHeaders(address, '/held'));
    expect(() => capped.request(requestHeaders(address, '/held'))).toThrow(/every connection .* is at its stream limit/);
  });

  it('H2Upstream (reading into a reused buffer) keeps header blocks continued over frames and reads', async () => {
    // Octets Huffman would lengthen are sent raw: about 40 KiB of headers, three frames or more.
    const big = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`x-big-${i}`, String.fromCharCode(0xc0 + i).repeat(2_000)]));
    const { address } = await startNodeServer(closer, (stream) => {
      stream.respond({ ':status': 200, ...big }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ ...big, 'grpc-status': '0' }));
      stream.end(pattern(3 * MiB, 17));
    });
    const upstream = closer.add(new H2Upstream(address, 2, QUIET), (u) => u.close());
    const results = await Promise.all([0, 1, 2, 3].map(() => collect(upstream.request(requestHeaders(address, '/big-headers'), true))));
    const expected = Object.entries(big);
    for (const r of results) {
      expect(r.code).toBeUndefined();
      expect(r.headers?.filter((h) => h[0].startsWith('x-big-'))).toEqual(expected);
      expect(r.trailers?.filter((h) => h[0].startsWith('x-big-'))).toEqual(expected);
      expect(valueOf(r.trailers, 'grpc-status')).toBe('0');
      expect(r.body.equals(pattern(3 * MiB, 17))).toBe(true);
    }
  });

  it('a GOAWAY refuses the streams above its last stream id and lets the others finish', async () => {
    const held: http2.ServerHttp2Stream[] = [];
    const { port, address, sessions } = await startNodeServer(closer, (stream) => {
      stream.respond({ ':status': 200 });
      held.push(stream);
    });
    const conn = await connectOurs(closer, port);
    const goaways: number[] = [];
    let connClosed = false;
    conn.onGoaway = (code) => goaways.push(code);
    conn.onClose = () => (connClosed = true);
    const results = [0, 1, 2].map(() => collect(conn.request(requestHeaders(address, '/held'), true)));
    await until('three streams at the server', () => held.length === 3);
    sessions[0]!.goaway(http2.constants.NGHTTP2_NO_ERROR, 1);
    expect((await results[1]!).code).toBe(H2_REFUSED_STREAM);
    expect((await results[2]!).code).toBe(H2_REFUSED_STREAM);
    expect(goaways).toEqual([0]);
    expect(conn.canRequest).toBe(false);
    // node:http2 still holds 3 and 5 open (it did process them): their answers are ignored here.
    for (const h of held.slice(1)) h.end('ignored');
    held[0]!.end('stream 1 finishes');
    const r0 = await results[0]!;
    expect(r0.code).toBeUndefined();
    expect(r0.body.toString()).toBe('stream 1 finishes');
    expect(conn.openStreams).toBe(0);
    // Our side ended the connection with its last stream. (node:http2, having sent a GOAWAY of its
    // own, waits for close() before it reads that end; our side would destroy it after 5 s anyway.)
    sessions[0]!.close();
    await until('our connection to end', () => connClosed, 2_000);
  });

  it('H2Upstream opens a new connection for requests after a GOAWAY; the old stream still finishes', async () => {
    const held: http2.ServerHttp2Stream[] = [];
    const { address, sessions } = await startNodeServer(closer, (stream, headers) => {
      stream.respond({ ':status': 200 });
      if (headers[':path'] === '/held') held.push(stream);
      else stream.end(`session ${sessions.indexOf(stream.session as http2.ServerHttp2Session)}`);
    });
    const upstream = closer.add(new H2Upstream(address, 1, QUIET), (u) => u.close());
    const first = collect(upstream.request(requestHeaders(address, '/held'), true));
    await until('the stream to reach the server', () => held.length === 1);
    expect(sessions).toHaveLength(1);

    sessions[0]!.goaway();
    // A PING after the GOAWAY (a tick later: nghttp2 sends a PING queued with it first): once it
    // is answered, our side has read the GOAWAY too.
    await sleep(20);
    await new Promise((r) => sessions[0]!.ping(r));
    const second = await collect(upstream.request(requestHeaders(address, '/next'), true));
    expect(second.code).toBeUndefined();
    expect(second.body.toString()).toBe('session 1');
    expect(sessions).toHaveLength(2);

    held[0]!.end('old connection');
    const r = await first;
    expect(r.code).toBeUndefined();
    expect(r.body.toString()).toBe('old connection');
  });

  it('a lost connection closes its streams with CONNECTION_LOST; H2Upstream reconnects', async () => {
    let held = 0;
    const { address, port, sessions } = await startNodeServer(closer, (stream, headers) => {
      stream.respond({ ':status': 200 });
      if (headers[':path'] !== '/held') stream.end('fresh');
      else held++;
    });
    const conn = await connectOurs(closer, port);
    const lost = collect(conn.request(requestHeaders(address, '/held')));
    const upstream = closer.add(new H2Upstream(address, 1, QUIET), (u) => u.close());
    const upLost = collect(upstream.request(requestHeaders(address, '/held')));
    // Both streams must have reached the server: a session destroyed before it read a stream ends
    // with a GOAWAY below that stream, which (rightly) refuses it rather than losing it.
    await until('both held streams', () => sessions.length === 2 && held === 2);
    for (const s of sessions) s.destroy();
    expect((await lost).code).toBe(CONNECTION_LOST);
    expect((await upLost).code).toBe(CONNECTION_LOST);
    expect(conn.closed).toBe(true);
    await expect(conn.ping()).rejects.toThrow(/closed/);
    expect(() => conn.request(requestHeaders(address, '/held'))).toThrow(/closed/);
    const again = await collect(upstream.request(requestHeaders(address, '/again'), true));
    expect(again.code).toBeUndefined();
    expect(again.body.toString()).toBe('fresh');
  });
});

describe('requests refused at the door (RFC 9113 §8.1.1)', () => {
  /** Our server answering 200 with the request body's length; counts the streams it was handed. */
  async function counting() {
    const handed: Header[][] = [];
    const server = await startH2Server(closer, (stream, headers, endStream) => {
      handed.push(headers);
      let bytes = 0;
      const answer = () => stream.sendHeaders([[':status', '200'], ['x-bytes', String(bytes)]], true);
      if (endStream) return answer();
      stream.onData = (c, end) => {
        bytes += c.length;
        if (end) answer();
      };
      stream.onHeaders = (_t, end) => end && answer();
    });
    const conn = await connectOurs(closer, server.port);
    return { ...server, conn, handed };
  }

  it.each<[string, Header[]]>([
    ['an upper-case name', [['X-Team', 'search']]],
    ['a connection header', [['connection', 'close']]],
    ['te: gzip', [['te', 'gzip']]],
    ['a value with CR LF', [['x-a', 'a\r\nx-b: 1']]],
    ['a value with NUL', [['x-a', 'a\u0000']]],
    ['an unknown pseudo-header', [[':protocol', 'websocket']]],
  ])('refuses a request with %s: RST_STREAM PROTOCOL_ERROR, no handler sees it', async (_what, extra) => {
    const { conn, address, handed } = await counting();
    const res = await collect(conn.request(requestHeaders(address, '/x', extra), true));
    expect(res.headers).toBeUndefined();
    expect(res.code).toBe(H2_PROTOCOL_ERROR);
    expect(handed).toHaveLength(0);
    // The connection still serves.
    expect(valueOf((await collect(conn.request(requestHeaders(address, '/ok'), true))).headers, ':status')).toBe('200');
    expect(handed).toHaveLength(1);
  });

  it('refuses requests without :path or :method, or with a pseudo-header after a regular one', async () => {
    const { conn, address, handed } = await counting();
    const lists: Header[][] = [
      [[':method', 'POST'], [':scheme', 'http'], [':authority', address]],
      [[':scheme', 'http'], [':path', '/x'], [':authority', address]],
      [[':method', 'POST'], [':scheme', 'http'], ['x-a', '1'], [':path', '/x']],
      [[':method', 'POST'], [':scheme', 'http'], [':path', '/x'], [':path', '/y']],
    ];
    for (const headers of lists) expect((await collect(conn.request(headers, true))).code).toBe(H2_PROTOCOL_ERROR);
    expect(handed).toHaveLength(0);
  });

  it('refuses a body that differs from its content-length, and trailers with a pseudo-header', async () => {
    const { conn, address, handed } = await counting();
    const send = (contentLength: string, body: Buffer | undefined, trailers?: Header[]) => {
      const s = conn.request(requestHeaders(address, '/cl', [['content-length', contentLength]]), body === undefined && !trailers);
      const done = collect(s);
      if (trailers) {
        if (body) s.write(body);
        s.end(trailers);
      } else if (body) s.end(undefined, body);
      return done;
    };
    const exact = await send('3', Buffer.from('abc'));
    expect(valueOf(exact.headers, 'x-bytes')).toBe('3');
    expect((await send('5', Buffer.from('abc'))).code).toBe(H2_PROTOCOL_ERROR);
    expect((await send('2', Buffer.from('abc'))).code).toBe(H2_PROTOCOL_ERROR);
    expect((await send('4', undefined)).code).toBe(H2_PROTOCOL_ERROR);
    expect((await send('3', Buffer.from('abc'), [[':path', '/smuggled']])).code).toBe(H2_PROTOCOL_ERROR);
    expect((await send('3', Buffer.from('ab'), [['x-checksum', '1']])).code).toBe(H2_PROTOCOL_ERROR);
    expect(valueOf((await send('3', Buffer.from('abc'), [['x-checksum', '1']])).headers, 'x-bytes')).toBe('3');
  });

  it('takes 1,100 malformed requests on one connection and serves the next call on it', async () => {
    const { conn, address, handed } = await counting();
    // In batches of 100: the server allows 128 streams at once.
    const refused: Awaited<ReturnType<typeof collect>>[] = [];
    for (let b = 0; b < 11; b++) refused.push(...(await Promise.all(Array.from({ length: 100 }, (_, i) => collect(conn.request(requestHeaders(address, '/x', [['x-n', ` ${b * 100 + i}`]]), true))))));
    expect(refused).toHaveLength(1_100);
    expect(refused.every((r) => r.code === H2_PROTOCOL_ERROR)).toBe(true);
    expect(handed).toHaveLength(0);
    expect(valueOf((await collect(conn.request(requestHeaders(address, '/ok'), true))).headers, ':status')).toBe('200');
  });
});

describe('flow control: a stalled stream holds its own window only', () => {
  it('8 streams whose owner never consumes their 1 MiB windows leave a 4 MiB connection window carrying other streams', async () => {
    const { port, address } = await startNodeServer(closer, (stream, headers) => {
      stream.respond({ ':status': 200 });
      // More than a stream window: a /big stream stays open, its window used up and never reopened.
      stream.end(pattern(headers[':path'] === '/big' ? 1.5 * MiB : 2 * MiB, 3));
    }, { maxSessionMemory: 100 }); // node:http2 stops sending past 10 MB of a session's buffers by default
    // 8 MiB held back would close a 4 MiB connection window to every stream.
    const conn = await connectOurs(closer, port, { connectionWindowBytes: 4 * MiB });
    const stalled: H2Stream[] = [];
    let received = 0;
    for (let i = 0; i < 8; i++) {
      const s = conn.request(requestHeaders(address, '/big'), true);
      s.manualFlowControl = true;
      s.onData = (c) => (received += c.length);
      stalled.push(s);
    }
    await until('every stalled stream to get its window full', () => received === 8 * MiB, 10_000);
    const other = await collect(conn.request(requestHeaders(address, '/other'), true));
    expect(other.code).toBeUndefined();
    expect(other.body.equals(pattern(2 * MiB, 3))).toBe(true);
    expect(stalled.every((s) => !s.closed)).toBe(true);
  });
});

describe('H2Upstream replaces its connections', () => {
  it('when their stream ids run out (maxStreamId): calls keep succeeding and one in flight finishes', async () => {
    const held: http2.ServerHttp2Stream[] = [];
    const { address, sessions } = await startNodeServer(closer, (stream, headers) => {
      stream.respond({ ':status': 200 });
      if (headers[':path'] === '/held') held.push(stream);
      else stream.end(`session ${sessions.indexOf(stream.session as http2.ServerHttp2Session)}`);
    });
    // Ids 1, 3, 5 and 7: four streams per connection.
    const upstream = closer.add(new H2Upstream(address, 1, { ...QUIET, maxStreamId: 7 }), (u) => u.close());
    const first = collect(upstream.request(requestHeaders(address, '/held'), true));
    const answers: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await collect(upstream.request(requestHeaders(address, '/x'), true));
      expect(r.code).toBeUndefined();
      answers.push(r.body.toString());
    }
    // 3 more on the first connection (with the held one), then 4, then 3.
    expect(answers).toEqual(['session 0', 'session 0', 'session 0', 'session 1', 'session 1', 'session 1', 'session 1', 'session 2', 'session 2', 'session 2']);
    // The first connection said GOAWAY itself once its last id was used; its held stream still finishes.
    held[0]!.end('held');
    expect((await first).body.toString()).toBe('held');
    await until('the used-up connections to end', () => upstream.connections === 1, 6_000);
    expect(sessions.slice(0, 2).every((s) => s.closed || s.destroyed)).toBe(true);
  });

  it('one H2Connection: after its last stream id it takes no new stream and ends when that stream has', async () => {
    const { port, address } = await startNodeServer(closer, (stream) => {
      stream.respond({ ':status': 200 });
      setTimeout(() => stream.end('late'), 50);
    });
    const conn = closer.add(new H2Connection(net.connect(port, HOST), 'client', undefined, { ...QUIET, maxStreamId: 3 }), (c) => c.destroy());
    let closed = false;
    conn.onClose = () => (closed = true);
    await collect(conn.request(requestHeaders(address, '/1'), true));
    expect(conn.canRequest).toBe(true);
    const last = collect(conn.request(requestHeaders(address, '/3'), true));
    expect(conn.canRequest).toBe(false);
    expect(conn.goingAway).toBe(true);
    expect(() => conn.request(requestHeaders(address, '/5'))).toThrow(/going away/);
    expect((await last).body.toString()).toBe('late');
    await until('the connection to end', () => closed, 6_000);
  });

  it('after maxResetsPerConnection resets, before nghttp2 would end the connection for them', async () => {
    const { address, sessions } = await startNodeServer(closer, (stream, headers) => {
      stream.respond({ ':status': 200 });
      if (headers[':path'] !== '/held') stream.end(`session ${sessions.indexOf(stream.session as http2.ServerHttp2Session)}`);
    });
    const upstream = closer.add(new H2Upstream(address, 1, { ...QUIET, maxResetsPerConnection: 5 }), (u) => u.close());
    for (let i = 0; i < 5; i++) upstream.request(requestHeaders(address, '/held')).reset(H2_CANCEL);
    const next = await collect(upstream.request(requestHeaders(address, '/x'), true));
    expect(next.body.toString()).toBe('session 1');
    await until('the first connection to end', () => sessions[0]!.closed || sessions[0]!.destroyed, 6_000);
  });

  it('by default well before nghttp2 would end it for its resets, so calls in flight on it survive', async () => {
    // node:http2 ends a session whose peer resets more than 1,000 streams in a burst, failing every
    // call on it. A client that cancels call after call must not take the others' calls with it.
    const held: http2.ServerHttp2Stream[] = [];
    const { address, sessions } = await startNodeServer(closer, (stream, headers) => {
      stream.respond({ ':status': 200 });
      if (headers[':path'] === '/held') held.push(stream);
    });
    const upstream = closer.add(new H2Upstream(address, 1, QUIET), (u) => u.close());
    const long = collect(upstream.request(requestHeaders(address, '/held'), true));
    for (let i = 0; i < 1_500; i++) {
      const s = upstream.request(requestHeaders(address, '/cancelled'));
      await new Promise<void>((r) => (s.onHeaders = () => r()));
      s.reset(H2_CANCEL);
    }
    held[0]!.end('survived');
    const r = await long;
    expect(r.code).toBeUndefined();
    expect(r.body.toString()).toBe('survived');
    expect(sessions.length).toBe(3); // replaced after 500 and 1,000 resets
  }, 30_000);
});

describe('over TLS: each tick of output is copied into a buffer taken back once its write completed', () => {
  it('carries 300 streams each way with bodies of their own, byte for byte, between our client and our server', async () => {
    const ca = await createCa({ commonName: 'h2 tls test CA' });
    const leaf = await issueCertificate(ca, { kind: 'pod', name: 'h2-tls' });
    const { address } = await startH2Server(closer, (stream, _headers, endStream) => echo(stream, endStream), {
      tls: { source: { contextOptions: () => ({ cert: leaf.cert, key: leaf.key }), onChange: () => () => undefined }, requestCert: false },
    });
    const context = tls.createSecureContext({ ca: ca.cert });
    const upstream = closer.add(new H2Upstream(address, 2, { ...QUIET, tls: { context: () => context } }), (u) => u.close());
    // Sizes from a few bytes to past one tick's reused buffer (16 KiB), so writes both fit and do not.
    const sizes = Array.from({ length: 300 }, (_, i) => 1 + ((i * 7919) % 40_000));
    const results = await Promise.all(sizes.map(async (size, i) => {
      const stream = upstream.request(requestHeaders(address, '/echo'));
      const done = collect(stream);
      // Each body goes in pieces over several ticks, interleaved with the other streams'.
      const body = pattern(size, i + 1);
      for (let at = 0; at < size; at += 3_000) {
        stream.write(body.subarray(at, Math.min(size, at + 3_000)));
        await new Promise((r) => setImmediate(r));
      }
      stream.end();
      return { i, size, got: await done };
    }));
    for (const { i, size, got } of results) {
      expect({ i, code: got.code, bytes: valueOf(got.trailers, 'x-bytes') }).toEqual({ i, code: undefined, bytes: String(size) });
      expect(got.body.equals(pattern(size, i + 1))).toBe(true);
    }
  });
});
