// The mesh over TLS with a CA made in the test: registry, pods and router with certificates and
// mutual TLS between them. A grpc-js client that trusts the CA infers through the router; one that
// does not cannot connect; the router's certificate rotated on disk is served to new connections
// while a call open on an old one goes on; a pod whose heartbeat claims a name its certificate does
// not carry gets no traffic and one warning; a pod lets the registry's certificate ask it only its
// two placement questions, and a pod's certificate only its health (the Kubernetes probe); the registry answers a TLS client with a certificate.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { inferenceClient, registryClient, unary } from '../../lib/grpc/client';
import { answerClients, askServing, askVersions } from '../../lib/grpc/pod-answers';
import { protos } from '../../lib/grpc/proto';
import type { InferenceClient } from '../../lib/grpc/types';
import type { ModelStatistics__Output } from '../../lib/grpc/generated/inference/ModelStatistics';
import { createLogger, silentLogger } from '../../lib/log';
import { encodeHeartbeat, SCHEMA_VERSION, subjects } from '../../lib/events';
import { connectNats } from '../../lib/nats';
import { loadTls, podIdentity, type TlsFiles } from '../../lib/tls';
import { heldOutDigits } from '../../tools/models/mnist-data';
import { startRouterService, type RouterService } from '../../services/router/router-service';
import type { RegistryService } from '../../services/registry/registry-service';
import type { InferenceService } from '../../services/inference/inference-service';
import os from 'node:os';
import path from 'node:path';
import { startNatsServer } from '../../cli/local-mesh/nats-server';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startTestPki, type TestPki, pushOverTls } from '../helpers/pki';
import type { IssuedPem, PemFiles } from '../../lib/pki';
import { startTestPod, startTestRegistry, testConfig } from '../helpers/services';
import { waitReady } from '../helpers/mesh';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const digit = heldOutDigits(1)[0]!;
const pixels = Array.from(digit.pixels);
const inferRequest = { model_name: 'mnist', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], contents: { fp32_contents: pixels } }] };

let nats: NatsServerProcess & { cleanup(): Promise<void> };
let pki: TestPki;
let registry: RegistryService;
let podA: InferenceService;
let impostor: InferenceService;
let router: RouterService;
let routerFiles: PemFiles & IssuedPem;
/** The test's own certificate (a router's), for the services that ask for one. */
let clientTls: TlsFiles;
/** The impostor pod's own material (its certificate is pod-c's). */
let podTls: TlsFiles;
let podCFiles: PemFiles & IssuedPem;
const routerLog: string[] = [];
const clients: grpc.Client[] = [];

/** A grpc-js client of the router as an outside user makes one: trusting `ca`, no certificate of its own. */
function userClient(creds: grpc.ChannelCredentials): InferenceClient {
  const c = new (protos().inference.GRPCInferenceService)(`127.0.0.1:${router.port}`, creds, { 'grpc.use_local_subchannel_pool': 1 });
  clients.push(c);
  return c;
}

function infer(c: InferenceClient): Promise<{ outputs: { name: string }[] }> {
  return unary((cb) => c.ModelInfer(inferRequest, { deadline: Date.now() + 10_000 }, cb));
}

const names = (res: { outputs: { name: string }[] }) => res.outputs.map((o) => o.name);

/**
 * Successful inferences `pod` counted, asked over mutual TLS as the router would; 0 from a pod that
 * does not hold mnist (placement puts nothing on a pod whose certificate does not prove its name).
 */
async function successes(pod: InferenceService, name: string): Promise<number> {
  const c = inferenceClient(pod.address, { tls: { files: clientTls, identity: podIdentity(name) } });
  try {
    const res = await unary<{ model_stats: ModelStatistics__Output[] }>((cb) => c.ModelStatistics({ name: 'mnist', version: '' }, { deadline: Date.now() + 10_000 }, cb));
    return res.model_stats.reduce((n, s) => n + Number(s.inference_stats?.success?.count ?? 0), 0);
  } catch (err) {
    if ((err as grpc.ServiceError).code === grpc.status.NOT_FOUND) return 0;
    throw err;
  } finally {
    c.close();
  }
}

