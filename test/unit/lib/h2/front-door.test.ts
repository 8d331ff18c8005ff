// lib/h2/front-door.ts, the door the router and the pods share: the hot method is read whole and
// handed to the service (never to the fallback), decompressed when the client compressed it; every
// other call reaches the fallback server as it is, and the door's own answers (415, the size
// limits, a bomb, an encoding it lacks, the deadline it reads) are its own. The services' fallback
// is a grpc-js server on a Unix socket in a private directory (lib/grpc/server.ts listenBehindDoor).
import fs from 'node:fs';
import type http2 from 'node:http2';
import path from 'node:path';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { createServer, listenBehindDoor } from '../../../../lib/grpc/server';
import { H2FrontDoor } from '../../../../lib/h2/front-door';
import { H2Upstream } from '../../../../lib/h2/upstream';
import { respondMessage } from '../../../../lib/h2/grpc';
import type { Header } from '../../../../lib/h2/connection';
import { Closer, connectNode, grpcFrame, HOST, nodeRequest, startNodeServer } from './peers';

const HOT = '/test.Svc/Hot';
const grpcHeaders = (path: string, extra: http2.OutgoingHttpHeaders = {}) => ({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra });

describe('H2FrontDoor', () => {
  const closer = new Closer();
  afterEach(() => closer.closeAll());

  /** A door whose hot method echoes its message; the fallback answers every call with its own path. */
  async function start(maxMessageBytes = 1024, maxConcurrentDecompressions?: number) {
    const fallbackPaths: string[] = [];
    const fallback = await startNodeServer(closer, (stream, headers) => {
      fallbackPaths.push(String(headers[':path']));
      stream.on('data', () => undefined);
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(grpcFrame(Buffer.from(`fallback ${headers[':path']}`)));
      });
    });
    const hot: { body: Buffer; deadline: number | undefined; headers: Header[] }[] = [];
    const door = new H2FrontDoor({
      path: HOT,
      onUnary: (stream, headers, body, deadline) => {
        hot.push({ body, deadline, headers });
        respondMessage(stream, Buffer.concat([Buffer.from('hot '), body.subarray(5)]), maxMessageBytes);
      },
      maxMessageBytes,
      who: 'the test door',
      fallbackAddress: fallback.address,
      maxConcurrentDecompressions,
    });
    closer.add(door, (d) => d.drain(0));
    const port = await door.listen(HOST, 0);
    const session = await connectNode(closer, port);
    return { session, hot, fallbackPaths };
  }

  it('answers the hot method itself and pipes every other call to the fallback', async () => {
    const { session, hot, fallbackPaths } = await start();
    const res = await nodeRequest(session, grpcHeaders(HOT, { 'x-team': 'search' }), grpcFrame(Buffer.from('ping')));
    expect(res.body.subarray(5).toString()).toBe('hot ping');
    expect(res.trailers?.['grpc-status']).toBe('0');
    expect(hot).toHaveLength(1);
    expect(hot[0]!.body.equals(grpcFrame(Buffer.from('ping')))).toBe(true);
    expect(hot[0]!.headers).toContainEqual(['x-team', 'search']);
    expect(hot[0]!.deadline).toBeUndefined();

    const other = await nodeRequest(session, grpcHeaders('/test.Svc/Other'), grpcFrame(Buffer.from('x')));
    expect(other.body.subarray(5).toString()).toBe('fallback /test.Svc/Other');
    // A GET of the hot path is not the hot method: it goes to the fallback too.
    await nodeRequest(session, { ':method': 'GET', ':path': HOT });
    expect(fallbackPaths).toEqual(['/test.Svc/Other', HOT]);
    expect(hot).toHaveLength(1);
  });

  it('reads the deadline from grpc-timeout when the headers arrive', async () => {
    const { session, hot } = await start();
    const before = Date.now();
    await nodeRequest(session, grpcHeaders(HOT, { 'grpc-timeout': '2S' }), grpcFrame(Buffer.from('d')));
    const deadline = hot[0]!.deadline!;
    expect(deadline).toBeGreaterThanOrEqual(before + 2_000);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 2_000);
  });

  it('answers 415 to a request that is not gRPC, RESOURCE_EXHAUSTED over the limit, and neither reaches the service', async () => {
    const { session, hot, fallbackPaths } = await start(1024);
    const json = await nodeRequest(session, { ':method': 'POST', ':path': HOT, 'content-type': 'application/json' }, Buffer.from('{}'));
    expect(json.headers[':status']).toBe(415);

    const big = await nodeRequest(session, grpcHeaders(HOT), grpcFrame(Buffer.alloc(4096)));
    expect(big.headers['grpc-status']).toBe('8');
    expect(decodeURIComponent(String(big.headers['grpc-message']))).toMatch(/larger than the test door's limit of 1024 bytes/);

    expect(hot).toHaveLength(0);
    expect(fallbackPaths).toEqual([]);
    // The connection still serves.
    expect((await nodeRequest(session, grpcHeaders(HOT), grpcFrame(Buffer.from('ok')))).body.subarray(5).toString()).toBe('hot ok');
  });

  it('refuses an answer over the limit with RESOURCE_EXHAUSTED (respondMessage)', async () => {
    // A 4-byte request is under the limit of 6; its 8-byte answer ('hot ' + request) is not.
    const { session, hot } = await start(6);
    const res = await nodeRequest(session, grpcHeaders(HOT), grpcFrame(Buffer.from('abcd')));
    expect(hot).toHaveLength(1);
    expect(res.headers['grpc-status']).toBe('8');
    expect(decodeURIComponent(String(res.headers['grpc-message']))).toMatch(/response of 8 bytes is larger than the limit of 6 bytes/);
    expect(res.body.length).toBe(0);
  });

  /** One gRPC message with the compressed flag set. */
  const compressedFrame = (message: Buffer) => {
    const f = grpcFrame(message);
    f[0] = 1;
    return f;
  };
  const grpcStatus = (res: { headers: http2.IncomingHttpHeaders; trailers?: http2.IncomingHttpHeaders }) => ({
    code: Number((res.trailers ?? res.headers)['grpc-status']),
    message: decodeURIComponent(String((res.trailers ?? res.headers)['grpc-message'] ?? '')),
  });

  it('hands the service a gzip or deflate message decompressed, without its grpc-encoding', async () => {
    const { session, hot, fallbackPaths } = await start(1024);
    const message = Buffer.from('a message the client compressed '.repeat(20));
    const gz = await nodeRequest(session, grpcHeaders(HOT, { 'grpc-encoding': 'gzip', 'x-team': 'search' }), compressedFrame(zlib.gzipSync(message)));
    const df = await nodeRequest(session, grpcHeaders(HOT, { 'grpc-encoding': 'deflate' }), compressedFrame(zlib.deflateSync(message)));
    for (const res of [gz, df]) expect(res.body.subarray(5).toString()).toBe(`hot ${message}`);
    expect(hot).toHaveLength(2);
    for (const h of hot) {
      expect(h.body.equals(grpcFrame(message))).toBe(true);
      expect(h.headers.some(([name]) => name === 'grpc-encoding')).toBe(false);
    }
    expect(hot[0]!.headers).toContainEqual(['x-team', 'search']);
    expect(fallbackPaths).toEqual([]);
  });

  it('refuses a gzip bomb as soon as its output passes the limit, and keeps serving', async () => {
    const { session, hot } = await start(64 * 1024);
    // 64 MiB of zeros in about 64 KiB: under the limit as sent, a thousand times over it decompressed.
    const bomb = zlib.gzipSync(Buffer.alloc(64 << 20), { level: 9 });
    expect(bomb.length).toBeLessThan(64 * 1024);
    const res = await nodeRequest(session, grpcHeaders(HOT, { 'grpc-encoding': 'gzip' }), compressedFrame(bomb));
    expect(grpcStatus(res)).toEqual({ code: 8, message: "request is larger than the test door's limit of 65536 bytes once decompressed" });
    const deflateBomb = await nodeRequest(session, grpcHeaders(HOT, { 'grpc-encoding': 'deflate' }), compressedFrame(zlib.deflateSync(Buffer.alloc(8 << 20))));
    expect(grpcStatus(deflateBomb).code).toBe(8);
    expect(hot).toHaveLength(0);
    // Exactly the limit reaches the service (whose echo, 4 bytes longer, is then over it).
    await nodeRequest(session, grpcHeaders(HOT, { 'grpc-encoding': 'gzip' }), compressedFrame(zlib.gzipSync(Buffer.alloc(64 * 1024, 7))));
    expect(hot).toHaveLength(1);
    expect(hot[0]!.body.equals(grpcFrame(Buffer.alloc(64 * 1024, 7)))).toBe(true);
  });

  it('answers an unknown encoding UNIMPLEMENTED with the encodings it has, a missing one INTERNAL, corrupt data INVALID_ARGUMENT', async () => {
    const { session, hot } = await start(1024);
    const snappy = await nodeRequest(session, grpcHeaders(HOT, { 'grpc-encoding': 'snappy' }), compressedFrame(Buffer.from('x')));
    expect(grpcStatus(snappy)).toEqual({ code: 12, message: "grpc-encoding 'snappy' is not supported (identity,deflate,gzip)" });
    expect(snappy.headers['grpc-accept-encoding']).toBe('identity,deflate,gzip');
    const none = await nodeRequest(session, grpcHeaders(HOT), compressedFrame(zlib.gzipSync(Buffer.from('x'))));
    expect(grpcStatus(none).code).toBe(13);
    const identity = await nodeRequest(session, grpcHeaders(HOT, { 'grpc-encoding': 'identity' }), compressedFrame(Buffer.from('x')));
    expect(grpcStatus(identity).code).toBe(13);
    const corrupt = await nodeRequest(session, grpcHeaders(HOT, { 'grpc-encoding': 'gzip' }), compressedFrame(Buffer.from('not gzip at all')));
    expect(grpcStatus(corrupt)).toEqual({ code: 3, message: expect.stringMatching(/^request message is not valid gzip data/) });
    const twoMessages = await nodeRequest(session, grpcHeaders(HOT, { 'grpc-encoding': 'gzip' }), Buffer.concat([compressedFrame(zlib.gzipSync(Buffer.from('a'))), compressedFrame(zlib.gzipSync(Buffer.from('b')))]));
    expect(grpcStatus(twoMessages)).toEqual({ code: 3, message: 'a unary call takes exactly one request message' });
    expect(hot).toHaveLength(0);
  });

  it('decompresses a few at a time; the others wait their turn and all are answered', async () => {
    const { session, hot } = await start(1 << 20, 1);
    const messages = Array.from({ length: 12 }, (_, i) => Buffer.alloc(256 * 1024, i));
    const answers = await Promise.all(messages.map((m) => nodeRequest(session, grpcHeaders(HOT, { 'grpc-encoding': 'gzip' }), compressedFrame(zlib.gzipSync(m)))));
    answers.forEach((res, i) => expect(res.body.subarray(5).equals(Buffer.concat([Buffer.from('hot '), messages[i]!]))).toBe(true));
    expect(hot).toHaveLength(12);
  });

  it('pipes to a grpc-js server on the Unix socket listenBehindDoor made, in a directory of mode 0700 that goes with it', async () => {
    const { server, health } = createServer({ maxMessageBytes: 1024 });
    closer.add(server, (s) => s.forceShutdown());
    health.set('', 'SERVING');
    const inner = closer.add(await listenBehindDoor(server), (i) => i.remove());
    const dir = path.dirname(inner.path);
    expect((fs.statSync(dir).mode & 0o777).toString(8)).toBe('700');
    const door = closer.add(new H2FrontDoor({ path: HOT, onUnary: () => undefined, maxMessageBytes: 1024, who: 'the test door', fallbackAddress: inner }), (d) => d.drain(0));
    const session = await connectNode(closer, await door.listen(HOST, 0));
    const res = await nodeRequest(session, grpcHeaders('/grpc.health.v1.Health/Check'), grpcFrame(Buffer.alloc(0)));
    // HealthCheckResponse { status: SERVING (1) }
    expect({ status: res.trailers?.['grpc-status'], body: res.body.toString('hex') }).toEqual({ status: '0', body: '00000000020801' });
    server.forceShutdown();
    inner.remove();
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('refuses TLS to a Unix socket: that hop is this host\'s, guarded by its directory', () => {
    expect(() => new H2Upstream({ path: '/nonexistent/grpc.sock' }, 1, { tls: { context: () => tls.createSecureContext() } })).toThrow(/TLS to the Unix socket \/nonexistent\/grpc\.sock/);
  });
});
