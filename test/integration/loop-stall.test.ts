// A registry and a router whose own event loop is held up for longer than the pods' TTL: the pods
// kept sending heartbeats from their own processes, so neither forgets them when its loop comes
// back (lib/listening-clock.ts); a pod that really stopped is still forgotten. And the rollout
// controller does not judge a window whose routers' reports are still unread after such a stall.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { ROOT, startService, type ServiceProcess } from '../../cli/local-mesh/service-process';
import { ListeningClock } from '../../lib/listening-clock';
import { silentLogger } from '../../lib/log';
import { emptyWindow, encodeWindowReport, windowSubject, type VersionWindow } from '../../lib/window-stats';
import { RolloutController } from '../../services/registry/rollout/rollout-controller';
import type { RouterService } from '../../services/router/router-service';
import { podProcessEnv, startTestMesh, type TestMesh } from '../helpers/mesh';
import { startTestNats } from '../helpers/nats';
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
      env: podProcessEnv(mesh, name, dir),
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
      // Long enough for the expiry timers, the heartbeats queued meanwhile, and a TTL after.
      await new Promise((r) => setTimeout(r, TTL_MS + 500));
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

describe('a loop held up across the end of a rollout window', () => {
  it('judges the window once, with the report that queued during the stall', async () => {
    const nats = await startTestNats();
    const controllerConn = await connect({ servers: nats.url });
    const routerConn = await connect({ servers: nats.url });
    const listening = new ListeningClock(100).start();
    const judged: { windowStart: number; requests: number }[] = [];
    const windowMs = 3_000;
    const controller = new RolloutController(controllerConn, {
      analysedModels: async () => ['canaried'],
      analyseWindow: async (_model, windowStart, windows) => {
        judged.push({ windowStart, requests: [...windows.values()].reduce((n, w) => n + w.requests, 0) });
      },
    }, windowMs, silentLogger, 200, listening);
    const report = (router: string, windowStart: number, requests: number) =>
      encodeWindowReport({ schema: 1, router, model: 'canaried', windowStart, windowMs, versions: [{ ...emptyWindow(1), requests } satisfies VersionWindow] });
    // Another router, in a process of its own: it publishes while this process's loop is held up.
    const other = spawn(process.execPath, ['-e', `
      const { connect } = require('@nats-io/transport-node');
      (async () => {
        const nc = await connect({ servers: process.argv[1] });
        process.stdout.write('ready\\n');
        process.stdin.once('data', (line) => setTimeout(async () => {
          nc.publish(process.argv[2], Buffer.from(String(line).trim(), 'base64'));
          await nc.flush();
          await nc.close();
        }, 300));
      })();
    `, nats.url, windowSubject('canaried')], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      controller.start();
      await new Promise<void>((resolve, reject) => {
        other.stdout!.once('data', () => resolve());
        other.once('exit', (code) => reject(new Error(`the other router exited (${code})`)));
      });
      // Early in a window: router-a's report is read at once.
      await waitFor('the start of a window', () => Date.now() % windowMs < 200, 10_000, 5);
      const windowStart = Date.now() - (Date.now() % windowMs);
      routerConn.publish(windowSubject('canaried'), report('router-a', windowStart, 3));
      await routerConn.flush();
      await new Promise((r) => setTimeout(r, 800));
      // router-b reports 300 ms into a stall that lasts past the window's end and its settling time.
      other.stdin!.write(`${Buffer.from(report('router-b', windowStart, 4)).toString('base64')}\n`);
      holdLoop(windowStart + windowMs + 1_000 - Date.now());
      await waitFor('the window judged', () => judged.length > 0, 10_000);
      await new Promise((r) => setTimeout(r, 2_000));
      expect(judged).toEqual([{ windowStart, requests: 7 }]);
    } finally {
      other.kill();
      controller.stop();
      listening.stop();
      await controllerConn.close();
      await routerConn.close();
      await nats.cleanup();
    }
  });
});
