// Heartbeats forged in a proven pod's name, over TLS with a CA made in the test: every pod holds the
// same pod NATS identity, so a compromised one can publish heartbeats for any other, with its
// address and identity. A real router, real pods and a real NATS: a flood of forged goodbyes, of
// empty version lists, of a load failure, or of a version the pod lacks, changes nothing the router
// routes on (it asks the pod, which answers over the connection that proved its identity); a pod
// that really stops still leaves the router's view at once, a version a rollout retires leaves its
// routing before the pod unloads it, and with TLS off heartbeats are believed as they come.
import * as grpc from '@grpc/grpc-js';
import { rolloutsClient, unary } from '../../lib/grpc/client';
import { protos } from '../../lib/grpc/proto';
import type { InferenceClient } from '../../lib/grpc/types';
import { createLogger, silentLogger } from '../../lib/log';
import { encodeHeartbeat, SCHEMA_VERSION, subjects, type Heartbeat, type PodModel } from '../../lib/events';
import { connectNats } from '../../lib/nats';
import { loadTls, type TlsFiles } from '../../lib/tls';
import { heldOutDigits } from '../../tools/models/mnist-data';
import { startRouterService, type RouterService } from '../../services/router/router-service';
import type { RegistryService } from '../../services/registry/registry-service';
import type { InferenceService } from '../../services/inference/inference-service';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startTestPki, type TestPki, pushOverTls } from '../helpers/pki';
import { startTestPod, startTestRegistry, testConfig } from '../helpers/services';
import { startTestMesh, waitReady } from '../helpers/mesh';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const digit = heldOutDigits(1)[0]!;
const inferRequest = { model_name: 'mnist', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], contents: { fp32_contents: Array.from(digit.pixels) } }] };
const READY_1: PodModel = { name: 'mnist', version: 1, state: 'READY', provider: 'cpu' };

let nats: NatsServerProcess & { cleanup(): Promise<void> };
let pki: TestPki;
let registry: RegistryService;
let podA: InferenceService;
let router: RouterService;
/** The test's own certificate (a router's), to push with. */
let clientTls: TlsFiles;
const routerLog: string[] = [];
const clients: grpc.Client[] = [];

function userClient(port: number, creds = grpc.credentials.createSsl(Buffer.from(pki.ca.cert))): InferenceClient {
  const c = new (protos().inference.GRPCInferenceService)(`127.0.0.1:${port}`, creds, { 'grpc.use_local_subchannel_pool': 1 });
  clients.push(c);
  return c;
}

function infer(c: InferenceClient, version = ''): Promise<{ outputs: { name: string }[] }> {
  return unary((cb) => c.ModelInfer({ ...inferRequest, model_version: version }, { deadline: Date.now() + 10_000 }, cb));
}

/** A heartbeat in pod-a's name, with its address and identity. */
function forged(state: Heartbeat['state'], models: PodModel[], address = podA.address, pod = 'pod-a'): Heartbeat {
  return { schema: SCHEMA_VERSION, pod, address, state, models, inflight: 0, time: new Date().toISOString() };
}

/**
 * Publishes `hb` (each of them) every `everyMs` (10 ms: twenty to each of the pod's own), `perTick`
 * times, while `during` runs.
 */
async function flood(natsUrl: string, hb: Heartbeat | Heartbeat[], during: () => Promise<void>, everyMs = 10, perTick = 1): Promise<void> {
  const nc = await connectNats(testConfig(natsUrl), 'forger', silentLogger);
  const all = (Array.isArray(hb) ? hb : [hb]).map(encodeHeartbeat);
  const publish = () => {
    for (let i = 0; i < perTick; i++) for (const bytes of all) nc.publish(subjects.heartbeat, bytes);
  };
  const timer = setInterval(publish, everyMs);
  try {
    publish();
    await nc.flush();
    await during();
  } finally {
    clearInterval(timer);
    await nc.close();
  }
}

/** pod-a as the router knows it. */
const knownA = () => router.membership.all().find((p) => p.id === 'pod-a');