/** Serial number of the certificate a new TLS connection to `port` is shown. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: pki.ca.cert, ALPNProtocols: ['h2'] }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.destroy();
    });
    s.once('error', reject);
  });
}

beforeAll(async () => {
  nats = await startTestNats();
  pki = await startTestPki();
  // Every service asks for client certificates (mutual TLS between services) and rereads its files often.
  const common = { INFERMESH_TLS_CLIENT_AUTH: 'true', INFERMESH_TLS_RELOAD_INTERVAL_MS: '200' };
  registry = await startTestRegistry(nats.url, pki.env(await pki.issue('registry', { kind: 'registry', name: 'registry' }), common));
  clientTls = loadTls(testConfig(nats.url, pki.env(await pki.issue('test-client', { kind: 'router', name: 'test-client' }))), silentLogger)!;
  await pushOverTls(registry.port, clientTls);
  podA = await startTestPod(nats.url, registry.port, pki.env(await pki.issue('pod-a', { kind: 'pod', name: 'pod-a' }), { ...common, INFERMESH_POD_NAME: 'pod-a' }));
  // A pod whose heartbeat says pod-b while its certificate is pod-c's.
  const podC = await pki.issue('pod-c', { kind: 'pod', name: 'pod-c' });
  podCFiles = podC;
  podTls = loadTls(testConfig(nats.url, pki.env(podC)), silentLogger)!;
  impostor = await startTestPod(nats.url, registry.port, pki.env(podC, { ...common, INFERMESH_POD_NAME: 'pod-b' }));
  routerFiles = await pki.issue('router', { kind: 'router', name: 'router-1' });
  router = await startRouterService(testConfig(nats.url, { INFERMESH_REGISTRY_URL: `127.0.0.1:${registry.port}`, ...pki.env(routerFiles, common) }), createLogger('router', 'info', {}, (l) => routerLog.push(l)));
  await waitReady(userClient(grpc.credentials.createSsl(Buffer.from(pki.ca.cert))), ['mnist']);
  await podA.synced;
  await impostor.synced;
});

afterAll(async () => {
  for (const c of clients) c.close();
  clientTls?.close();
  podTls?.close();
  await router?.shutdown(5_000);
  await Promise.all([podA?.shutdown(5_000), impostor?.shutdown(5_000)]);
  await registry?.shutdown(5_000);
  await nats?.cleanup();
  pki?.cleanup();
});

it('infers through the router over TLS, the router and the pod in mutual TLS', async () => {
  const c = userClient(grpc.credentials.createSsl(Buffer.from(pki.ca.cert)));
  const before = await successes(podA, 'pod-a');
  for (let i = 0; i < 10; i++) expect(names(await infer(c))).toEqual(['logits', 'probabilities']);
  expect(await successes(podA, 'pod-a')).toBeGreaterThanOrEqual(before + 10);
});

it('serves HTTP/REST over HTTPS with the router\'s certificate, and refuses plain HTTP', async () => {
  const get = (mod: typeof https | typeof http, opts: https.RequestOptions) => new Promise<number>((resolve, reject) => {
    const req = mod.get({ host: '127.0.0.1', port: router.httpPort, path: '/v2/models/mnist/ready', ...opts }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
  });
  expect(await get(https, { ca: pki.ca.cert })).toBe(200);
  // The system's roots do not know the test CA; a plaintext request is not TLS.
  await expect(get(https, {})).rejects.toThrow(/self-signed|unable to verify|certificate/i);
  await expect(get(http, {})).rejects.toThrow();
});

it('lets a pod\'s own certificate only probe a pod\'s health, as its Kubernetes probes do (tools/health-probe.ts)', async () => {
  const asPod = inferenceClient(podA.address, { tls: { files: podTls, identity: podIdentity('pod-a') }, channel: { 'grpc.use_local_subchannel_pool': 1 } });
  clients.push(asPod);
  await expect(infer(asPod)).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: expect.stringContaining('pod certificate') });
  // The probe as deploy/k8s runs it: a child process with the pod's TLS files and client auth on.
  const port = podA.address.slice(podA.address.lastIndexOf(':') + 1);
  const probe = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, [path.resolve(__dirname, '../../dist/tools/health-probe.js'), port], { env: { PATH: process.env.PATH ?? '', ...pki.env(podCFiles, { INFERMESH_TLS_CLIENT_AUTH: 'true' }) }, timeout: 20_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr: String(stderr) });
    });
  });
  expect(probe).toEqual({ code: 0, stderr: '' });
  const asRouter = inferenceClient(podA.address, { tls: { files: clientTls, identity: podIdentity('pod-a') }, channel: { 'grpc.use_local_subchannel_pool': 1 } });
  clients.push(asRouter);
  expect(names(await infer(asRouter))).toEqual(['logits', 'probabilities']);
});

it('lets the registry\'s certificate ask a pod only what placement asks: every other method is PERMISSION_DENIED', async () => {
  const registryTls = loadTls(testConfig(nats.url, pki.env(await pki.issue('registry-client', { kind: 'registry', name: 'registry-client' }))), silentLogger)!;
  const tlsOpts = { files: registryTls, identity: podIdentity('pod-a') };
  // The registry's own clients (lib/grpc/pod-answers.ts) get both its answers.
  const answers = answerClients(podA.address, tlsOpts);
  clients.push(answers.health, answers.index);
  expect(await askServing(answers.health, 10_000)).toEqual({ serving: true, answer: 'SERVING' });
  expect(await askVersions(answers.index, 10_000)).toContainEqual(expect.objectContaining({ name: 'mnist', state: 'READY' }));
  const asRegistry = answers.index;
  const denied = (method: string) => ({ code: grpc.status.PERMISSION_DENIED, details: expect.stringMatching(new RegExp(`registry.*/inference\\.GRPCInferenceService/${method}\\b`)) });
  // ModelInfer, which the door answers itself.
  await expect(infer(asRegistry)).rejects.toMatchObject(denied('ModelInfer'));
  // Unary calls the door pipes to the pod's grpc-js server: one it serves, and the protocol's
  // RepositoryModelLoad, which it does not (refused for the caller first, not UNIMPLEMENTED).
  const bytes = (b: Buffer) => b;
  await expect(unary((cb) => asRegistry.makeUnaryRequest('/inference.GRPCInferenceService/RepositoryModelLoad', bytes, bytes, Buffer.alloc(0), new grpc.Metadata(), { deadline: Date.now() + 10_000 }, cb))).rejects.toMatchObject(denied('RepositoryModelLoad'));
  await expect(unary((cb) => asRegistry.ModelStatistics({ name: 'mnist', version: '' }, { deadline: Date.now() + 10_000 }, cb))).rejects.toMatchObject(denied('ModelStatistics'));
  // A stream, refused before its first request is read.
  const stream = asRegistry.ModelStreamInfer();
  const streamAnswers: unknown[] = [];
  stream.on('data', (r: unknown) => streamAnswers.push(r));
  const streamEnd = new Promise<grpc.ServiceError>((resolve, reject) => {
    stream.on('error', resolve);
    stream.on('end', () => reject(new Error('the stream ended without an error')));
  });
  stream.write(inferRequest);
  stream.end();
  expect(await streamEnd).toMatchObject(denied('ModelStreamInfer'));
  expect(streamAnswers).toEqual([]);
  // The same connection still gets its answers, and a router's certificate still infers.
  expect((await askServing(answers.health, 10_000)).serving).toBe(true);
  const asRouter = inferenceClient(podA.address, { tls: { files: clientTls, identity: podIdentity('pod-a') }, channel: { 'grpc.use_local_subchannel_pool': 1 } });
  clients.push(asRouter);
  expect(names(await infer(asRouter))).toEqual(['logits', 'probabilities']);
  registryTls.close();
});

it('holds a registry\'s or a pod\'s certificate to the exact paths it may call, whatever else a path names', async () => {
  const registryTls = loadTls(testConfig(nats.url, pki.env(await pki.issue('registry-paths', { kind: 'registry', name: 'registry-paths' }))), silentLogger)!;
  const asRegistry = inferenceClient(podA.address, { tls: { files: registryTls, identity: podIdentity('pod-a') }, channel: { 'grpc.use_local_subchannel_pool': 1 } });
  const asPod = inferenceClient(podA.address, { tls: { files: podTls, identity: podIdentity('pod-a') }, channel: { 'grpc.use_local_subchannel_pool': 1 } });
  clients.push(asRegistry, asPod);
  const bytes = (b: Buffer) => b;
  const call = (c: grpc.Client, path: string) => unary((cb) => c.makeUnaryRequest(path, bytes, bytes, Buffer.alloc(0), new grpc.Metadata(), { deadline: Date.now() + 10_000 }, cb));
  // Spellings of the allowed paths with something more (a query, a slash, another case, an escaped
  // slash, a dot segment), the health Watch stream, reflection: none is an allowed path as the door
  // reads it, and the door pipes to grpc-js the :path it checked.
  const tricks = [
    '/grpc.health.v1.Health/Check?service=', '/grpc.health.v1.Health/Check/', '/grpc.health.v1.Health/check', '/grpc.health.v1.Health%2FCheck',
    '//grpc.health.v1.Health/Check', '/grpc.health.v1.Health/Check/../../inference.GRPCInferenceService/ModelInfer', '/grpc.health.v1.Health/Watch',
    '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo', '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
  ];
  for (const path of [...tricks, '/inference.GRPCInferenceService/RepositoryIndex?x', '/inference.GRPCInferenceService/RepositoryIndex/../ModelInfer']) {
    await expect(call(asRegistry, path)).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: expect.stringContaining(`a registry certificate may not call ${path} on a pod`) });
  }
  for (const path of [...tricks, '/inference.GRPCInferenceService/RepositoryIndex']) {
    await expect(call(asPod, path)).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: expect.stringContaining(`a pod certificate may not call ${path} on a pod`) });
  }
  registryTls.close();
});

it('refuses a client that does not trust the CA, and a plaintext one', async () => {
  // The system's roots do not know the test CA.
  await expect(infer(userClient(grpc.credentials.createSsl()))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  await expect(infer(userClient(grpc.credentials.createInsecure()))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
});

it('gives no traffic to a pod whose certificate does not carry the name its heartbeat claims, and warns once', async () => {
  const fake = await waitFor('the router knows pod-b', () => router.membership.all().find((p) => p.id === 'pod-b'));
  await waitFor('pod-a proved its identity', () => router.membership.all().find((p) => p.id === 'pod-a')?.verified === true);
  await waitFor('a warning about pod-b', () => routerLog.some((l) => l.includes('"warn"') && l.includes('pod-b')));
  expect(fake.verified).toBe(false);
  // Nor does placement put anything there: the registry asks the address for proof as routers do.
  expect(impostor.repo.all()).toEqual([]);
  const c = userClient(grpc.credentials.createSsl(Buffer.from(pki.ca.cert)));
  for (let i = 0; i < 30; i++) await infer(c);
  expect(await successes(impostor, 'pod-c')).toBe(0);
  // The router checks it again now and then: still one warning.
  await new Promise((r) => setTimeout(r, 6_000));
  const warnings = routerLog.filter((l) => l.includes('"warn"') && l.includes('pod-b'));
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toContain('spiffe://infermesh/pod/pod-c');
  expect(warnings[0]).toContain('does not prove the name its heartbeat claims');
  expect(router.membership.all().find((p) => p.id === 'pod-b')?.verified).toBe(false);
});

it('keeps a proven pod at its address when a forged heartbeat moves it to another pod\'s', async () => {
  await waitFor('pod-a proved its identity', () => router.membership.all().find((p) => p.id === 'pod-a')?.verified === true);
  const nc = await connectNats(testConfig(nats.url), 'forger', silentLogger);
  try {
    // pod-a's name, the impostor's address (whose certificate says pod-c), every 100 ms.
    const forged = encodeHeartbeat({ schema: SCHEMA_VERSION, pod: 'pod-a', address: impostor.address, state: 'serving', models: [{ name: 'mnist', version: 1, state: 'READY', provider: 'cpu' }], inflight: 0, time: new Date().toISOString() });
    const timer = setInterval(() => nc.publish(subjects.heartbeat, forged), 100);
    try {
      await waitFor('a warning about the move', () => routerLog.some((l) => l.includes('"warn"') && l.includes(impostor.address) && l.includes('pod-a')));
      const c = userClient(grpc.credentials.createSsl(Buffer.from(pki.ca.cert)));
      for (let i = 0; i < 20; i++) await infer(c);
      expect(router.membership.all().find((p) => p.id === 'pod-a')?.address).toBe(podA.address);
      expect(await successes(impostor, 'pod-c')).toBe(0);
    } finally {
      clearInterval(timer);
    }
    expect(routerLog.filter((l) => l.includes('"warn"') && l.includes(impostor.address) && l.includes('pod-a'))).toHaveLength(1);
  } finally {
    await nc.close();
  }
});

it('serves a certificate rotated on disk to new connections while a call open on an old one completes', async () => {
  expect(await servedSerial(router.port)).toBe(routerFiles.serialNumber);
  // A call in flight: a stream opened before the rotation.
  const old = userClient(grpc.credentials.createSsl(Buffer.from(pki.ca.cert)));
  const stream = old.ModelStreamInfer();
  const answers: string[] = [];
  let wake: (() => void) | undefined;
  stream.on('data', (r: { error_message: string }) => {
    answers.push(r.error_message);
    wake?.();
  });
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', () => resolve());
    stream.on('error', reject);
  });
  const answered = (n: number) => waitFor(`${n} stream answers`, () => answers.length >= n, 20_000, 20);
  stream.write(inferRequest);
  await answered(1);

  const next = await pki.issue('router-next', { kind: 'router', name: 'router-1' });
  fs.copyFileSync(next.keyFile, routerFiles.keyFile);
  fs.copyFileSync(next.certFile, routerFiles.certFile);
  await waitFor('the new certificate served', async () => (await servedSerial(router.port)) === next.serialNumber, 20_000);
  // A new client connects with the new certificate and infers.
  expect(names(await infer(userClient(grpc.credentials.createSsl(Buffer.from(pki.ca.cert)))))).toEqual(['logits', 'probabilities']);
  // The call opened before goes on to its end.
  stream.write(inferRequest);
  await answered(2);
  stream.end();
  await ended;
  expect(answers).toEqual(['', '']);
});

/** The port of a host:port address. */
const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

/**
 * What asking the server at `port` for a TLS 1.2 renegotiation, right after the handshake, comes
 * to: 'renegotiated', the code of the error that ended the connection, or no answer in 5 s (a
 * server that takes it may not finish it before the client sends data).
 */
function renegotiation(port: number, alpn: string): Promise<string> {
  return new Promise((resolve) => {
    setTimeout(() => {
      resolve('no answer within 5 s');
      s.destroy();
    }, 5_000).unref();
    const s = tls.connect({ host: '127.0.0.1', port, ca: pki.ca.cert, cert: clientTls.current.cert, key: clientTls.current.key, ALPNProtocols: [alpn], maxVersion: 'TLSv1.2' }, () => {
      s.renegotiate({}, (err) => {
        resolve(err ? ((err as NodeJS.ErrnoException).code ?? err.message) : 'renegotiated');
        s.destroy();
      });
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    s.on('close', () => resolve('closed'));
  });
}

it('refuses a TLS 1.2 renegotiation on every port: the router\'s gRPC and HTTPS doors (after a rotation), a pod\'s, the registry\'s', async () => {
  // A renegotiation costs the server a handshake, and may show another certificate after the door judged the first.
  const refused = 'ERR_SSL_NO_RENEGOTIATION';
  expect({
    router: await renegotiation(router.port, 'h2'),
    rest: await renegotiation(router.httpPort!, 'http/1.1'),
    pod: await renegotiation(portOf(podA.address), 'h2'),
    registry: await renegotiation(registry.port, 'h2'),
  }).toEqual({ router: refused, rest: refused, pod: refused, registry: refused });
});

it('keeps the client certificate a pod\'s door judged on a resumed TLS session, 1.2 and 1.3', async () => {
  // A health check over raw h2, as a router's certificate may call it: its grpc-status, or why there is none.
  const check = (opts: tls.ConnectionOptions) => new Promise<{ status: string; reused: boolean; session?: Buffer }>((resolve) => {
    let session: Buffer | undefined;
    const h2 = http2.connect(`https://127.0.0.1:${portOf(podA.address)}`, { ca: pki.ca.cert, ...opts });
    h2.socket.on('session', (s: Buffer) => (session = s));
    const done = (status: string) => {
      resolve({ status, reused: (h2.socket as tls.TLSSocket | undefined)?.isSessionReused() ?? false, session });
      h2.close();
    };
    h2.on('error', (err) => done(err.message));
    h2.on('close', () => done('closed'));
    const req = h2.request({ ':method': 'POST', ':path': '/grpc.health.v1.Health/Check', 'content-type': 'application/grpc', te: 'trailers' });
    req.on('trailers', (t) => setImmediate(() => done(String(t['grpc-status']))));
    req.on('error', (err) => done(err.message));
    req.resume();
    req.end(Buffer.alloc(5));
  });
  for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
    const first = await check({ maxVersion, cert: clientTls.current.cert, key: clientTls.current.key });
    expect(first).toMatchObject({ status: '0', reused: false });
    expect(first.session).toBeDefined();
    // No certificate sent again: the session carries the one verified at first, and the door still sees it.
    expect(await check({ maxVersion, session: first.session })).toMatchObject({ status: '0', reused: true });
  }
  // Without a certificate and without a session: refused.
  expect((await check({})).status).not.toBe('0');
});

