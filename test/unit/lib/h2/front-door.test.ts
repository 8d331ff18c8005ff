// lib/h2/front-door.ts, the door the router and the pods share: the hot method is read whole and
// handed to the service (never to the fallback), every other call reaches the fallback server as
// it is, and the door's own answers (415, the size limit, the deadline it reads) are its own.
import type http2 from 'node:http2';
import { H2FrontDoor } from '../../../../lib/h2/front-door';
import { respondMessage } from '../../../../lib/h2/grpc';
import type { Header } from '../../../../lib/h2/connection';
import { Closer, connectNode, grpcFrame, HOST, nodeRequest, startNodeServer } from './peers';

const HOT = '/test.Svc/Hot';
const grpcHeaders = (path: string, extra: http2.OutgoingHttpHeaders = {}) => ({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra });

describe('H2FrontDoor', () => {
  const closer = new Closer();
  afterEach(() => closer.closeAll());

  /** A door whose hot method echoes its message; the fallback answers every call with its own path. */
  async function start(maxMessageBytes = 1024) {
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
});
