// A registry and a router whose own event loop is held up for longer than the pods' TTL: the pods
// kept sending heartbeats from their own processes, so neither forgets them when its loop comes
// back (lib/listening-clock.ts); a pod that really stopped is still forgotten.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startService, type ServiceProcess } from '../../cli/local-mesh/service-process';
import type { RouterService } from '../../services/router/router-service';
import { startTestMesh, type TestMesh } from '../helpers/mesh';
import { recentLogger, startTestRouter } from '../helpers/services';
import { waitFor } from '../helpers/wait';

const TTL_MS = 1_500;

/** Holds this process's event loop for `ms`: no timer, socket or promise callback runs meanwhile. */
function holdLoop(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy: the stall a long GC pause or a throttled container causes
  }
}

describe('a loop held up past the pod TTL', () => {
  let mesh: TestMesh;
  let router: RouterService;
  const routerLog = recentLogger('router', 200);
  const pods: ServiceProcess[] = [];
  const dirs: string[] = [];

  async function startPod(name: string): Promise<ServiceProcess> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `infermesh-${name}-`));
    dirs.push(dir);
    const pod = await startService('inference', {
      label: name,
      env: {
        INFERMESH_NATS_URL: mesh.nats.url,
        INFERMESH_REGISTRY_URL: `127.0.0.1:${mesh.registry.port}`,
        INFERMESH_INFERENCE_PORT: '0',
        INFERMESH_LISTEN_HOST: '127.0.0.1',
        INFERMESH_MODEL_DIR: dir,
        INFERMESH_POD_NAME: name,
        INFERMESH_EXECUTION_PROVIDERS: 'cpu',
        INFERMESH_HEARTBEAT_INTERVAL_MS: '200',
      },
    });
    pods.push(pod);
    return pod;
  }

  beforeAll(async () => {
    mesh = await startTestMesh({ INFERMESH_POD_TTL_MS: String(TTL_MS) });
    router = await startTestRouter(mesh.nats.url, mesh.registry.port, { INFERMESH_POD_TTL_MS: String(TTL_MS) }, routerLog.logger);
    await Promise.all(['stall-a', 'stall-b'].map(startPod));
  });

  afterAll(async () => {
    for (const p of pods) await p.stop().catch(() => undefined);
    await router?.shutdown(5_000);
    await mesh?.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  const registryPods = () => mesh.registry.pods.list().map((p) => p.heartbeat.pod).sort();
  const routerPods = () => router.membership.all().map((p) => p.id).sort();
  const left = () => routerLog.lines.filter((l) => (JSON.parse(l) as { msg: string }).msg === 'pod left').map((l) => (JSON.parse(l) as { pod: string }).pod);

  it('forgets none of the pods that kept speaking, and still forgets one that stopped', async () => {
    await waitFor('both pods known to the registry and the router', () => registryPods().length === 2 && routerPods().length === 2);
    // Everything the registry's view held after each change: a pod missing once was forgotten.
    const seen: string[][] = [];
    const stopWatching = mesh.registry.pods.onChange((list) => seen.push(list.map((p) => p.heartbeat.pod).sort()));
    try {
      holdLoop(3 * TTL_MS);
      // Long enough for the expiry timers, the heartbeats queued meanwhile, and a few TTLs after.
      await new Promise((r) => setTimeout(r, 2 * TTL_MS));
      expect(seen.filter((list) => list.length < 2)).toEqual([]);
      expect(left()).toEqual([]);
      expect(registryPods()).toEqual(['stall-a', 'stall-b']);
      expect(routerPods()).toEqual(['stall-a', 'stall-b']);

      // A pod killed without a goodbye: both forget it once its heartbeats have been missing a TTL.
      const b = pods.find((p) => p.name === 'stall-b')!;
      process.kill(b.pid, 'SIGKILL');
      await waitFor('the registry and the router to forget the killed pod', () => registryPods().length === 1 && routerPods().length === 1, 20_000);
      expect(registryPods()).toEqual(['stall-a']);
      expect(left()).toEqual(['stall-b']);
    } finally {
      stopWatching();
    }
  });
});
