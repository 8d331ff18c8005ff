// Heartbeats forged in a proven pod's name, over TLS with a CA made in the test: every pod holds the
// same pod NATS identity, so a compromised one can publish heartbeats for any other, with its
// address and identity. A real router, real pods and a real NATS: a flood of forged goodbyes, of
// empty version lists, of a load failure, or of a version the pod lacks, changes nothing the router
// routes on (it asks the pod, which answers over the connection that proved its identity); a pod
// that really stops still leaves the router's view at once, a version a rollout retires leaves its
// routing before the pod unloads it, and with TLS off heartbeats are believed as they come. Pods
// sign their heartbeats with their certificate's key: a heartbeat in a proven pod's name that its
// key did not sign, or a replay of one it did, sets no load figure and keeps no pod that died past
// the TTL; a pod whose certificate rotates stays routed; and what a holder of the pod's key (pods
// that share one certificate) signs is still asked of the pod.
import fs from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { rolloutsClient, unary } from '../../lib/grpc/client';
import { protos } from '../../lib/grpc/proto';
import type { InferenceClient } from '../../lib/grpc/types';
import { createLogger, silentLogger } from '../../lib/log';
import { decodeHeartbeat, encodeHeartbeat, SCHEMA_VERSION, subjects, type Heartbeat, type PodModel } from '../../lib/events';
import { HeartbeatSignatures, HeartbeatSigner } from '../../lib/heartbeat-signatures';
import { ClaimWarnings } from '../../lib/pod-claims';
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
/** pod-a's certificate and key: what a holder of it (a pod sharing its certificate) signs with. */
let podAKeyFile: string;
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
 * times, while `during` runs; each signed by `signer` when one is given (a holder of the key).
 */
