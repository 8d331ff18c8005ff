// The benchmark's load client (bench/h2-unary.ts, on lib/h2) against real servers: grpc-js over h2c
// and TLS, and node:http2 where a test needs a server that ends connections. Its answers decide
// every suite's error column, so an OK must be an OK, and a failure must say which.
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { CallError, grpcFrame, H2UnaryConnection } from '../../../bench/h2-unary';
import { createCa, issueCertificate } from '../../../lib/pki';

const identity = (b: Buffer): Buffer => b;
const unaryMethod = (path: string): grpc.MethodDefinition<Buffer, Buffer> => ({
  path, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
});
const SERVICE = { Echo: unaryMethod('/test.Bench/Echo'), Fail: unaryMethod('/test.Bench/Fail') };

const stops: (() => Promise<void> | void)[] = [];
const open: H2UnaryConnection[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  for (const s of stops.splice(0).reverse()) await s();
});

/** A grpc-js server: Echo answers its request (and the authorization it saw), Fail fails with a non-ASCII message. */
async function startGrpc(credentials = grpc.ServerCredentials.createInsecure()): Promise<{ address: string; seenAuth: string[] }> {
  const seenAuth: string[] = [];
  const server = new grpc.Server();
  server.addService(SERVICE, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      seenAuth.push(String(call.metadata.get('authorization')[0] ?? ''));
      cb(null, call.request);
    },
    Fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'too big: 5 µs over' }),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
  stops.push(() => void server.forceShutdown());
  return { address: `127.0.0.1:${port}`, seenAuth };
}

function connect(address: string, credentials?: ConstructorParameters<typeof H2UnaryConnection>[1]): H2UnaryConnection {
  const c = new H2UnaryConnection(address, credentials);
  open.push(c);
  return c;
}

test('an OK call resolves to the framed answer length, many calls in flight on one connection', async () => {
  const { address } = await startGrpc();
  const c = connect(address);
  const lengths = await Promise.all(Array.from({ length: 50 }, (_, i) => c.call('/test.Bench/Echo', grpcFrame(Buffer.alloc(i * 100, i)))));
  expect(lengths).toEqual(Array.from({ length: 50 }, (_, i) => 5 + i * 100));
});

test('a failed call rejects with its gRPC status and the decoded message', async () => {
  const { address } = await startGrpc();
  const c = connect(address);
  const err = await c.call('/test.Bench/Fail', grpcFrame(Buffer.from('x'))).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CallError);
  expect((err as CallError).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  expect((err as CallError).message).toBe('too big: 5 µs over');
  const unknown = await c.call('/test.Bench/Nope', grpcFrame(Buffer.from('x'))).catch((e: unknown) => e);
  expect((unknown as CallError).code).toBe(grpc.status.UNIMPLEMENTED);
});

test('over TLS it checks the server against the CA and sends the bearer token', async () => {
  const ca = await createCa({ commonName: 'bench test CA' });
  const leaf = await issueCertificate(ca, { kind: 'router', name: 'router' });
  const { address, seenAuth } = await startGrpc(grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(leaf.key), cert_chain: Buffer.from(leaf.cert) }]));
  expect(await connect(address, { caPem: ca.cert, token: 'secret' }).call('/test.Bench/Echo', grpcFrame(Buffer.from('hi')))).toBe(7);
  expect(seenAuth).toEqual(['Bearer secret']);
  // The server is checked as localhost (the bench's servers are reached at 127.0.0.1 under that name).
  const ipOnly = await issueCertificate(ca, { kind: 'router', name: 'router', hosts: ['127.0.0.1'] });
  const atIp = await startGrpc(grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(ipOnly.key), cert_chain: Buffer.from(ipOnly.cert) }]));
  const wrongName = await connect(atIp.address, { caPem: ca.cert }).call('/test.Bench/Echo', grpcFrame(Buffer.from('hi'))).catch((e: unknown) => e);
  expect((wrongName as CallError).code).toBe(-1);
  expect(atIp.seenAuth).toEqual([]);
  // Another CA's client refuses the server: the call fails as a transport error.
  const other = await createCa({ commonName: 'someone else' });
  const err = await connect(address, { caPem: other.cert }).call('/test.Bench/Echo', grpcFrame(Buffer.from('hi'))).catch((e: unknown) => e);
  expect((err as CallError).code).toBe(-1);
  expect(seenAuth).toHaveLength(1);
});

test('a server that ends each connection after one call (GOAWAY) is called again on a new one', async () => {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => sessions.add(s));
  server.on('stream', (stream) => {
    stream.on('data', () => undefined);
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(grpcFrame(Buffer.from('ok')));
      stream.session?.close();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  stops.push(() => new Promise<void>((r) => {
    for (const s of sessions) s.destroy();
    server.close(() => r());
  }));
  const c = connect(`127.0.0.1:${(server.address() as { port: number }).port}`);
  for (let i = 0; i < 5; i++) {
    expect(await c.call('/test.Bench/Echo', grpcFrame(Buffer.from('x')))).toBe(7);
  }
  expect(sessions.size).toBe(5);
});

test('a status message that is not valid percent-encoding still fails the call with it, as sent', async () => {
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '8', 'grpc-message': 'queue 100% full' }, { endStream: true });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  stops.push(() => new Promise<void>((r) => server.close(() => r())));
  const c = connect(`127.0.0.1:${(server.address() as { port: number }).port}`);
  const [a, b] = await Promise.all([0, 1].map(() => c.call('/test.Bench/Echo', grpcFrame(Buffer.from('x'))).catch((e: unknown) => e)));
  for (const err of [a, b]) {
    expect((err as CallError).code).toBe(8);
    expect((err as CallError).message).toBe('queue 100% full');
  }
});

test('a stream the server resets, or a server that is gone, fails as a transport error', async () => {
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.on('error', () => undefined); // node reports its own reset as an error on the stream
    stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const c = connect(`127.0.0.1:${port}`);
  const reset = await c.call('/test.Bench/Echo', grpcFrame(Buffer.from('x'))).catch((e: unknown) => e);
  expect((reset as CallError).code).toBe(-1);
  expect((reset as CallError).message).toMatch(/reset \(http2 code 7\)/);
  c.close();
  await new Promise<void>((r) => server.close(() => r()));
  const gone = await connect(`127.0.0.1:${port}`).call('/test.Bench/Echo', grpcFrame(Buffer.from('x'))).catch((e: unknown) => e);
  expect((gone as CallError).code).toBe(-1);
});