/** Infers `n` times through the router, checking before each that pod-a is still known, proven and routed mnist 1 to. */
async function stillServed(n: number): Promise<void> {
  const c = userClient(router.port);
  const pod = knownA();
  for (let i = 0; i < n; i++) {
    expect(knownA()).toBe(pod);
    expect(router.membership.candidates('mnist', 1).map((p) => p.id)).toEqual(['pod-a']);
    expect((await infer(c)).outputs.map((o) => o.name)).toEqual(['logits', 'probabilities']);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const warnings = (text: string) => routerLog.filter((l) => l.includes('"warn"') && l.includes(text));

beforeAll(async () => {
  nats = await startTestNats();
  pki = await startTestPki();
  const common = { INFERMESH_TLS_CLIENT_AUTH: 'true' };
  // Placement off: every pod loads every served version whatever heartbeats say to the registry's
  // placement (which believes them too: its own matter), so what a pod has is the registry's word.
  registry = await startTestRegistry(nats.url, pki.env(await pki.issue('registry', { kind: 'registry', name: 'registry' }), { ...common, INFERMESH_PLACEMENT: 'false' }));
  clientTls = loadTls(testConfig(nats.url, pki.env(await pki.issue('test-client', { kind: 'router', name: 'test-client' }))), silentLogger)!;
  await pushOverTls(registry.port, clientTls);
  podA = await startTestPod(nats.url, registry.port, pki.env(await pki.issue('pod-a', { kind: 'pod', name: 'pod-a' }), { ...common, INFERMESH_POD_NAME: 'pod-a' }));
  // No request waits for a version to load: one no pod has ready fails at once. Every warning is logged.
  router = await startRouterService(testConfig(nats.url, {
    INFERMESH_REGISTRY_URL: `127.0.0.1:${registry.port}`,
    INFERMESH_ROUTER_MAX_COLD_WAITING: '0',
    INFERMESH_REFUSED_CLAIM_LOG_INTERVAL_MS: '0',
    ...pki.env(await pki.issue('router', { kind: 'router', name: 'router-1' }), common),
  }), createLogger('router', 'info', {}, (l) => routerLog.push(l)));
  await waitReady(userClient(router.port), ['mnist']);
  await waitFor('pod-a proven with mnist 1 ready', () => knownA()?.verified && router.membership.candidates('mnist', 1).length === 1);
});

afterAll(async () => {
  for (const c of clients) c.close();
  clientTls?.close();
  await router?.shutdown(5_000);
  await podA?.shutdown(5_000);
  await registry?.shutdown(5_000);
  await nats?.cleanup();
  pki?.cleanup();
});

it('keeps a proven pod and its traffic through a flood of goodbyes forged in its name', async () => {
  for (const state of ['draining', 'stopped'] as const) {
    await flood(nats.url, forged(state, [READY_1]), () => stillServed(30));
  }
  expect(warnings('says a proven pod is leaving').length).toBeGreaterThan(0);
});

it('keeps routing a proven pod\'s versions through a flood of heartbeats that drop them or say they failed to load', async () => {
  await flood(nats.url, forged('serving', []), () => stillServed(30));
  const failed: PodModel = { ...READY_1, state: 'UNAVAILABLE', provider: '', reason: 'forged: failed to load' };
  await flood(nats.url, forged('serving', [failed]), async () => {
    await stillServed(30);
    expect(router.membership.loadFailure('mnist', 1)).toBeUndefined();
    expect(router.membership.versionStates('mnist').flatMap((v) => v.reasons)).toEqual([]);
  });
  expect(warnings('says other than the proven pod').length).toBeGreaterThan(0);
});

it('routes no version to a proven pod that a forged heartbeat says it has ready', async () => {
  await flood(nats.url, forged('serving', [READY_1, { ...READY_1, version: 7 }]), async () => {
    const c = userClient(router.port);
    for (let i = 0; i < 30; i++) {
      expect(router.membership.candidates('mnist', 7)).toEqual([]);
      expect(router.membership.readyVersions('mnist')).toEqual(new Set([1]));
      // The router's own answer: no pod has the version.
      await expect(infer(c, '7')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
      await new Promise((r) => setTimeout(r, 20));
    }
    await stillServed(5);
  });
});

it('proves and routes a pod not yet proven through a flood of goodbyes and other addresses forged in its name, and logs its joining once', async () => {
  const log: string[] = [];
  let fresh: RouterService | undefined;
  try {
    // Ten of each every millisecond: a forger as fast as it can publish.
    await flood(nats.url, [forged('draining', [READY_1]), forged('serving', [READY_1], '127.0.0.1:1')], async () => {
      // A router started under the flood (restarted) knows no pod: pod-a has its proof to make.
      fresh = await startRouterService(testConfig(nats.url, {
        INFERMESH_REGISTRY_URL: `127.0.0.1:${registry.port}`,
        INFERMESH_ROUTER_MAX_COLD_WAITING: '0',
        ...pki.env(await pki.issue('router-2', { kind: 'router', name: 'router-2' }), { INFERMESH_TLS_CLIENT_AUTH: 'true' }),
      }), createLogger('router', 'info', {}, (l) => log.push(l)));
      const r = fresh;
      await waitFor('pod-a proven and routed at its address', () => r.membership.candidates('mnist', 1).some((p) => p.address === podA.address), 10_000, 10);
      // And it stays so while the flood goes on.
      for (let i = 0; i < 100; i++) {
        expect(r.membership.candidates('mnist', 1).map((p) => `${p.id}@${p.address}`)).toEqual([`pod-a@${podA.address}`]);
        await new Promise((res) => setTimeout(res, 10));
      }
    }, 1, 10);
  } finally {
    await fresh?.shutdown(5_000);
  }
  const said = (msg: string) => log.filter((l) => (JSON.parse(l) as { msg: string }).msg === msg);
  expect(said('pod joined')).toHaveLength(1);
  expect(said('pod left')).toEqual([]);
});

it('drops a pod that stops from the router\'s view as soon as it says goodbye', async () => {
  const podB = await startTestPod(nats.url, registry.port, pki.env(await pki.issue('pod-b', { kind: 'pod', name: 'pod-b' }), { INFERMESH_TLS_CLIENT_AUTH: 'true', INFERMESH_POD_NAME: 'pod-b' }));
  try {
    await waitFor('pod-b proven with mnist 1 ready', () => router.membership.candidates('mnist', 1).some((p) => p.id === 'pod-b'));
    const started = Date.now();
    const stopping = podB.shutdown(5_000);
    await waitFor('pod-b gone', () => !router.membership.all().some((p) => p.id === 'pod-b'), 10_000, 5);
    // Its goodbye, confirmed by its health check (NOT_SERVING), not the TTL (1.5 s) or a failed call.
    expect(Date.now() - started).toBeLessThan(1_000);
    await stopping;
    await stillServed(5);
  } finally {
    await podB.shutdown(5_000).catch(() => undefined);
  }
});

it('stops routing a version a rollout retires before the pod unloads it, and routes the new one once loaded', async () => {
  await pushOverTls(registry.port, clientTls);
  const rollouts = rolloutsClient(`127.0.0.1:${registry.port}`, { tls: { files: clientTls } });
  const call = (method: 'StartRollout' | 'PromoteRollout', req: object) => unary((cb) => (rollouts[method] as (r: object, cb: unknown) => void)(req, cb));
  const c = userClient(router.port);
  let failures = 0;
  let running = true;
  const load = (async () => {
    while (running) await infer(c).catch(() => failures++);
  })();
  try {
    await call('StartRollout', { model: 'mnist', version: 2, weight: 50, steps: [], automatic: false, analysis: {} });
    await waitFor('version 2 routed to pod-a', () => router.membership.candidates('mnist', 2).some((p) => p.id === 'pod-a'), 30_000, 10);
    const promoted = Date.now();
    await call('PromoteRollout', { model: 'mnist', reason: 'test' });
    await waitFor('version 1 no longer routed', () => router.membership.candidates('mnist', 1).length === 0, 10_000, 5);
    // Within the pod's INFERMESH_UNLOAD_GRACE_MS (2 s), while it still serves version 1.
    expect(Date.now() - promoted).toBeLessThan(2_000);
  } finally {
    running = false;
    await load;
    rollouts.close();
  }
  expect(failures).toBe(0);
});

it('believes heartbeats with TLS off, as before: a goodbye in a pod\'s name takes it out at once', async () => {
  const mesh = await startTestMesh({ INFERMESH_PLACEMENT: 'false' });
  const plain = await startRouterService(testConfig(mesh.nats.url, { INFERMESH_REGISTRY_URL: `127.0.0.1:${mesh.registry.port}`, INFERMESH_POD_TTL_MS: '60000' }), silentLogger);
  try {
    await mesh.push('mnist', 'mnist.onnx');
    const pod = await mesh.startPod({ INFERMESH_POD_NAME: 'pod-plain' });
    await waitReady(userClient(plain.port, grpc.credentials.createInsecure()), ['mnist']);
    const nc = await connectNats(testConfig(mesh.nats.url), 'forger', silentLogger);
    try {
      nc.publish(subjects.heartbeat, encodeHeartbeat(forged('serving', [READY_1, { ...READY_1, version: 7 }], pod.address, 'pod-plain')));
      await waitFor('version 7 believed', () => plain.membership.candidates('mnist', 7).length === 1, 5_000, 5);
      nc.publish(subjects.heartbeat, encodeHeartbeat(forged('draining', [], pod.address, 'pod-plain')));
      await waitFor('the pod dropped', () => plain.membership.all().length === 0, 5_000, 5);
    } finally {
      await nc.close();
    }
  } finally {
    await plain.shutdown(5_000);
    await mesh.close();
  }
});
