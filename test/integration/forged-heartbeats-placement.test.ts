// Heartbeats forged in a proven pod's name, with placement on and TLS with a CA made in the test:
// every pod holds the same pod NATS identity, so a compromised one can publish heartbeats for any
// other, with its address and identity. A real registry placing one copy of mnist on one of two
// real pods, a real router and a real NATS: a flood of forged heartbeats that drop the version, say
// its load failed, leave out the pod's memory budget, or say goodbye, moves nothing placement put
// on the pod (the registry asks the pod, over a connection that demands the identity it proved, and
// a proven pod's budget is the one it first reported), so the pod keeps the version loaded and
// requests keep succeeding; a pod that really stops still leaves placement at its goodbye, and its
// copy moves to the other pod well before the TTL. Pods sign their heartbeats: one its key did not
// sign sets no load figure, and neither it nor a replay of its own last heartbeat counts a pod that
// stopped again; what a holder of its key (pods sharing one certificate) signs is still asked of it.
// A pod that comes back where it was, with a renewed certificate or a clock that went back, counts again.
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { unary } from '../../lib/grpc/client';
import { protos } from '../../lib/grpc/proto';
import type { InferenceClient } from '../../lib/grpc/types';
import { createLogger, silentLogger } from '../../lib/log';
import { decodeHeartbeat, encodeHeartbeat, subjects, type Heartbeat, type PodModel } from '../../lib/events';
import { HeartbeatSigner } from '../../lib/heartbeat-signatures';
import { connectNats, metadataBucket, type KV, type NatsConnection } from '../../lib/nats';
import { loadTls, type TlsFiles } from '../../lib/tls';
import { keys, type PlacementRecord } from '../../services/registry/records';
import { heldOutDigits } from '../../tools/models/mnist-data';
import type { RouterService } from '../../services/router/router-service';
import type { RegistryService } from '../../services/registry/registry-service';
import type { InferenceService } from '../../services/inference/inference-service';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startTestPki, type TestPki, pushOverTls } from '../helpers/pki';
import { startTestPod, startTestRegistry, startTestRouter, testConfig } from '../helpers/services';
import { waitReady } from '../helpers/mesh';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const digit = heldOutDigits(1)[0]!;
const inferRequest = { model_name: 'mnist', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], contents: { fp32_contents: Array.from(digit.pixels) } }] };
const READY_1: PodModel = { name: 'mnist', version: 1, state: 'READY', provider: 'cpu' };
/**
 * The registry forgets a silent pod after this: longer than a test's floods, so only a goodbye it
 * believes (or a plan from a forged view) can take a pod out of placement within one.
 */
const REGISTRY_POD_TTL_MS = '4000';

let nats: NatsServerProcess & { cleanup(): Promise<void> };
let pki: TestPki;
let registry: RegistryService;
let router: RouterService;
let clientTls: TlsFiles;
let nc: NatsConnection;
let kv: KV;
const pods = new Map<string, InferenceService>();
/** Each pod's key file: what a holder of its certificate signs with. */
const keyFiles = new Map<string, string>();
/** The pod placement puts mnist 1 on, and the other. */
const holder = 'pod-b';
const other = 'pod-a';
/** Each pod's latest heartbeat of its own (from its address). */
const ownHeartbeats = new Map<string, Heartbeat>();
const registryLog: string[] = [];
const clients: grpc.Client[] = [];
/** The placement.changed events of mnist 1 published since the tests began. */
const placementEvents: { pods: string[]; removed: string[] }[] = [];

function userClient(port: number): InferenceClient {
  const c = new (protos().inference.GRPCInferenceService)(`127.0.0.1:${port}`, grpc.credentials.createSsl(Buffer.from(pki.ca.cert)), { 'grpc.use_local_subchannel_pool': 1 });
  clients.push(c);
  return c;
}

function infer(c: InferenceClient): Promise<{ outputs: { name: string }[] }> {
  return unary((cb) => c.ModelInfer({ ...inferRequest, model_version: '' }, { deadline: Date.now() + 10_000 }, cb));
}

/** The holder's own latest heartbeat with `change` made: what a forger in its name publishes. */
function forged(change: Partial<Heartbeat>): Heartbeat {
  const own = ownHeartbeats.get(holder)!;
  return { ...own, time: new Date().toISOString(), ...change };
}