it('serves the registry over TLS to a client with a certificate, and to no other', async () => {
  const ok = registryClient(`127.0.0.1:${registry.port}`, { tls: { files: clientTls } });
  const res = await unary<{ models: { name: string }[] }>((cb) => ok.ListModels({}, { deadline: Date.now() + 10_000 }, cb));
  expect(res.models.map((m) => m.name)).toContain('mnist');
  ok.close();
  // Trusting the CA is not enough: client auth is on.
  const noCert = new (protos().registry.Registry)(`127.0.0.1:${registry.port}`, grpc.credentials.createSsl(Buffer.from(pki.ca.cert)), { 'grpc.use_local_subchannel_pool': 1 });
  clients.push(noCert);
  await expect(unary((cb) => noCert.ListModels({}, { deadline: Date.now() + 10_000 }, cb))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  const plain = new (protos().registry.Registry)(`127.0.0.1:${registry.port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  clients.push(plain);
  await expect(unary((cb) => plain.ListModels({}, { deadline: Date.now() + 10_000 }, cb))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
});

it('connects to a NATS that requires TLS and client certificates at a tls:// URL, with the service\'s files', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-nats-tls-'));
  const server = await pki.issue('nats', { kind: 'nats', name: 'nats' });
  const tlsNats = await startNatsServer({ storeDir: dir, extraArgs: ['--tls', '--tlscert', server.certFile, '--tlskey', server.keyFile, '--tlscacert', server.caFile, '--tlsverify'] });
  try {
    const files = await pki.issue('nats-client', { kind: 'router', name: 'nats-client' });
    const url = tlsNats.url.replace(/^nats:/, 'tls:');
    // connectNats retries forever: a connection that cannot be made fails the test after 15 s.
    const nc = await Promise.race([
      connectNats(testConfig(url, pki.env(files)), 'tls-client', silentLogger),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no NATS connection over TLS within 15 s')), 15_000).unref()),
    ]);
    expect((nc.info as { tls_required?: boolean } | undefined)?.tls_required).toBe(true);
    await nc.flush();
    await nc.close();
    // Without a client certificate the server refuses the connection; connectNats retries forever, so connect once by hand.
    const { connect } = await import('@nats-io/transport-node');
    await expect(connect({ servers: url, tls: { caFile: files.caFile }, maxReconnectAttempts: 0, reconnect: false, timeout: 3_000 })).rejects.toThrow();
  } finally {
    await tlsNats.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
