// pipeCall: an H2Server whose every stream is piped through H2Upstream to a real upstream (a grpc-js
// server, or node:http2 where a test needs control of the frames), called by grpc-js and node:http2
// clients. Messages, metadata, statuses and trailers must arrive as the upstream sent them.
import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { Header } from '../../../../lib/h2/connection';
import { pipeCall, statusHeaders, statusOf } from '../../../../lib/h2/grpc';
import { H2Upstream } from '../../../../lib/h2/upstream';
import { encodeHeaders } from '../../../../lib/h2/hpack';
import { Closer, collect, connectNode, connectOurs, grpcFrame, HOST, nodeRequest, parseFrames, pattern, PREFACE, QUIET, rawFrame, sleep, startH2Server, startNodeServer, until, valueOf } from './peers';

const closer = new Closer();
afterEach(() => closer.closeAll());

const identity = (b: Buffer): Buffer => b;
const UNLIMITED = { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 };
const MiB = 1 << 20;

function method(path: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  return { path, requestStream, responseStream, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity };
}

const SERVICE = {
  Bidi: method('/test.Echo/Bidi', true, true),
  Sum: method('/test.Echo/Sum', true, false),
  Fail: method('/test.Echo/Fail', false, false),
};

interface Upstream {
  address: string;
  seen: { path: string; metadata: grpc.Metadata }[];
  cancelled: string[];
}