/** `hb` without a signature, as a forger without the pod's key sends it. */
function unsigned(hb: Heartbeat): Heartbeat {
  const { boot: _b, seq: _s, sig: _g, ...rest } = hb;
  return rest;
}

/** A forger holding the holder's key, as pods that share one certificate each do: what it signs verifies. */
const keyHolder = () => new HeartbeatSigner(() => fs.readFileSync(keyFiles.get(holder)!));

/**
 * Publishes `hb` (each of them) every 10 ms (twenty to each of the pod's own) while `during` runs;
 * each signed by `signer` when one is given.
 */
async function flood(hb: Heartbeat | Heartbeat[], during: () => Promise<void>, signer?: HeartbeatSigner): Promise<void> {
  const forger = await connectNats(testConfig(nats.url), 'forger', silentLogger);
  const all = Array.isArray(hb) ? hb : [hb];
  const publish = () => {
    for (const h of all) forger.publish(subjects.heartbeat, encodeHeartbeat(signer ? signer.sign(h) : h));
  };
  const timer = setInterval(publish, 10);
  try {
    publish();
    await forger.flush();
    await during();
  } finally {
    clearInterval(timer);
    await forger.close();
  }
}

/** The pods mnist version 1 is placed on. */
async function placedOn(): Promise<string[]> {
  const rec = (await kv.get(keys.placement('mnist')))?.json<PlacementRecord>();
  return rec?.versions.find((v) => v.version === 1)?.pods ?? [];
}

/** Whether `pod` has mnist 1 loaded and ready, by its own repository. */
const loadedOn = (pod: string) => pods.get(pod)!.repo.snapshot().some((m) => m.name === 'mnist' && m.version === 1 && m.state === 'READY');

/**
 * For `ms`, infers through the router every 50 ms, checking each time that mnist 1 is still placed
 * on the holder alone and loaded there; then that no placement event moved it meanwhile.
 */
