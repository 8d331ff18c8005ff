// Pods that share one certificate (one Secret mounted by every replica), with a CA made in the
// test and mutual TLS: two real pods started with the same certificate files and
// INFERMESH_POD_IDENTITY=inference both serve through the router under their own names; a third
// that claims the shared identity with a certificate for another identity gets no traffic, one
// warning from the router, and says at its own start that its certificate does not carry it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { inferenceClient, unary } from '../../lib/grpc/client';
import { protos } from '../../lib/grpc/proto';
import type { InferenceClient } from '../../lib/grpc/types';
import type { ModelStatistics__Output } from '../../lib/grpc/generated/inference/ModelStatistics';
import { createLogger, silentLogger } from '../../lib/log';
import { loadTls, podIdentity, type TlsFiles } from '../../lib/tls';
import { heldOutDigits } from '../../tools/models/mnist-data';
import { startRouterService, type RouterService } from '../../services/router/router-service';
import type { RegistryService } from '../../services/registry/registry-service';
import { startInferenceService, type InferenceService } from '../../services/inference/inference-service';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startTestPki, type TestPki, pushOverTls } from '../helpers/pki';
import { startTestPod, startTestRegistry, testConfig } from '../helpers/services';
import { waitReady } from '../helpers/mesh';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const digit = heldOutDigits(1)[0]!;
const inferRequest = { model_name: 'mnist', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], contents: { fp32_contents: Array.from(digit.pixels) } }] };

let nats: NatsServerProcess & { cleanup(): Promise<void> };
let pki: TestPki;
let registry: RegistryService;
let podA: InferenceService;
let podB: InferenceService;
let impostor: InferenceService;
let router: RouterService;
/** The test's own certificate (a router's), for the services that ask for one. */
let clientTls: TlsFiles;
const routerLog: string[] = [];
/** Log lines of the impostor pod. */
const impostorLog: string[] = [];
let impostorDir: string;
const clients: grpc.Client[] = [];

function userClient(): InferenceClient {
  const c = new (protos().inference.GRPCInferenceService)(`127.0.0.1:${router.port}`, grpc.credentials.createSsl(Buffer.from(pki.ca.cert)), { 'grpc.use_local_subchannel_pool': 1 });
  clients.push(c);
  return c;
}

/** Successful inferences `pod` counted, asked over mutual TLS as the router would, expecting `identity`. */
async function successes(pod: InferenceService, identity: string): Promise<number> {
  const c = inferenceClient(pod.address, { tls: { files: clientTls, identity: podIdentity(identity) } });
  try {
    const res = await unary<{ model_stats: ModelStatistics__Output[] }>((cb) => c.ModelStatistics({ name: 'mnist', version: '' }, { deadline: Date.now() + 10_000 }, cb))
      // A pod that has not loaded mnist yet (NOT_FOUND) has served none of it.
      .catch((err: { code?: number }) => (err.code === 5 ? { model_stats: [] } : Promise.reject(err)));
    return res.model_stats.reduce((n, s) => n + Number(s.inference_stats?.success?.count ?? 0), 0);
  } finally {
    c.close();
  }
}

beforeAll(async () => {
  nats = await startTestNats();
  pki = await startTestPki();
  const common = { INFERMESH_TLS_CLIENT_AUTH: 'true' };
  registry = await startTestRegistry(nats.url, pki.env(await pki.issue('registry', { kind: 'registry', name: 'registry' }), common));
  clientTls = loadTls(testConfig(nats.url, pki.env(await pki.issue('test-client', { kind: 'router', name: 'test-client' }))), silentLogger)!;
  await pushOverTls(registry.port, clientTls);
  // One set of files for both pods, as one Secret mounted by every replica.
  const shared = await pki.issue('inference', { kind: 'pod', name: 'inference' });
  podA = await startTestPod(nats.url, registry.port, pki.env(shared, { ...common, INFERMESH_POD_NAME: 'inference-7f9c', INFERMESH_POD_IDENTITY: 'inference' }));
  podB = await startTestPod(nats.url, registry.port, pki.env(shared, { ...common, INFERMESH_POD_NAME: 'inference-b2d1', INFERMESH_POD_IDENTITY: 'inference' }));
  // Claims the shared identity; its certificate is another pod identity's, signed by the same CA.
  const other = await pki.issue('other', { kind: 'pod', name: 'other' });
  impostorDir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-pod-'));
  impostor = await startInferenceService(testConfig(nats.url, pki.env(other, { ...common, INFERMESH_REGISTRY_URL: `127.0.0.1:${registry.port}`, INFERMESH_MODEL_DIR: impostorDir, INFERMESH_POD_NAME: 'inference-evil', INFERMESH_POD_IDENTITY: 'inference' })), createLogger('inference', 'info', {}, (l) => impostorLog.push(l)));
  const routerFiles = await pki.issue('router', { kind: 'router', name: 'router-1' });
  router = await startRouterService(testConfig(nats.url, { INFERMESH_REGISTRY_URL: `127.0.0.1:${registry.port}`, ...pki.env(routerFiles, common) }), createLogger('router', 'info', {}, (l) => routerLog.push(l)));
  await waitReady(userClient(), ['mnist']);
  await Promise.all([podA.synced, podB.synced, impostor.synced]);
});

