// A rollout judges only traffic that was really split as its step says. A registry that restarts
// leaves a router's channel to it in reconnect backoff for seconds after it listens again: the
// router still reads the step the event announced, without waiting for its resync. And a window
// in which a router routed by another split than the step's counts neither as a pass nor as a
// failure: the canary never served its step's share in it.
import { RolloutApi } from '../../client/index';
import { connectNats, type NatsConnection } from '../../lib/nats';
import { silentLogger } from '../../lib/log';
import { encodeWindowReport, emptyWindow, record, windowSubject, type RoutedSplit, type VersionWindow } from '../../lib/window-stats';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { recentLogger, startTestRegistry, startTestRouter, testConfig } from '../helpers/services';
import { RegistryApi } from '../../client/index';
import { modelPath } from '../helpers/models';
import { sleep } from '../helpers/load';
import { waitFor } from '../helpers/wait';
import type { RegistryService } from '../../services/registry/registry-service';
import type { RouterService } from '../../services/router/router-service';

jest.setTimeout(120_000);

const WINDOW_MS = 500;

/** A version's window with `ok` requests served in 2 ms. */
function served(version: number, ok: number): VersionWindow {
  const w = emptyWindow(version);
  for (let i = 0; i < ok; i++) record(w, true, 2);
  return w;
}

describe('rollout steps and the routers that follow them', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  /** The registry the router reads (stopped and started again on its port). */
  let routerRegistry: RegistryService | undefined;
  /** Another replica, which takes the rollout commands while the first is down. */
  let commandRegistry: RegistryService;
  let router: RouterService | undefined;
  let registryApi: RegistryApi;
  let rollouts: RolloutApi;
  let nc: NatsConnection;
  const routerLog = recentLogger('router', 40, 'debug');

  beforeAll(async () => {
    nats = await startTestNats();
    commandRegistry = await startTestRegistry(nats.url, { INFERMESH_ANALYSIS_WINDOW_MS: String(WINDOW_MS) });
    registryApi = new RegistryApi(`127.0.0.1:${commandRegistry.port}`);
    rollouts = new RolloutApi(`127.0.0.1:${commandRegistry.port}`);
    nc = await connectNats(testConfig(nats.url), 'rollout-sync-test', silentLogger);
  });

  afterAll(async () => {
    registryApi?.close();
    rollouts?.close();
    await nc?.drain();
    await router?.shutdown(2_000);
    await routerRegistry?.shutdown(2_000);
    await commandRegistry?.shutdown(2_000);
    await nats?.cleanup();
  });

  it('a router reads a step announced while its channel to a restarted registry backs off, well before its resync', async () => {
    await registryApi.push('lagging', modelPath('fixtures/identity_fp32.onnx'));
    const canary = (await registryApi.push('lagging', modelPath('fixtures/identity_fp32.onnx'))).version;
    await rollouts.start('lagging', canary, { weight: 10, automatic: false });

    routerRegistry = await startTestRegistry(nats.url);
    const port = routerRegistry.port;
    // A resync far beyond the test: only the read of each event can bring the step.
    router = await startTestRouter(nats.url, port, { INFERMESH_REGISTRY_RESYNC_INTERVAL_MS: '600000' }, routerLog.logger);
    await router.synced;
    expect(router.traffic('lagging')).toEqual([{ version: 1, weight: 90 }, { version: canary, weight: 10 }]);

    // The router's registry goes; a step is taken on the other replica, and the router's read of
    // it is refused, again and again, while its channel backs off longer each time.
    await routerRegistry.shutdown(1_000);
    routerRegistry = undefined;
    await rollouts.setWeight('lagging', 25);
    await sleep(8_000);
    expect(router.traffic('lagging')).toEqual([{ version: 1, weight: 90 }, { version: canary, weight: 10 }]);

    // Back on its port, with the same store; the next step is announced at once.
    routerRegistry = await startTestRegistry(nats.url, { INFERMESH_REGISTRY_PORT: String(port) });
    const stepped = Date.now();
    await rollouts.setWeight('lagging', 50);
    await waitFor('the router to route by the 50% step', () => router!.traffic('lagging')?.some((t) => t.version === canary && t.weight === 50), 15_000, 50)
      .catch((err: Error) => {
        throw new Error(`${err.message}; it routes by ${JSON.stringify(router!.traffic('lagging'))}\nrouter's log:\n${routerLog.lines.join('\n')}`);
      });
    expect(Date.now() - stepped).toBeLessThan(15_000);
  });

  it('judges no window a router routed by another split than the step\'s, and notes it in the history', async () => {
    await registryApi.push('judged', modelPath('fixtures/identity_fp32.onnx'));
    const canary = (await registryApi.push('judged', modelPath('fixtures/identity_fp32.onnx'))).version;
    const revisionOf = async () => Number((await registryApi.models()).find((m) => m.name === 'judged')!.revision);
    const before = await revisionOf();
    const started = await rollouts.start('judged', canary, { weight: 10, steps: [10, 50], automatic: true, analysis: { minRequests: 5, windowsToAdvance: 5 } });
    const revision = await revisionOf();
    expect(started.traffic).toEqual([{ version: 1, weight: 90 }, { version: canary, weight: 10 }]);
    const step: RoutedSplit = { revision, traffic: started.traffic };
    const old: RoutedSplit = { revision: before, traffic: [{ version: 1, weight: 100 }] };

    /** Sends two routers' reports of the first window after now (once it is over) as routers do. */
    const reportWindow = async (second: RoutedSplit[]) => {
      const windowStart = (Math.floor(Date.now() / WINDOW_MS) + 1) * WINDOW_MS;
      await sleep(windowStart + WINDOW_MS - Date.now() + 20);
      const versions = [served(1, 90), served(canary, 10)];
      nc.publish(windowSubject('judged'), encodeWindowReport({ schema: 1, router: 'router-a', model: 'judged', windowStart, windowMs: WINDOW_MS, versions, routedBy: [step] }));
      nc.publish(windowSubject('judged'), encodeWindowReport({ schema: 1, router: 'router-b', model: 'judged', windowStart, windowMs: WINDOW_MS, versions, routedBy: second }));
      await nc.flush();
      return windowStart;
    };

    // router-b still routes by the split before the rollout: the canary never had its 10% there.
    await reportWindow([old]);
    const judged = await waitFor('the window judged', async () => {
      const s = await rollouts.status('judged');
      return s.rollout!.passes > 0 || s.history.some((h) => h.action === 'not_counted') ? s : undefined;
    }, 10_000, 50);
    expect(judged.rollout).toMatchObject({ passes: 0, fails: 0, phase: 'progressing' });
    const note = judged.history.find((h) => h.action === 'not_counted');
    expect(note?.reason).toBe(`window not counted: the step is v1 90%, v${canary} 10%, but 1 of 2 router reports routed otherwise: router-b by v1 100% (revision ${before})`);

    // router-b follows the step during a window: that one is not counted either, nor noted again.
    await reportWindow([old, step]);
    await sleep(WINDOW_MS);
    let s = await rollouts.status('judged');
    expect(s.rollout!.passes).toBe(0);
    expect(s.history.filter((h) => h.action === 'not_counted')).toHaveLength(1);

    // Both route by the step for a whole window: it counts.
    await reportWindow([step]);
    s = await waitFor('the window counted', async () => {
      const st = await rollouts.status('judged');
      return st.rollout!.passes === 1 ? st : undefined;
    }, 10_000, 50);
    expect(s.rollout!.fails).toBe(0);
  });
});