async function stillPlaced(ms: number): Promise<void> {
  const c = userClient(router.port);
  const events = placementEvents.length;
  const started = Date.now();
  while (Date.now() - started < ms) {
    expect(await placedOn()).toEqual([holder]);
    expect(loadedOn(holder)).toBe(true);
    expect((await infer(c)).outputs.map((o) => o.name)).toEqual(['logits', 'probabilities']);
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(placementEvents.slice(events)).toEqual([]);
}

const warnings = (text: string) => registryLog.filter((l) => l.includes('"warn"') && l.includes(text));

async function startPod(name: string): Promise<void> {
  const files = await pki.issue(name, { kind: 'pod', name });
  keyFiles.set(name, files.keyFile);
  // Unloads within 100 ms of placement taking its copy away: a wrong plan shows at once.
  pods.set(name, await startTestPod(nats.url, registry.port, pki.env(files, { INFERMESH_TLS_CLIENT_AUTH: 'true', INFERMESH_POD_NAME: name, INFERMESH_UNLOAD_GRACE_MS: '100' })));
}

beforeAll(async () => {
  nats = await startTestNats();
  pki = await startTestPki();
  // Placement on, one copy, planning every 200 ms with nothing held back by residency or
  // idleness: a plan from a forged view moves the copy at once. Every warning is logged.
  registry = await startTestRegistry(nats.url, pki.env(await pki.issue('registry', { kind: 'registry', name: 'registry' }), {
    INFERMESH_TLS_CLIENT_AUTH: 'true',
    INFERMESH_PLACEMENT_MIN_COPIES: '1',
    INFERMESH_PLACEMENT_INTERVAL_MS: '200',
    INFERMESH_PLACEMENT_MIN_RESIDENCY_MS: '0',
    INFERMESH_PLACEMENT_EVICT_IDLE_MS: '0',
    INFERMESH_POD_TTL_MS: REGISTRY_POD_TTL_MS,
    INFERMESH_REFUSED_CLAIM_LOG_INTERVAL_MS: '0',
  }), createLogger('registry', 'info', {}, (l) => registryLog.push(l)));
  clientTls = loadTls(testConfig(nats.url, pki.env(await pki.issue('test-client', { kind: 'router', name: 'test-client' }))), silentLogger)!;
  await pushOverTls(registry.port, clientTls);
  nc = await connectNats(testConfig(nats.url), 'watcher', silentLogger);
  kv = await metadataBucket(nc, 1);
  nc.subscribe(subjects.eventsAll, {
    callback: (_e, m) => {
      const e = m.json<{ type: string; model: string; version: number; pods: string[]; removed: string[] }>();
      if (e.type === 'placement.changed' && e.model === 'mnist' && e.version === 1) placementEvents.push({ pods: e.pods, removed: e.removed });
    },
  });
  nc.subscribe(subjects.heartbeat, {
    callback: (_e, m) => {
      const hb = decodeHeartbeat(m.data);
      if (pods.get(hb.pod)?.address === hb.address && hb.state === 'serving' && hb.memory) ownHeartbeats.set(hb.pod, hb);
    },
  });
  // pod-b alone first, so it holds the copy; then pod-a, which a copy moving off pod-b goes to (the
  // planner breaks ties by name).
  await startPod(holder);
  router = await startTestRouter(nats.url, registry.port, pki.env(await pki.issue('router', { kind: 'router', name: 'router-1' }), { INFERMESH_TLS_CLIENT_AUTH: 'true' }));
  await waitReady(userClient(router.port), ['mnist'], 60_000);
  await waitFor('mnist 1 placed on pod-b and loaded there', async () => (await placedOn()).join() === holder && loadedOn(holder)
    && ownHeartbeats.get(holder)?.models.some((m) => m.name === 'mnist' && m.state === 'READY'), 30_000);
  await startPod(other);
  await waitFor('pod-a heard', () => ownHeartbeats.has(other));
  // A few of its heartbeats, for the registry to prove its address and count it.
  await new Promise((r) => setTimeout(r, 1_000));
  expect(await placedOn()).toEqual([holder]);
});

afterAll(async () => {
  for (const c of clients) c.close();
  clientTls?.close();
  await router?.shutdown(5_000);
  for (const pod of pods.values()) await pod.shutdown(5_000).catch(() => undefined);
  await registry?.shutdown(5_000);
  await nc?.close();
  await nats?.cleanup();
  pki?.cleanup();
});

it('keeps a proven pod\'s version placed and loaded through a flood of heartbeats that drop it, signed or not', async () => {
  // As a forger would send it: no version, no memory budget.
  await flood(unsigned(forged({ models: [], memory: undefined })), () => stillPlaced(1_000));
  expect(warnings('is not signed').length).toBeGreaterThan(0);
  expect(warnings('says other than the proven pod')).toEqual([]);
  // Signed with the pod's own key: asked of the pod, whose answer applies.
  await flood(forged({ models: [], memory: undefined }), () => stillPlaced(1_000), keyHolder());
  expect(warnings('says other than the proven pod').length).toBeGreaterThan(0);
});

it('takes no load figures from heartbeats in a proven pod\'s name that its key did not sign', async () => {
  const counted = () => registry.placementPods!.list().find((p) => p.heartbeat.pod === holder)!.heartbeat;
  const own = forged({});
  await flood([unsigned({ ...own, models: own.models.map((m) => ({ ...m, requests: 987_654 })) }), { ...own, inflight: 4_321 }], async () => {
    for (let i = 0; i < 30; i++) {
      expect(counted().models.some((m) => m.requests === 987_654)).toBe(false);
      expect(counted().inflight).not.toBe(4_321);
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  // The one altered after it was signed: its sequence is its own heartbeat's, so it reads as a replay.
  expect(warnings('a replay').length).toBeGreaterThan(0);
});

it('keeps a proven pod\'s version placed and loaded through a flood of heartbeats that say its load failed', async () => {
  await flood(forged({ models: [{ ...READY_1, state: 'UNAVAILABLE', provider: '', reason: 'forged: failed to load' }] }), () => stillPlaced(2_000));
});

it('keeps a proven pod\'s version placed and loaded through a flood of heartbeats without its memory budget', async () => {
  const { memory: _budget, ...without } = forged({});
  await flood(without, () => stillPlaced(2_000));
  await flood(forged({ memory: { budgetBytes: 1, usedBytes: 0, rssBytes: 0 } }), () => stillPlaced(2_000));
});

it('keeps a proven pod\'s version placed and loaded through a flood of goodbyes forged in its name, signed or not', async () => {
  for (const state of ['draining', 'stopped'] as const) await flood(unsigned(forged({ state })), () => stillPlaced(1_000));
  // Nor when it claims another identity, which the pod's address never proved: nothing to check it with.
  await flood(unsigned(forged({ state: 'draining', identity: 'someone-else' })), () => stillPlaced(1_000));
  expect(warnings('says a proven pod is leaving')).toEqual([]);
  await flood(forged({ state: 'draining' }), () => stillPlaced(1_000), keyHolder());
  expect(warnings('says a proven pod is leaving').length).toBeGreaterThan(0);
});

it('moves the copy of a pod that stops at its goodbye, well before the TTL', async () => {
  const started = Date.now();
  const stopping = pods.get(holder)!.shutdown(5_000);
  await waitFor('mnist 1 placed on the other pod', async () => (await placedOn()).join() === other, 10_000, 10);
  expect(Date.now() - started).toBeLessThan(Number(REGISTRY_POD_TTL_MS) / 2);
  await stopping;
  await waitFor('mnist 1 loaded on the other pod', () => loadedOn(other), 30_000);
  // Its last heartbeat replayed, and heartbeats in its name its key did not sign, count it no more:
  // its proof left with it, and its address, where nothing listens, proves nothing again.
  const last = ownHeartbeats.get(holder)!;
  await flood([last, unsigned(forged({}))], async () => {
    for (let i = 0; i < 30; i++) {
      expect(registry.placementPods!.list().map((p) => p.heartbeat.pod)).toEqual([other]);
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  expect(warnings('address does not prove the identity it claims').length).toBeGreaterThan(0);
});

it('counts again a pod that restarts at its address with a new certificate', async () => {
  // The holder stopped (above); it comes back where it was, its certificate renewed meanwhile: a
  // new process, signing with a key placement has not seen.
  const port = pods.get(holder)!.address.split(':').pop()!;
  const files = await pki.issue(`${holder}-renewed`, { kind: 'pod', name: holder });
  keyFiles.set(holder, files.keyFile);
  pods.set(holder, await startTestPod(nats.url, registry.port, pki.env(files, { INFERMESH_TLS_CLIENT_AUTH: 'true', INFERMESH_POD_NAME: holder, INFERMESH_INFERENCE_PORT: port, INFERMESH_UNLOAD_GRACE_MS: '100' })));
  expect(pods.get(holder)!.address).toBe(`127.0.0.1:${port}`);
  await waitFor('the restarted pod counted by placement', () => registry.placementPods!.list().some((p) => p.heartbeat.pod === holder), 15_000);
});

it('counts again a pod that restarts at its address after its clock went back', async () => {
  const address = pods.get(holder)!.address;
  const port = address.split(':').pop()!;
  const files = await pki.issue(`${holder}-clock`, { kind: 'pod', name: holder });
  keyFiles.set(holder, files.keyFile);
  const env = pki.env(files, { INFERMESH_TLS_CLIENT_AUTH: 'true', INFERMESH_POD_NAME: holder, INFERMESH_INFERENCE_PORT: port, INFERMESH_UNLOAD_GRACE_MS: '100' });
  await pods.get(holder)!.shutdown(5_000);
  await waitFor('the holder gone from placement', () => !registry.placementPods!.list().some((p) => p.heartbeat.pod === holder), 10_000);
  // Its next process runs on a clock an hour ahead (the signer reads the clock it was made with)...
  const realNow = Date.now;
  const ahead = Date.now() + 3_600_000;
  Date.now = () => realNow() + 3_600_000;
  try {
    pods.set(holder, await startTestPod(nats.url, registry.port, env));
  } finally {
    Date.now = realNow;
  }
  await waitFor('the fast process counted by placement', () => registry.placementPods!.list().some((p) => p.heartbeat.pod === holder && p.heartbeat.seq! >= ahead), 15_000);
  // ...and stops; the clock is put right, and the pod starts again where it was.
  await pods.get(holder)!.shutdown(5_000);
  await waitFor('the holder gone from placement', () => !registry.placementPods!.list().some((p) => p.heartbeat.pod === holder), 10_000);
  pods.set(holder, await startTestPod(nats.url, registry.port, env));
  await waitFor('the restarted pod counted by placement', () => registry.placementPods!.list().some((p) => p.heartbeat.pod === holder && p.heartbeat.seq! < ahead), 15_000);
});