afterAll(async () => {
  for (const c of clients) c.close();
  clientTls?.close();
  await router?.shutdown(5_000);
  await Promise.all([podA?.shutdown(5_000), podB?.shutdown(5_000), impostor?.shutdown(5_000)]);
  await registry?.shutdown(5_000);
  await nats?.cleanup();
  if (impostorDir) fs.rmSync(impostorDir, { recursive: true, force: true });
  pki?.cleanup();
});

it('serves through both pods that share one certificate, under their own names, and through no pod claiming that identity with another certificate', async () => {
  const pod = (id: string) => router.membership.all().find((p) => p.id === id);
  await waitFor('both pods proved the shared identity', () => pod('inference-7f9c')?.verified && pod('inference-b2d1')?.verified);
  await waitFor('a warning about the impostor', () => routerLog.some((l) => l.includes('"warn"') && l.includes('inference-evil')));
  expect(pod('inference-7f9c')?.identity).toBe(podIdentity('inference'));
  expect(pod('inference-evil')?.verified).toBe(false);
  // A pod loads mnist after it has synced, and the router believes a proven pod's new version only
  // once the pod confirms it: until both are routed to, every call goes to the one that is.
  await waitFor('mnist ready on both pods, as the router sees them', () => router.membership.candidates('mnist', 1).length === 2);

  const before = [await successes(podA, 'inference'), await successes(podB, 'inference')];
  const c = userClient();
  for (let i = 0; i < 60; i++) {
    const res = await unary<{ outputs: { name: string }[] }>((cb) => c.ModelInfer(inferRequest, { deadline: Date.now() + 10_000 }, cb));
    expect(res.outputs.map((o) => o.name)).toEqual(['logits', 'probabilities']);
  }
  const after = [await successes(podA, 'inference'), await successes(podB, 'inference')];
  expect(after[0]! - before[0]!).toBeGreaterThan(0);
  expect(after[1]! - before[1]!).toBeGreaterThan(0);
  expect(after[0]! - before[0]! + after[1]! - before[1]!).toBeGreaterThanOrEqual(60);
  expect(await successes(impostor, 'other')).toBe(0);

  const warnings = routerLog.filter((l) => l.includes('"warn"') && l.includes('inference-evil'));
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toContain('spiffe://infermesh/pod/other');
  expect(warnings[0]).toContain(podIdentity('inference'));
  // The impostor said so itself at start.
  expect(impostorLog.filter((l) => l.includes('"warn"') && l.includes('does not carry the identity its heartbeats claim'))).toEqual([expect.stringContaining('spiffe://infermesh/pod/other')]);
});

it('warns nothing at the start of a pod whose certificate carries the shared identity it claims', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-pod-'));
  const lines: string[] = [];
  const env = { ...pki.env(await pki.issue('inference-c3e0', { kind: 'pod', name: 'inference' })), INFERMESH_REGISTRY_URL: `127.0.0.1:${registry.port}`, INFERMESH_MODEL_DIR: dir, INFERMESH_POD_NAME: 'inference-c3e0', INFERMESH_POD_IDENTITY: 'inference' };
  const pod = await startInferenceService(testConfig(nats.url, env), createLogger('inference', 'info', {}, (l) => lines.push(l)));
  try {
    expect(lines.filter((l) => l.includes('does not carry'))).toEqual([]);
  } finally {
    await pod.shutdown(5_000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
