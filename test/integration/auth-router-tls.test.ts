// Tokens over TLS, as a production mesh runs: a CA made in the test, the registry, a pod and two
// routers with certificates and mutual TLS between them, INFERMESH_AUTH on at the routers. A
// client that trusts the CA and sends a token infers; without one it is UNAUTHENTICATED, with one
// for another model PERMISSION_DENIED; a revoked key is refused by both routers within 2 s.
import * as grpc from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import { encodeKeyRecord, keysBucket, newApiKey, type KeyRecord } from '../../lib/auth';
import { unary } from '../../lib/grpc/client';
import { protos } from '../../lib/grpc/proto';
import type { InferenceClient } from '../../lib/grpc/types';
import { silentLogger } from '../../lib/log';
import { loadTls, type TlsFiles } from '../../lib/tls';
import { heldOutDigits } from '../../tools/models/mnist-data';
import type { RegistryService } from '../../services/registry/registry-service';
import type { InferenceService } from '../../services/inference/inference-service';
import type { RouterService } from '../../services/router/router-service';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startTestPki, type TestPki, pushOverTls } from '../helpers/pki';
import { startTestPod, startTestRegistry, startTestRouter, testConfig } from '../helpers/services';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const pixels = Array.from(heldOutDigits(1)[0]!.pixels);
const inferRequest = (model: string) => ({ model_name: model, inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], contents: { fp32_contents: pixels } }] });

let nats: NatsServerProcess & { cleanup(): Promise<void> };
let pki: TestPki;
let registry: RegistryService;
let pod: InferenceService;
let routers: RouterService[] = [];
let clients: InferenceClient[] = [];
let clientTls: TlsFiles;
let nc: NatsConnection;
let keys: KV;

async function makeKey(grants: string[]): Promise<{ token: string; id: string; record: KeyRecord }> {
  const k = newApiKey();
  const record: KeyRecord = { id: k.id, name: 'tls test', hash: k.hash, grants, createdAt: new Date().toISOString(), createdBy: 'test' };
  await keys.put(k.id, encodeKeyRecord(record));
  return { token: k.token, id: k.id, record };
}

function md(token?: string): grpc.Metadata {
  const m = new grpc.Metadata();
  if (token !== undefined) m.set('authorization', `Bearer ${token}`);
  return m;
}

function infer(c: InferenceClient, model: string, token?: string) {
  return unary<{ outputs: unknown[] }>((cb) => c.ModelInfer(inferRequest(model), md(token), { deadline: Date.now() + 20_000 }, cb));
}

async function failure(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  nats = await startTestNats();
  pki = await startTestPki();
  const mtls = { INFERMESH_TLS_CLIENT_AUTH: 'true' };
  registry = await startTestRegistry(nats.url, pki.env(await pki.issue('registry', { kind: 'registry', name: 'registry' }), mtls));
  clientTls = loadTls(testConfig(nats.url, pki.env(await pki.issue('test-client', { kind: 'router', name: 'test-client' }))), silentLogger)!;
  await pushOverTls(registry.port, clientTls, 'mnist');
  await pushOverTls(registry.port, clientTls, 'digits');
  nc = await connect({ servers: nats.url });
  keys = await keysBucket(nc, { replicas: 1, create: true });
  pod = await startTestPod(nats.url, registry.port, pki.env(await pki.issue('pod-a', { kind: 'pod', name: 'pod-a' }), { ...mtls, INFERMESH_POD_NAME: 'pod-a' }));
  for (const name of ['router-1', 'router-2']) {
    routers.push(await startTestRouter(nats.url, registry.port, pki.env(await pki.issue(name, { kind: 'router', name }), {
      ...mtls,
      INFERMESH_AUTH: 'true',
      // Only the watch of the keys bucket can refuse a revoked key in time.
      INFERMESH_AUTH_CACHE_TTL_MS: '600000',
    })));
  }
  // Users trust the CA and have no certificate of their own.
  clients = routers.map((r) => new (protos().inference.GRPCInferenceService)(`127.0.0.1:${r.port}`, grpc.credentials.createSsl(Buffer.from(pki.ca.cert)), { 'grpc.use_local_subchannel_pool': 1 }));
  const admin = await makeKey(['admin']);
  for (const c of clients) {
    await waitFor('both models ready through the router', async () => {
      const ready = await Promise.all(['mnist', 'digits'].map((name) => unary<{ ready: boolean }>((cb) => c.ModelReady({ name, version: '' }, md(admin.token), cb))));
      return ready.every((r) => r.ready);
    }, 60_000);
  }
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(routers.map((r) => r.shutdown(5_000)));
  await pod?.shutdown(5_000);
  await registry?.shutdown(5_000);
  clientTls?.close();
  await nc?.close();
  await nats?.cleanup();
  pki?.cleanup();
});

it('lets a TLS client with a token infer, and refuses one without a token or with one for another model', async () => {
  const { token } = await makeKey(['infer:mnist']);
  for (const c of clients) expect((await infer(c, 'mnist', token)).outputs.length).toBeGreaterThan(0);
  const none = await failure(infer(clients[0]!, 'mnist'));
  expect(none.code).toBe(grpc.status.UNAUTHENTICATED);
  const other = await failure(infer(clients[0]!, 'digits', token));
  expect(other.code).toBe(grpc.status.PERMISSION_DENIED);
  expect(other.details).toBe("the caller has no 'infer' scope for model 'digits'");
});

it('refuses a revoked key on every router within 2 s', async () => {
  const { token, id, record } = await makeKey(['infer:mnist']);
  for (const c of clients) {
    await infer(c, 'mnist', token);
    await infer(c, 'mnist', token);
  }
  const revoked = Date.now();
  await keys.put(id, encodeKeyRecord({ ...record, revokedAt: new Date().toISOString() }));
  const after = await Promise.all(clients.map(async (c) => {
    await waitFor('the revoked key refused', async () => (await failure(infer(c, 'mnist', token)).catch(() => undefined))?.code === grpc.status.UNAUTHENTICATED, 10_000, 20);
    return Date.now() - revoked;
  }));
  for (const ms of after) expect(ms).toBeLessThan(2_000);
});
