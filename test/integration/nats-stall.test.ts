// A NATS server that hangs (SIGSTOP: its connections stay open, nothing is answered, as in a
// partition without a reset) for three pod TTLs, while the pods, the router and the registry all
// keep running. nats.js would notice only after two missed pings (20 to 30 s); the services' own
// probe (lib/nats.ts NatsLiveness) notices within a fraction of the TTL, so no one forgets a pod
// for a silence that was NATS's: the router keeps serving, placement moves no version, and a pod
// that really died meanwhile gets no traffic through the router's health checks. After SIGCONT
// everything converges: the dead pod is forgotten a TTL later, the live one stays.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { InferenceApi, type InfermeshError } from '../../client/index';
import { startService, type ServiceProcess } from '../../cli/local-mesh/service-process';
import { metadataBucket } from '../../lib/nats';
import { keys, type PlacementRecord } from '../../services/registry/records';
import type { RouterService } from '../../services/router/router-service';
import { podProcessEnv, startTestMesh, type TestMesh } from '../helpers/mesh';
import { modelPath } from '../helpers/models';
import { recentLogger, startTestRouter } from '../helpers/services';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

/** Over two JetStream request timeouts (5 s) in three TTLs: the registry's own NATS calls time out meanwhile. */
const TTL_MS = 2_000;
const STALL_MS = 3 * TTL_MS;

const digit = { name: 'input', datatype: 'FP32' as const, shape: [1, 784], data: new Float32Array(784).fill(0.1) };