async function flood(natsUrl: string, hb: Heartbeat | Heartbeat[], during: () => Promise<void>, everyMs = 10, perTick = 1, signer?: HeartbeatSigner): Promise<void> {
  const nc = await connectNats(testConfig(natsUrl), 'forger', silentLogger);
  const all = Array.isArray(hb) ? hb : [hb];
  const bytes = all.map(encodeHeartbeat);
  const publish = () => {
    for (let i = 0; i < perTick; i++) {
      all.forEach((h, j) => nc.publish(subjects.heartbeat, signer ? encodeHeartbeat(signer.sign(h)) : bytes[j]!));
    }
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
  const podAFiles = await pki.issue('pod-a', { kind: 'pod', name: 'pod-a' });
  podAKeyFile = podAFiles.keyFile;
  podA = await startTestPod(nats.url, registry.port, pki.env(podAFiles, { ...common, INFERMESH_POD_NAME: 'pod-a' }));
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

/** A forger holding pod-a's key, as pods that share one certificate each do: what it signs verifies. */
const keyHolder = () => new HeartbeatSigner(() => fs.readFileSync(podAKeyFile));

it('keeps a proven pod and its traffic through a flood of goodbyes forged in its name, signed or not', async () => {
  for (const state of ['draining', 'stopped'] as const) {
    await flood(nats.url, forged(state, [READY_1]), () => stillServed(30));
  }
  // Not signed: not taken at all, so not asked of the pod either.
  expect(warnings('is not signed').length).toBeGreaterThan(0);
  expect(warnings('says a proven pod is leaving')).toEqual([]);
  // Signed with the pod's own key: asked of the pod, which says it serves.
  await flood(nats.url, forged('draining', [READY_1]), () => stillServed(30), 10, 1, keyHolder());
  expect(warnings('says a proven pod is leaving').length).toBeGreaterThan(0);
});

it('keeps a proven pod where it is through a flood of heartbeats that move it to another name of its own address', async () => {
  // 127.1 is 127.0.0.1 by another name: the pod itself answers there, with the certificate it proved.
  const alias = `127.1:${podA.address.split(':').pop()}`;
  await flood(nats.url, forged('serving', [READY_1], alias), () => stillServed(30));
  expect(knownA()?.address).toBe(podA.address);
  expect(warnings('not signed with the key of the certificate there').length).toBeGreaterThan(0);
});

it('keeps routing a proven pod\'s versions through a flood of heartbeats that drop them or say they failed to load, signed or not', async () => {
  for (const signer of [undefined, keyHolder()]) {
    await flood(nats.url, forged('serving', []), () => stillServed(30), 10, 1, signer);
    const failed: PodModel = { ...READY_1, state: 'UNAVAILABLE', provider: '', reason: 'forged: failed to load' };
    await flood(nats.url, forged('serving', [failed]), async () => {
      await stillServed(30);
      expect(router.membership.loadFailure('mnist', 1)).toBeUndefined();
      expect(router.membership.versionStates('mnist').flatMap((v) => v.reasons)).toEqual([]);
    }, 10, 1, signer);
  }
  expect(warnings('says other than the proven pod').length).toBeGreaterThan(0);
});

it('takes no load figures from heartbeats in a proven pod\'s name that its key did not sign', async () => {
  const figures = () => knownA()!.byVersion.get('mnist\u00001');
  await flood(nats.url, forged('serving', [{ ...READY_1, requests: 987_654, inflight: 4_321 }]), async () => {
    for (let i = 0; i < 30; i++) {
      expect(figures()?.requests).not.toBe(987_654);
      expect(figures()?.inflight).not.toBe(4_321);
      await new Promise((r) => setTimeout(r, 20));
    }
    await stillServed(5);
  });
  expect(warnings('is not signed').length).toBeGreaterThan(0);
});

it('forgets a proven pod that died once the TTL passes, whatever is replayed or forged in its name', async () => {
  // A pod the test speaks for: a TLS server with pod-x's certificate, and heartbeats signed with its key.
  const files = await pki.issue('pod-x', { kind: 'pod', name: 'pod-x' });
  const server = http2.createSecureServer({ cert: fs.readFileSync(files.certFile), key: fs.readFileSync(files.keyFile) }, (_req, res) => res.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const signer = new HeartbeatSigner(() => fs.readFileSync(files.keyFile));
  const nc = await connectNats(testConfig(nats.url), 'pod-x', silentLogger);
  const own = { ...forged('serving', [], address, 'pod-x'), inflight: 1 };
  let last = signer.sign(own);
  const beat = setInterval(() => nc.publish(subjects.heartbeat, encodeHeartbeat((last = signer.sign(own)))), 100);
  const provenX = () => router.membership.all().find((p) => p.id === 'pod-x' && p.verified);
  try {
    await waitFor('pod-x proven', () => provenX() !== undefined, 10_000);
  } finally {
    // It dies: no goodbye, its address answers no more.
    clearInterval(beat);
    await nc.close();
    server.close();
  }
  // Its last heartbeat replayed, and heartbeats in its name its key did not sign, twenty times each of its own.
  const replayed = decodeHeartbeat(encodeHeartbeat(last));
  await flood(nats.url, [replayed, { ...own, inflight: 2 }], async () => {
    await waitFor('pod-x forgotten', () => provenX() === undefined, 10_000);
  });
  expect(warnings('a replay').length).toBeGreaterThan(0);
});

it('keeps routing a pod whose certificate rotates, which then signs with its new key, and takes nothing signed with the old one', async () => {
  const name = 'pod-r';
  const first = await pki.issue(name, { kind: 'pod', name });
  const oldKey = fs.readFileSync(first.keyFile);
  const podR = await startTestPod(nats.url, registry.port, pki.env(first, { INFERMESH_TLS_CLIENT_AUTH: 'true', INFERMESH_POD_NAME: name, INFERMESH_TLS_RELOAD_INTERVAL_MS: '100' }));
  const known = () => router.membership.all().find((p) => p.id === name);
  const nc = await connectNats(testConfig(nats.url), 'watcher', silentLogger);
  try {
    await waitFor('pod-r proven with mnist 1 ready', () => router.membership.candidates('mnist', 1).some((p) => p.id === name));
    const pod = known()!;
    // The new certificate, for the same identity, where the pod reads its files; a checker of the new key.
    const rotated = await pki.issue(name, { kind: 'pod', name });
    const newKey = new X509Certificate(fs.readFileSync(rotated.certFile)).publicKey;
    const check = new HeartbeatSignatures<object>({ heartbeatVerifiesPerSecond: 1_000, identityRetryMs: 60_000 }, new ClaimWarnings(silentLogger, 0), () => undefined);
    const checked = {};
    check.learn(checked, newKey);
    let signedWithNew = 0;
    nc.subscribe(subjects.heartbeat, {
      callback: (_e, m) => {
        const hb = decodeHeartbeat(m.data);
        if (hb.pod === name && hb.address === podR.address && check.admits(checked, hb)) signedWithNew++;
      },
    });
    // For twice the TTL after the pod signs with its new key, it stays the one known, proven and routed.
    await waitFor('pod-r signing with its new key', () => signedWithNew > 0, 10_000);
    const until = Date.now() + 3_000;
    while (Date.now() < until) {
      expect(known()).toBe(pod);
      expect(router.membership.candidates('mnist', 1).map((p) => p.id)).toContain(name);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(signedWithNew).toBeGreaterThan(5);
    // A heartbeat signed with the key the certificate had (a key that leaked, say) counts no more.
    const own = router.membership.all().find((p) => p.id === name)!;
    const stale = new HeartbeatSigner(() => oldKey, () => Date.now() + 60_000);
    await flood(nats.url, forged('serving', own.models.map((m) => ({ ...m, requests: 987_654 })), podR.address, name), async () => {
      for (let i = 0; i < 30; i++) {
        expect(known()!.models.some((m) => m.requests === 987_654)).toBe(false);
        await new Promise((r) => setTimeout(r, 20));
      }
    }, 10, 1, stale);
  } finally {
    await nc.close();
    await podR.shutdown(5_000);
  }
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