/** A grpc-js server: Bidi echoes (then fails if asked), Sum counts, Fail fails with metadata. */
async function startGrpcUpstream(): Promise<Upstream> {
  const up: Upstream = { address: '', seen: [], cancelled: [] };
  const server = closer.add(new grpc.Server(UNLIMITED), (s) => s.forceShutdown());
  const note = (path: string, call: { metadata: grpc.Metadata; on(e: 'cancelled', f: () => void): unknown }) => {
    up.seen.push({ path, metadata: call.metadata });
    call.on('cancelled', () => up.cancelled.push(path));
  };
  server.addService(SERVICE, {
    Bidi: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      note('Bidi', call);
      const head = new grpc.Metadata();
      head.set('x-upstream', 'grpc-js');
      call.sendMetadata(head);
      let n = 0;
      const failAfter = Number(call.metadata.get('x-fail-after')[0] ?? -1);
      call.on('data', (m: Buffer) => {
        if (n++ === failAfter) {
          const md = new grpc.Metadata();
          md.set('x-failed-at', String(failAfter));
          call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: `too many: ${failAfter}`, metadata: md });
          return;
        }
        call.write(m);
      });
      call.on('end', () => {
        const trailers = new grpc.Metadata();
        trailers.set('x-count', String(n));
        call.end(trailers);
      });
    },
    Sum: (call: grpc.ServerReadableStream<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
      note('Sum', call);
      let count = 0;
      let bytes = 0;
      let check = 0;
      call.on('data', (m: Buffer) => {
        count++;
        bytes += m.length;
        for (let i = 0; i < m.length; i += 997) check = (check * 31 + m[i]!) >>> 0;
      });
      call.on('end', () => done(null, Buffer.from(JSON.stringify({ count, bytes, check }))));
    },
    Fail: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
      note('Fail', call);
      const md = new grpc.Metadata();
      md.set('x-reason', 'no-such-model');
      done({ code: grpc.status.NOT_FOUND, details: 'model "ü" not found (100%)', metadata: md });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${HOST}:0`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  up.address = `${HOST}:${port}`;
  return up;
}

/** Our server piping every stream to `upstreamAddress`; returns the proxy's address. */
async function startProxy(upstreamAddress: string, connections = 2): Promise<{ address: string; port: number; upstream: H2Upstream }> {
  const upstream = closer.add(new H2Upstream(upstreamAddress, connections, QUIET), (u) => u.close());
  const { address, port } = await startH2Server(closer, (stream, headers, endStream) => pipeCall(upstream, stream, headers, undefined, endStream));
  return { address, port, upstream };
}

function grpcClient(address: string): grpc.Client {
  return closer.add(new grpc.Client(address, grpc.credentials.createInsecure(), UNLIMITED), (c) => c.close());
}

function checksum(messages: Buffer[]): number {
  let check = 0;
  for (const m of messages) for (let i = 0; i < m.length; i += 997) check = (check * 31 + m[i]!) >>> 0;
  return check;
}

/** A bidi call through `client`: writes every message, ends, and gathers what comes back. */
function bidi(client: grpc.Client, messages: Buffer[], metadata = new grpc.Metadata()) {
  return new Promise<{ got: Buffer[]; head?: grpc.Metadata; status: grpc.StatusObject }>((resolve) => {
    const call = client.makeBidiStreamRequest('/test.Echo/Bidi', identity, identity, metadata);
    const got: Buffer[] = [];
    let head: grpc.Metadata | undefined;
    call.on('metadata', (m: grpc.Metadata) => (head = m));
    call.on('data', (m: Buffer) => got.push(m));
    call.on('error', () => undefined);
    call.on('status', (status: grpc.StatusObject) => resolve({ got, head, status }));
    // Write with backpressure, as a real client does.
    let i = 0;
    const pump = () => {
      while (i < messages.length) if (!call.write(messages[i++]!)) return void call.once('drain', pump);
      call.end();
    };
    pump();
  });
}

describe('pipeCall with grpc-js at both ends', () => {
  it('carries a bidi call of many messages (9 MiB each way) intact and in order, with metadata and trailers', async () => {
    const up = await startGrpcUpstream();
    const proxy = await startProxy(up.address);
    const client = grpcClient(proxy.address);
    const messages = Array.from({ length: 300 }, (_, i) => pattern(1 + ((i * 7919) % 60_000), i + 1));
    const md = new grpc.Metadata();
    md.set('x-team', 'search');
    const { got, head, status } = await bidi(client, messages, md);
    expect(status.code).toBe(grpc.status.OK);
    expect(got).toHaveLength(messages.length);
    got.forEach((m, i) => expect(m.equals(messages[i]!)).toBe(true));
    expect(head?.get('x-upstream')).toEqual(['grpc-js']);
    expect(status.metadata.get('x-count')).toEqual(['300']);
    expect(up.seen[0]?.metadata.get('x-team')).toEqual(['search']);
  });

  it('carries a client-streaming call of 2,000 messages and a 5 MiB one', async () => {
    const up = await startGrpcUpstream();
    const proxy = await startProxy(up.address);
    const client = grpcClient(proxy.address);
    const sum = (messages: Buffer[]) =>
      new Promise<{ err: grpc.ServiceError | null; res?: Buffer }>((resolve) => {
        const call = client.makeClientStreamRequest('/test.Echo/Sum', identity, identity, new grpc.Metadata(), {}, (err, res) => resolve({ err, res }));
        let i = 0;
        const pump = () => {
          while (i < messages.length) if (!call.write(messages[i++]!)) return void call.once('drain', pump);
          call.end();
        };
        pump();
      });
    const small = Array.from({ length: 2_000 }, (_, i) => pattern(1 + (i % 300), i + 1));
    const a = await sum(small);
    expect(a.err).toBeNull();
    expect(JSON.parse(a.res!.toString())).toEqual({ count: 2_000, bytes: small.reduce((n, m) => n + m.length, 0), check: checksum(small) });
    const big = [pattern(5 * MiB, 77)];
    const b = await sum(big);
    expect(b.err).toBeNull();
    expect(JSON.parse(b.res!.toString())).toEqual({ count: 1, bytes: 5 * MiB, check: checksum(big) });
  });

  it('relays an error status, its message and trailing metadata, trailers-only or after messages', async () => {
    const up = await startGrpcUpstream();
    const proxy = await startProxy(up.address);
    const client = grpcClient(proxy.address);
    const failed = await new Promise<grpc.ServiceError>((resolve) => {
      client.makeUnaryRequest('/test.Echo/Fail', identity, identity, Buffer.from('x'), (err) => resolve(err!));
    });
    expect(failed.code).toBe(grpc.status.NOT_FOUND);
    expect(failed.details).toBe('model "ü" not found (100%)');
    expect(failed.metadata.get('x-reason')).toEqual(['no-such-model']);

    const md = new grpc.Metadata();
    md.set('x-fail-after', '3');
    const { got, status } = await bidi(client, Array.from({ length: 10 }, (_, i) => Buffer.from(`m${i}`)), md);
    expect(got.map(String)).toEqual(['m0', 'm1', 'm2']);
    expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(status.details).toBe('too many: 3');
    expect(status.metadata.get('x-failed-at')).toEqual(['3']);
  });

  it('passes a client cancel on to the upstream call', async () => {
    const up = await startGrpcUpstream();
    const proxy = await startProxy(up.address);
    const client = grpcClient(proxy.address);
    const call = client.makeBidiStreamRequest('/test.Echo/Bidi', identity, identity);
    const status = new Promise<grpc.StatusObject>((r) => call.on('status', r));
    call.on('error', () => undefined);
    call.write(Buffer.from('first'));
    await new Promise((r) => call.once('data', r));
    call.cancel();
    expect((await status).code).toBe(grpc.status.CANCELLED);
    await until('the upstream call to be cancelled', () => up.cancelled.includes('Bidi'));
  });

  it('fails a call whose last message its client cut short INTERNAL, ended by data or by trailers, and cancels it upstream', async () => {
    const up = await startGrpcUpstream();
    const proxy = await startProxy(up.address);
    const session = await connectNode(closer, proxy.port);
    const headers = { ':method': 'POST', ':path': '/test.Echo/Bidi', 'content-type': 'application/grpc', te: 'trailers' };
    const whole = grpcFrame(Buffer.from('whole'));
    const cut = grpcFrame(Buffer.from('cut short')).subarray(0, 8);
    // The status, in the headers (nothing was answered yet) or in the trailers.
    const statusOfAnswer = (res: { raw: Header[]; trailers?: http2.IncomingHttpHeaders }) =>
      statusOf(res.raw) ?? statusOf(Object.entries(res.trailers ?? {}).map(([k, v]): Header => [k, String(v)]));
    for (const trailers of [undefined, { 'x-client-trailer': 'sent' }]) {
      up.cancelled.length = 0;
      const res = await nodeRequest(session, headers, Buffer.concat([whole, cut]), trailers);
      expect(statusOfAnswer(res)).toEqual({ code: grpc.status.INTERNAL, message: 'the last request message was cut short: its prefix announced 9 bytes and the stream ended after 3' });
      await until('the upstream call to be cancelled', () => up.cancelled.includes('Bidi'));
    }
    // Ended between two messages, the same call is answered in full, OK.
    const res = await nodeRequest(session, headers, Buffer.concat([whole, whole]));
    expect(statusOfAnswer(res)?.code).toBe(grpc.status.OK);
    expect(res.body.equals(Buffer.concat([whole, whole]))).toBe(true);
  });

  it('answers UNAVAILABLE when the upstream cannot be reached', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, HOST, r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const proxy = await startProxy(`${HOST}:${port}`);
    const client = grpcClient(proxy.address);
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      client.makeUnaryRequest('/test.Echo/Fail', identity, identity, Buffer.from('x'), (e) => resolve(e!));
    });
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    const { status } = await bidi(client, [Buffer.from('a'), Buffer.from('b')]);
    expect(status.code).toBe(grpc.status.UNAVAILABLE);
  });
});

describe('pipeCall with a node:http2 upstream', () => {
  /** A proxy to a node:http2 server whose streams `onStream` answers. */
  async function proxyTo(onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void) {
    const origin = await startNodeServer(closer, onStream);
    const proxy = await startProxy(origin.address, 1);
    const session = await connectNode(closer, proxy.port);
    return { origin, proxy, session };
  }

  const post = (path: string): http2.OutgoingHttpHeaders => ({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });

  it('an upstream reset before its headers is UNAVAILABLE; after them the reset code reaches the client', async () => {
    // The upstream is our own server here: node:http2's stream.close(code) after a response sends
    // END_STREAM before its RST_STREAM, which would end the stream cleanly instead.
    const origin = await startH2Server(closer, (stream, headers) => {
      if (valueOf(headers, ':path') === '/late') {
        stream.sendHeaders([[':status', '200'], ['content-type', 'application/grpc']]);
        stream.write(Buffer.from('partial'));
        setTimeout(() => stream.reset(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM), 10);
      } else stream.reset(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    });
    const proxy = await startProxy(origin.address, 1);
    const session = await connectNode(closer, proxy.port);
    const early = await nodeRequest(session, post('/early'), grpcFrame(Buffer.from('x')));
    expect(statusOf(early.raw)).toEqual({ code: grpc.status.UNAVAILABLE, message: 'internal: stream reset (HTTP/2 code 11)' });
    const late = await nodeRequest(session, post('/late'), grpcFrame(Buffer.from('x')));
    expect(late.headers[':status']).toBe(200);
    expect(late.body.toString()).toBe('partial');
    expect(late.rstCode).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  });

  it('answers metadata longer than the upstream takes RESOURCE_EXHAUSTED, as the router\'s ModelInfer does, not UNAVAILABLE', async () => {
    const origin = await startH2Server(closer, (stream) => stream.end([[':status', '200'], ['grpc-status', '0']]), { maxHeaderListBytes: 1024 });
    const proxy = await startProxy(origin.address, 1);
    const session = await connectNode(closer, proxy.port);
    // The first call learns the upstream's SETTINGS; the next is checked against them.
    expect(statusOf((await nodeRequest(session, post('/small'), grpcFrame(Buffer.from('x')))).raw)?.code).toBe(grpc.status.OK);
    const big = await nodeRequest(session, { ...post('/big'), 'x-pad': 'p'.repeat(2000) }, grpcFrame(Buffer.from('x')));
    expect(statusOf(big.raw)).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, message: expect.stringMatching(/^request metadata: a header list of \d+ bytes, more than the 1024 the peer takes$/) });
  });

  it('relays request and answer trailers', async () => {
    let clientTrailers: http2.IncomingHttpHeaders | undefined;
    const { session } = await proxyTo((stream) => {
      stream.on('trailers', (t) => (clientTrailers = t));
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-upstream-trailer': 'yes' }));
      stream.pipe(stream);
    });
    const body = grpcFrame(Buffer.from('body'));
    const res = await nodeRequest(session, post('/echo'), body, { 'x-client-trailer': 'sent' });
    expect(res.body.equals(body)).toBe(true);
    expect(res.trailers).toMatchObject({ 'grpc-status': '0', 'x-upstream-trailer': 'yes' });
    expect(clientTrailers).toMatchObject({ 'x-client-trailer': 'sent' });
  });

  it('ends the client stream when the upstream ends its answer with DATA, without trailers', async () => {
    // Not gRPC, but what an HTTP/2 hop in front of the upstream answers (an error page, say).
    const { session } = await proxyTo((stream) => {
      stream.respond({ ':status': 503, 'content-type': 'text/plain' });
      stream.end('upstream overloaded');
    });
    const res = await Promise.race([
      nodeRequest(session, post('/plain'), grpcFrame(Buffer.from('x'))),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 1_000).unref()),
    ]);
    expect(res?.headers[':status']).toBe(503);
    expect(res?.body.toString()).toBe('upstream overloaded');
  });

  it('carries a buffered request (body given) to the upstream and back', async () => {
    const origin = await startNodeServer(closer, (stream) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-bytes': String(Buffer.concat(chunks).length) }));
        stream.end(Buffer.concat(chunks));
      });
    });
    const upstream = closer.add(new H2Upstream(origin.address, 1, QUIET), (u) => u.close());
    const { port } = await startH2Server(closer, (stream, headers, endStream) => {
      const chunks: Buffer[] = [];
      if (endStream) return pipeCall(upstream, stream, headers, Buffer.alloc(0));
      stream.onData = (c, end) => {
        chunks.push(Buffer.from(c));
        if (end) pipeCall(upstream, stream, headers, Buffer.concat(chunks));
      };
    });
    const session = await connectNode(closer, port);
    const body = pattern(3 * MiB, 4);
    const res = await nodeRequest(session, post('/buffered'), body);
    expect(res.body.equals(body)).toBe(true);
    expect(res.trailers).toMatchObject({ 'grpc-status': '0', 'x-bytes': String(body.length) });
  });

  it('keeps the client connection usable over many large uploads (its window is returned in full)', async () => {
    // Every call uploads more than the proxy's 1 MiB stream window; the upstream's 64 KiB windows make
    // the proxy queue. The client connection's 16 MiB window must come back whole after each call,
    // or after a dozen calls the connection stalls for good.
    const { session } = await proxyTo((stream) => {
      let bytes = 0;
      stream.on('data', (c: Buffer) => (bytes += c.length));
      stream.on('end', () => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-bytes': String(bytes) }));
        stream.end();
      });
    });
    const body = grpcFrame(pattern(2 * MiB, 12));
    for (let call = 0; call < 24; call++) {
      const res = await Promise.race([
        nodeRequest(session, post(`/upload/${call}`), body),
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 1_500).unref()),
      ]);
      expect({ call, bytes: res?.trailers?.['x-bytes'] }).toEqual({ call, bytes: String(body.length) });
    }
  }, 30_000);

  it('delivers the whole answer when the upstream finishes first and resets with NO_ERROR', async () => {
    // RFC 9113 §8.1: a server may answer in full before the request ends, then RST_STREAM(NO_ERROR)
    // the request side. The answer queued towards a slower client must still reach it, trailers too.
    const answer = pattern(2 * MiB, 21);
    const { session } = await proxyTo((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(answer);
    });
    const res = await new Promise<{ body: Buffer; trailers?: http2.IncomingHttpHeaders; rstCode?: number }>((resolve) => {
      // The request side stays open: the client has more to say when the answer is already complete.
      const req = session.request(post('/early-answer'), { endStream: false });
      const chunks: Buffer[] = [];
      let trailers: http2.IncomingHttpHeaders | undefined;
      req.on('trailers', (t) => (trailers = t));
      req.on('error', () => undefined);
      req.on('close', () => resolve({ body: Buffer.concat(chunks), trailers, rstCode: req.rstCode }));
      req.write('still sending');
      // A slow reader: nothing read (so no window opened) for a while, then all of it.
      setTimeout(() => req.on('data', (c: Buffer) => chunks.push(c)), 300);
    });
    expect(res.body.length).toBe(answer.length);
    expect(res.body.equals(answer)).toBe(true);
    expect(res.trailers).toMatchObject({ 'grpc-status': '0' });
  });
});

describe('pipeCall with an upstream that answers in one burst and resets with NO_ERROR', () => {
  it('still delivers the queued answer and its trailers to a client slower than the upstream', async () => {
    // What grpc-go does when it has answered before the client half-closed: HEADERS, DATA, trailers
    // and RST_STREAM(NO_ERROR) in one write (RFC 9113 §8.1: clients must not discard the answer).
    // Written here frame by frame so that the burst arrives whole; node:http2 spreads it over ticks.
    const answer = pattern(512 * 1024, 31);
    const origin = net.createServer((sock) => {
      sock.on('error', () => undefined);
      let buf = Buffer.alloc(0);
      let prefaceSeen = false;
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (!prefaceSeen) {
          if (buf.length < PREFACE.length) return;
          buf = buf.subarray(PREFACE.length);
          prefaceSeen = true;
          sock.write(Buffer.concat([rawFrame(0x4, 0, 0), rawFrame(0x4, 0x1, 0)]));
        }
        const frames = parseFrames(buf);
        buf = buf.subarray(frames.reduce((n, f) => n + 9 + f.payload.length, 0));
        for (const f of frames) {
          if (f.type !== 0x1) continue;
          const out = [rawFrame(0x1, 0x4, f.streamId, encodeHeaders([[':status', '200'], ['content-type', 'application/grpc']]))];
          for (let off = 0; off < answer.length; off += 16_384) out.push(rawFrame(0x0, 0, f.streamId, answer.subarray(off, off + 16_384)));
          out.push(rawFrame(0x1, 0x5, f.streamId, encodeHeaders([['grpc-status', '0']])));
          out.push(rawFrame(0x3, 0, f.streamId, Buffer.alloc(4)));
          sock.write(Buffer.concat(out));
        }
      });
    });
    closer.add(origin, (s) => new Promise((r) => s.close(r)));
    const sockets = new Set<net.Socket>();
    origin.on('connection', (s) => sockets.add(s));
    closer.add(sockets, (all) => all.forEach((s) => s.destroy()));
    await new Promise<void>((r) => origin.listen(0, HOST, r));
    const proxy = await startProxy(`${HOST}:${(origin.address() as net.AddressInfo).port}`, 1);
    const session = await connectNode(closer, proxy.port);
    const res = await new Promise<{ body: Buffer; trailers?: http2.IncomingHttpHeaders }>((resolve) => {
      const req = session.request({ ':method': 'POST', ':path': '/test.Echo/Bidi', 'content-type': 'application/grpc', te: 'trailers' }, { endStream: false });
      const chunks: Buffer[] = [];
      let trailers: http2.IncomingHttpHeaders | undefined;
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('trailers', (t) => (trailers = t));
      req.on('error', () => undefined);
      req.on('close', () => resolve({ body: Buffer.concat(chunks), trailers }));
      req.write('more to come');
    });
    expect(res.body.length).toBe(answer.length);
    expect(res.body.equals(answer)).toBe(true);
    expect(res.trailers).toMatchObject({ 'grpc-status': '0' });
  });
});

describe('pipeCall: one client cannot starve the shared upstream connection', () => {
  const grpcPost = (address: string, path: string, extra: Header[] = []): Header[] => [
    [':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', address], ['content-type', 'application/grpc'], ['te', 'trailers'], ...extra,
  ];

  /** node:http2 behind a door of ours: /big answers 1.5 MiB (more than a stream window), /held waits. */
  async function door() {
    const held: http2.ServerHttp2Stream[] = [];
    const origin = await startNodeServer(closer, (stream, headers) => {
      stream.on('data', () => undefined);
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      if (headers[':path'] === '/held') held.push(stream);
      else stream.end(headers[':path'] === '/big' ? pattern(1.5 * MiB, 8) : Buffer.from('small'));
    }, { maxSessionMemory: 100 });
    const proxy = await startProxy(origin.address, 1);
    return { origin, proxy, held };
  }

  it('20 calls abandoned with a zero window, open or reset, leave the upstream connection serving others', async () => {
    const { proxy } = await door();
    // This client never opens a stream window: the door can send it no data at all.
    const stingy = await connectOurs(closer, proxy.port, { streamWindowBytes: 0 });
    const abandoned = Array.from({ length: 20 }, () => {
      const s = stingy.request(grpcPost(proxy.address, '/big'), true);
      return { s, done: collect(s) };
    });
    await until('the door to have every answer head', () => abandoned.every((a) => a.s.headersReceived), 5_000);
    // 20 windows of 1 MiB taken from the door's one 16 MiB upstream connection: nothing for anyone else
    // if they counted against the connection.
    await sleep(200);
    const other = await connectOurs(closer, proxy.port);
    const res = await collect(other.request(grpcPost(proxy.address, '/small'), true));
    expect(res.body.toString()).toBe('small');
    expect(valueOf(res.trailers, 'grpc-status')).toBe('0');

    // Half reset by the client, the others gone with its connection: still serving.
    for (const a of abandoned.slice(0, 10)) a.s.reset(0x8);
    stingy.destroy();
    await Promise.all(abandoned.map((a) => a.done));
    const again = await collect(other.request(grpcPost(proxy.address, '/big'), true));
    expect(again.body.equals(pattern(1.5 * MiB, 8))).toBe(true);
    expect(proxy.upstream.connections).toBe(1);
  });

  it('drops a call whose client stopped reading at its deadline, both ways', async () => {
    const { proxy, origin } = await door();
    let upstreamClosed: number | undefined;
    origin.server.on('stream', (stream: http2.ServerHttp2Stream) => stream.on('close', () => (upstreamClosed = stream.rstCode)));
    const stingy = await connectOurs(closer, proxy.port, { streamWindowBytes: 0 });
    const started = Date.now();
    const res = await collect(stingy.request(grpcPost(proxy.address, '/held', [['grpc-timeout', '300m']]), true));
    // The door answered its head (HEADERS take no window), then reset the stream at the deadline.
    expect(valueOf(res.headers, ':status')).toBe('200');
    expect(res.code).toBe(0x8); // CANCEL
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    await until('the upstream call to be reset too', () => upstreamClosed !== undefined);
    expect(upstreamClosed).toBe(0x8);
    // Before any answer head, the client gets DEADLINE_EXCEEDED.
    const early = await startH2Server(closer, () => undefined);
    const waiting = closer.add(new H2Upstream(early.address, 1, QUIET), (u) => u.close());
    const front = await startH2Server(closer, (stream, headers, endStream) => pipeCall(waiting, stream, headers, undefined, endStream));
    const client = await connectOurs(closer, front.port);
    const timedOut = await collect(client.request(grpcPost(front.address, '/never', [['grpc-timeout', '100m']]), true));
    expect(statusOf(timedOut.headers)).toEqual({ code: grpc.status.DEADLINE_EXCEEDED, message: 'deadline exceeded' });
  });

  it('refuses 1,100 malformed requests at the door: a long-lived call on the shared connection survives', async () => {
    const { proxy, origin, held } = await door();
    let reached = 0;
    origin.server.on('stream', () => reached++);
    const client = await connectOurs(closer, proxy.port);
    const long = collect(client.request(grpcPost(proxy.address, '/held'), true));
    await until('the long-lived call to reach the upstream', () => held.length === 1);
    const bad: Header[][] = [
      [['x-a', '1'], ...grpcPost(proxy.address, '/x')],
      [...grpcPost(proxy.address, '/x'), ['Grpc-Timeout', '1S']],
      [...grpcPost(proxy.address, '/x'), ['connection', 'keep-alive']],
      [...grpcPost(proxy.address, '/x'), ['x-a', 'a\nb']],
      grpcPost(proxy.address, '/x').filter((h) => h[0] !== ':path'),
    ];
    // In batches of 100: the door allows 128 streams at once.
    const refused: Awaited<ReturnType<typeof collect>>[] = [];
    for (let b = 0; b < 11; b++) refused.push(...(await Promise.all(Array.from({ length: 100 }, (_, i) => collect(client.request(bad[(b * 100 + i) % bad.length]!, true))))));
    expect(refused).toHaveLength(1_100);
    expect(refused.every((r) => r.code === 0x1)).toBe(true); // PROTOCOL_ERROR
    expect(reached).toBe(1);
    held[0]!.end(Buffer.from('still here'));
    const r = await long;
    expect(r.body.toString()).toBe('still here');
    expect(valueOf(r.trailers, 'grpc-status')).toBe('0');
    expect(origin.sessions.filter((x) => !x.destroyed)).toHaveLength(1);
  });
});

describe('gRPC status helpers', () => {
  it('statusHeaders and statusOf round-trip codes and messages that need percent-encoding', () => {
    const headers: Header[] = statusHeaders(grpc.status.INVALID_ARGUMENT, 'tensor "x": 100% off\nline two, ü');
    expect(headers.slice(0, 3)).toEqual([[':status', '200'], ['content-type', 'application/grpc'], ['grpc-status', '3']]);
    expect(statusOf(headers)).toEqual({ code: 3, message: 'tensor "x": 100% off\nline two, ü' });
    expect(statusHeaders(0, '')).toEqual([[':status', '200'], ['content-type', 'application/grpc'], ['grpc-status', '0']]);
    expect(statusOf([[':status', '200']])).toBeUndefined();
    expect(statusOf(undefined)).toBeUndefined();
    // A message that is not valid percent-encoding is kept as it came.
    expect(statusOf([['grpc-status', '2'], ['grpc-message', '100% broken']])).toEqual({ code: 2, message: '100% broken' });
  });
});