describe('a NATS server that hangs for three pod TTLs', () => {
  let mesh: TestMesh;
  let router: RouterService;
  let api: InferenceApi;
  let watcher: NatsConnection;
  const routerLog = recentLogger('router', 200);
  const registryLog = recentLogger('registry', 200);
  const pods: ServiceProcess[] = [];
  const dirs: string[] = [];
  /** Every placement record of mnist written, as the bucket's watch delivered them. */
  const records: PlacementRecord[] = [];
  let stalled = false;

  const pauseNats = () => {
    process.kill(mesh.nats.child.pid!, 'SIGSTOP');
    stalled = true;
  };
  const resumeNats = () => {
    if (stalled) process.kill(mesh.nats.child.pid!, 'SIGCONT');
    stalled = false;
  };

  async function startPod(name: string): Promise<ServiceProcess> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `infermesh-${name}-`));
    dirs.push(dir);
    const pod = await startService('inference', { label: name, env: podProcessEnv(mesh, name, dir, { INFERMESH_MODEL_MEMORY_MB: '256' }) });
    pods.push(pod);
    return pod;
  }

  const routerPods = () => router.membership.all().map((p) => p.id).sort();
  const registryPods = () => mesh.registry.pods.list().map((p) => p.heartbeat.pod).sort();
  const placedOn = async () => ((await mesh.registryApi.model('mnist')).placement as { version: number; pods: string[] }[]).flatMap((p) => p.pods).sort();
  const dump = () => `router log:\n${routerLog.lines.join('\n')}\nregistry log:\n${registryLog.lines.join('\n')}`;

  /** Calls the router one after another until `until` resolves; every outcome, in order. */
  async function steadyLoad(until: Promise<unknown>): Promise<{ at: number; error?: string }[]> {
    let done = false;
    void until.finally(() => (done = true));
    const outcomes: { at: number; error?: string }[] = [];
    while (!done) {
      const at = Date.now();
      try {
        await api.infer('mnist', [digit], { timeoutMs: 3_000 });
        outcomes.push({ at });
      } catch (err) {
        outcomes.push({ at, error: `${(err as InfermeshError).grpcCode}: ${String(err)}` });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return outcomes;
  }

  beforeAll(async () => {
    mesh = await startTestMesh({
      INFERMESH_POD_TTL_MS: String(TTL_MS),
      INFERMESH_PLACEMENT_INTERVAL_MS: '200',
      // Leading throughout: no renewal of the lease falls within the stall.
      INFERMESH_PLACEMENT_LEASE_MS: '600000',
    }, registryLog.logger);
    router = await startTestRouter(mesh.nats.url, mesh.registry.port, { INFERMESH_POD_TTL_MS: String(TTL_MS), INFERMESH_HEALTH_CHECK_INTERVAL_MS: '300' }, routerLog.logger);
    api = new InferenceApi(`127.0.0.1:${router.port}`);
    await Promise.all(['stall-a', 'stall-b'].map(startPod));
    await mesh.push('mnist', 'mnist.onnx');
    watcher = await connect({ servers: mesh.nats.url });
    const kv = await metadataBucket(watcher, 1);
    const watch = await kv.watch({ key: keys.placement('mnist') });
    void (async () => {
      for await (const e of watch) if (e.operation === 'PUT') records.push(e.json<PlacementRecord>());
    })();
    // Placement puts its two minimum copies on the two pods, and the router sees both ready.
    await waitFor('mnist ready on both pods, as the router sees them', () => router.membership.candidates('mnist', 1).length === 2, 60_000);
    expect(await placedOn()).toEqual(['stall-a', 'stall-b']);
  });

  afterAll(async () => {
    resumeNats();
    api?.close();
    await watcher?.close();
    for (const p of pods) await p.stop().catch(() => undefined);
    await router?.shutdown(5_000);
    await mesh?.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('keeps serving, keeps every pod, moves no version; the registry answers UNAVAILABLE for what needs NATS', async () => {
    const before = records.length;
    pauseNats();
    const stall = new Promise((r) => setTimeout(r, STALL_MS));
    // The registry lists models from its bucket: NATS does not answer, which the caller may retry.
    const listed = mesh.registryApi.models().then(() => undefined, (e: unknown) => e as InfermeshError);
    const load = steadyLoad(stall);
    await stall;
    // Seen while NATS still hangs: both views kept both pods.
    const duringRouter = routerPods();
    const duringRegistry = registryPods();
    resumeNats();
    const outcomes = await load;
    const failed = outcomes.filter((o) => o.error);
    expect(failed.length === 0 ? 'every call answered' : `${failed.length} of ${outcomes.length} failed, first: ${failed[0]!.error}\n${dump()}`).toBe('every call answered');
    expect(outcomes.length).toBeGreaterThan(20);
    expect(duringRouter).toEqual(['stall-a', 'stall-b']);
    expect(duringRegistry).toEqual(['stall-a', 'stall-b']);
    const err = await listed;
    expect(err?.grpcCode).toBe(14);
    expect(String(err)).toMatch(/NATS is unreachable/);

    // After it: the pods still speak, and placement wrote nothing that took mnist off either.
    await new Promise((r) => setTimeout(r, 2 * TTL_MS));
    expect(routerPods()).toEqual(['stall-a', 'stall-b']);
    expect(registryPods()).toEqual(['stall-a', 'stall-b']);
    const written = records.slice(before).map((r) => r.versions.flatMap((v) => v.pods).sort().join());
    expect(written.filter((w) => w !== 'stall-a,stall-b')).toEqual([]);
    expect(await placedOn()).toEqual(['stall-a', 'stall-b']);
    expect(routerLog.lines.filter((l) => (JSON.parse(l) as { msg: string }).msg === 'pod left')).toEqual([]);
  });

  it('gives a pod that dies during the stall no traffic, and forgets it once NATS is back', async () => {
    pauseNats();
    const stall = new Promise((r) => setTimeout(r, STALL_MS));
    const b = pods.find((p) => p.name === 'stall-b')!;
    process.kill(b.pid, 'SIGKILL');
    // Its health checks fail: no traffic, though no heartbeat can say it is gone.
    await waitFor('the router to see the killed pod fail its health checks', () => router.membership.all().find((p) => p.id === 'stall-b')?.healthy === false, STALL_MS / 2, 20);
    const load = steadyLoad(stall);
    await stall;
    const duringRouter = routerPods();
    resumeNats();
    const outcomes = await load;
    const failed = outcomes.filter((o) => o.error);
    expect(failed.length === 0 ? 'every call answered' : `${failed.length} of ${outcomes.length} failed, first: ${failed[0]!.error}\n${dump()}`).toBe('every call answered');
    expect(outcomes.length).toBeGreaterThan(10);
    // Kept (unhealthy) while NATS hung: its silence could have been NATS's.
    expect(duringRouter).toEqual(['stall-a', 'stall-b']);

    // NATS back: a TTL later the dead pod is gone everywhere, the live one stays and serves.
    await waitFor('the router and the registry to forget the killed pod', () => routerPods().join() === 'stall-a' && registryPods().join() === 'stall-a', 4 * TTL_MS);
    await api.infer('mnist', [digit], { timeoutMs: 3_000 });
    expect(routerPods()).toEqual(['stall-a']);
  });
});
