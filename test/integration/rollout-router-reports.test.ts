// What routers report about their windows must never take a rollout out of its operator's hands.
// A window some router routed by another split is not counted and noted in the rollout's history;
// that note once quoted router names and splits whole, so three reports with names of 349 KB took
// the model's record to a few hundred bytes under NATS's 1 MiB max_payload, and every write after
// it (rollback, promote, pause by hand) failed INTERNAL: the canary kept its weight for good. And a
// router whose reports stay off the step held a rollout for ever without a word.
import { RegistryApi, RolloutApi } from '../../client/index';
import { artifactStore, connectNats, jetStreamOf, metadataBucket, type NatsConnection } from '../../lib/nats';
import { silentLogger } from '../../lib/log';
import { decodeEvent, subjects } from '../../lib/events';
import { encodeWindowReport, emptyWindow, MAX_WINDOW_VERSIONS, record, windowSubject, type ReportRouting, type RoutedSplit, type VersionWindow } from '../../lib/window-stats';
import { keys, type ModelRecord } from '../../services/registry/records';
import { Registry } from '../../services/registry/registry';
import { Rollouts } from '../../services/registry/rollout/rollouts';
import { RolloutController } from '../../services/registry/rollout/rollout-controller';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startTestRegistry, testConfig } from '../helpers/services';
import { modelPath } from '../helpers/models';
import { sleep } from '../helpers/load';
import { waitFor } from '../helpers/wait';
import type { RegistryService } from '../../services/registry/registry-service';

jest.setTimeout(120_000);

const WINDOW_MS = 500;
const MAX_UNCOUNTED = 3;
/** NATS's default max_payload. */
const MAX_PAYLOAD = 1024 * 1024;

function served(version: number, ok: number): VersionWindow {
  const w = emptyWindow(version);
  for (let i = 0; i < ok; i++) record(w, true, 2);
  return w;
}

describe('window reports and the rollout record', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let registry: RegistryService;
  let registryApi: RegistryApi;
  let rollouts: RolloutApi;
  let nc: NatsConnection;

  beforeAll(async () => {
    nats = await startTestNats();
    registry = await startTestRegistry(nats.url, { INFERMESH_ANALYSIS_WINDOW_MS: String(WINDOW_MS), INFERMESH_ROLLOUT_MAX_UNCOUNTED_WINDOWS: String(MAX_UNCOUNTED) });
    registryApi = new RegistryApi(`127.0.0.1:${registry.port}`);
    rollouts = new RolloutApi(`127.0.0.1:${registry.port}`);
    nc = await connectNats(testConfig(nats.url), 'rollout-router-reports-test', silentLogger);
  });

  afterAll(async () => {
    registryApi?.close();
    rollouts?.close();
    await nc?.drain();
    await registry?.shutdown(2_000);
    await nats?.cleanup();
  });

  /** Pushes two versions of `model` and starts an automatic canary of the second at 10%. */
  async function canaryOf(model: string): Promise<number> {
    await registryApi.push(model, modelPath('fixtures/identity_fp32.onnx'));
    const canary = (await registryApi.push(model, modelPath('fixtures/identity_fp32.onnx'))).version;
    await rollouts.start(model, canary, { weight: 10, steps: [10, 50], automatic: true, analysis: { minRequests: 5, windowsToAdvance: 100 } });
    return canary;
  }

  /** Sends `reports` (router name and the splits it says it routed by) for the first window after now, once it is over. */
  async function reportWindow(model: string, canary: number, reports: { router: string; routedBy: RoutedSplit[] }[]): Promise<void> {
    const windowStart = (Math.floor(Date.now() / WINDOW_MS) + 1) * WINDOW_MS;
    await sleep(windowStart + WINDOW_MS - Date.now() + 20);
    const versions = [served(1, 90), served(canary, 10)];
    for (const r of reports) nc.publish(windowSubject(model), encodeWindowReport({ schema: 1, model, windowStart, windowMs: WINDOW_MS, versions, ...r }));
    await nc.flush();
  }

  const recordBytes = async (model: string) => (await (await metadataBucket(nc, 1)).get(keys.model(model)))!.value.length;

  /** Another replica's Rollouts over the same store, as the registry's controller calls it. */
  async function replicaRollouts(): Promise<Rollouts> {
    return new Rollouts(new Registry({
      kv: await metadataBucket(nc, 1), artifacts: await artifactStore(nc, 1), js: jetStreamOf(nc).js, log: silentLogger,
      maxArtifactBytes: 1 << 30, maxWarmupConfigBytes: 256 * 1024, maxWarmupRuns: 100, maxWarmupElements: 1 << 20,
    }));
  }

  it('keeps a window not counted to a short note whatever the routers\' names and splits, so the rollout can still be rolled back', async () => {
    const canary = await canaryOf('bloat');
    const before = await recordBytes('bloat');
    // Names of 349 KB and eight splits of sixteen versions each, none the step's, on the direct path
    // to the analysis (the registry's decoder refuses such names; the note must not depend on it).
    const split = (i: number): RoutedSplit => ({ revision: 1_000_000 + i, traffic: Array.from({ length: 16 }, (_, v) => ({ version: 1_000_000 + v, weight: 6 })) });
    const routing = [0, 1, 2, 3].map((i) => ({ router: `r${i}`.padEnd(349_000, 'x'), routedBy: Array.from({ length: 8 }, (_, s) => split(s)) }));
    const replica = await replicaRollouts();
    await replica.analyseWindow('bloat', Date.now() + 60_000, new Map([[1, served(1, 90)], [canary, served(canary, 10)]]), routing);

    const s = await rollouts.status('bloat');
    const note = s.history.find((h) => h.action === 'not_counted');
    expect(note?.reason).toMatch(/^window not counted: the step is v1 90%, v\d+ 10%, but 4 of 4 router reports routed otherwise: r0x+… by /);
    expect(note!.reason.length).toBeLessThanOrEqual(512);
    expect((await recordBytes('bloat')) - before).toBeLessThan(2_048);
    await rollouts.rollback('bloat', 'the routers are wrong');
    expect((await rollouts.status('bloat')).rollout?.phase).toBe('rolled_back');
  });

  describe('what the controller keeps of the reports', () => {
    const MAX_ROUTERS = 3;
    let controller: RolloutController;
    const analysed: { model: string; windowStart: number; requests: number[]; routers: string[]; incomplete?: string }[] = [];
    const closed: { model: string; windowStart: number }[] = [];
    let listed = false;

    beforeAll(async () => {
      controller = new RolloutController(nc, {
        knownModels: async () => {
          listed = true;
          return ['held', 'flooded'];
        },
        analysedModels: async () => ['held', 'flooded'],
        analyseWindow: async (model, windowStart, windows, routing: ReportRouting[], incomplete?: string) => {
          analysed.push({ model, windowStart, requests: [...windows.values()].map((w) => w.requests), routers: routing.map((r) => r.router), incomplete });
        },
      }, WINDOW_MS, silentLogger, undefined, undefined, MAX_ROUTERS);
      controller.onClosedWindow((model, windowStart) => closed.push({ model, windowStart }));
      controller.start();
      await waitFor('the models listed', () => listed, 5_000, 10);
      await sleep(10);
    });

    afterAll(() => controller?.stop());

    /** Publishes one report per router name for `model`'s window now (requests to version 1 each). */
    async function send(model: string, routers: string[], windowStart = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS): Promise<number> {
      for (const router of routers) nc.publish(windowSubject(model), encodeWindowReport({ schema: 1, router, model, windowStart, windowMs: WINDOW_MS, versions: [served(1, 10)] }));
      await nc.flush();
      return windowStart;
    }

    it('counts a router\'s report once however often it comes, and keeps no window of a model the registry does not hold', async () => {
      const start = await send('held', ['router-a', 'router-a', 'router-b', 'router-a']);
      await send('stranger', ['router-a'], start);
      const w = await waitFor('the window judged', () => analysed.find((a) => a.model === 'held' && a.windowStart === start), 10_000, 20);
      expect(w).toEqual({ model: 'held', windowStart: start, requests: [20], routers: ['router-a', 'router-b'], incomplete: undefined });
      // Windows close together: the stranger's would have closed with it.
      expect(closed.filter((c) => c.model === 'stranger')).toEqual([]);

      // A report after its window was judged is dropped, not judged again on its own.
      await send('held', ['router-c'], start);
      await sleep(2 * WINDOW_MS);
      expect(closed.filter((c) => c.model === 'held' && c.windowStart === start)).toHaveLength(1);
      expect(analysed.filter((a) => a.model === 'held' && a.windowStart === start)).toHaveLength(1);
    });

    it('merges no more than INFERMESH_ROLLOUT_MAX_ROUTER_REPORTS routers a window, and says the window is incomplete', async () => {
      const start = await send('flooded', ['r1', 'r2', 'r3', 'r4', 'r5']);
      const w = await waitFor('the window judged', () => analysed.find((a) => a.model === 'flooded' && a.windowStart === start), 10_000, 20);
      expect(w.routers).toEqual(['r1', 'r2', 'r3']);
      expect(w.requests).toEqual([30]);
      expect(w.incomplete).toBe(`window not counted: 2 more router reports came than INFERMESH_ROLLOUT_MAX_ROUTER_REPORTS (${MAX_ROUTERS}) allows, and were left out`);
    });

    it('keeps only windows of the routers\' grid: one off it would be judged on its sender\'s report alone', async () => {
      const start = await send('held', ['router-a']);
      // Each start a millisecond on would be a window of its own, every one of them counted after
      // the real one: one router passing a rollout's windows on its own numbers, as many as it sends.
      for (const off of [1, 2, 3]) await send('held', ['router-x'], start + off);
      nc.publish(windowSubject('held'), encodeWindowReport({ schema: 1, router: 'router-y', model: 'held', windowStart: start, windowMs: WINDOW_MS + 1, versions: [served(1, 10)] }));
      await nc.flush();
      await waitFor('the window judged', () => analysed.find((a) => a.model === 'held' && a.windowStart === start), 10_000, 20);
      await sleep(2 * WINDOW_MS);
      expect(analysed.filter((a) => a.model === 'held' && a.windowStart >= start && a.windowStart < start + WINDOW_MS))
        .toEqual([{ model: 'held', windowStart: start, requests: [10], routers: ['router-a'], incomplete: undefined }]);
    });

    it('keeps no more versions a window than its splits may list, and says the window is incomplete', async () => {
      // A report naming every version a NATS message holds (thousands) would be kept whole, each
      // as a window of its own in every replica, none read by the analysis.
      const start = await send('flooded', ['router-a']);
      const many = Array.from({ length: MAX_WINDOW_VERSIONS + 1 }, (_, i) => served(i + 1, 1));
      nc.publish(windowSubject('flooded'), encodeWindowReport({ schema: 1, router: 'router-v', model: 'flooded', windowStart: start, windowMs: WINDOW_MS, versions: many }));
      await nc.flush();
      const w = await waitFor('the window judged', () => analysed.find((a) => a.model === 'flooded' && a.windowStart === start), 10_000, 20);
      expect(w).toEqual({
        model: 'flooded', windowStart: start, requests: [10], routers: ['router-a'],
        incomplete: `window not counted: 1 router reports would have taken it past ${MAX_WINDOW_VERSIONS} versions, more than its splits may list, and were left out`,
      });
    });

    it('keeps no window that has not begun', async () => {
      await send('held', ['router-a'], (Math.floor(Date.now() / WINDOW_MS) + 7_200) * WINDOW_MS);
      await sleep(50);
      expect(controller.openWindows).toBe(0);
    });
  });

  it('keeps no window that was over before the controller listened, though no tick has closed one yet', async () => {
    // Windows of a minute: no tick comes within the test, as none does while the registry catches up.
    const fresh = new RolloutController(nc, { knownModels: async () => ['held'], analysedModels: async () => [], analyseWindow: async () => undefined }, 60_000, silentLogger);
    fresh.start();
    try {
      const now = Math.floor(Date.now() / 60_000) * 60_000;
      for (const back of [2, 3, 1_000]) nc.publish(windowSubject('held'), encodeWindowReport({ schema: 1, router: 'router-a', model: 'held', windowStart: now - back * 60_000, windowMs: 60_000, versions: [served(1, 1)] }));
      nc.publish(windowSubject('held'), encodeWindowReport({ schema: 1, router: 'router-a', model: 'held', windowStart: now, windowMs: 60_000, versions: [served(1, 1)] }));
      await nc.flush();
      await waitFor('the window now kept', () => fresh.openWindows > 0, 5_000, 10);
      expect(fresh.openWindows).toBe(1);
    } finally {
      fresh.stop();
    }
  });

  it('does not count a window the controller could not take every router\'s report of', async () => {
    const canary = await canaryOf('partial');
    const revision = Number((await registryApi.models()).find((m) => m.name === 'partial')!.revision);
    const step: RoutedSplit = { revision, traffic: [{ version: 1, weight: 90 }, { version: canary, weight: 10 }] };
    const why = 'window not counted: 2 more router reports came than INFERMESH_ROLLOUT_MAX_ROUTER_REPORTS (3) allows, and were left out';
    const replica = await replicaRollouts();
    await replica.analyseWindow('partial', Date.now() + 60_000, new Map([[1, served(1, 90)], [canary, served(canary, 10)]]), [{ router: 'router-a', routedBy: [step] }], why);
    const s = await rollouts.status('partial');
    expect(s.rollout).toMatchObject({ phase: 'progressing', passes: 0 });
    expect(s.history.at(-1)).toMatchObject({ action: 'not_counted', reason: why });
  });

  it('cuts a history line stored before lines were bounded, so commands on a record near max_payload still work', async () => {
    await canaryOf('bloated');
    // The record as a not_counted note of three 349 KB names left it: a few hundred bytes under max_payload.
    const kv = await metadataBucket(nc, 1);
    const entry = await kv.get(keys.model('bloated'));
    const m = JSON.parse(new TextDecoder().decode(entry!.value)) as ModelRecord;
    const note = { time: new Date().toISOString(), action: 'not_counted' as const, stable: 1, canary: 2, weight: 10, reason: '' };
    const bare = new TextEncoder().encode(JSON.stringify({ ...m, rolloutHistory: [...(m.rolloutHistory ?? []), note] })).length;
    note.reason = 'window not counted: '.padEnd(MAX_PAYLOAD - 400 - bare, 'x');
    await kv.update(keys.model('bloated'), JSON.stringify({ ...m, rolloutHistory: [...(m.rolloutHistory ?? []), note] }), entry!.revision);
    expect(await recordBytes('bloated')).toBeGreaterThan(MAX_PAYLOAD - 500);

    await rollouts.pause('bloated', 'looking at it');
    await rollouts.resume('bloated');
    await rollouts.promote('bloated');
    expect(await recordBytes('bloated')).toBeLessThan(64 * 1024);
    const s = await rollouts.status('bloated');
    expect(s.rollout?.phase).toBe('promoted');
    expect(s.history.find((h) => h.action === 'not_counted')!.reason.length).toBeLessThanOrEqual(1024);
  });

  it('pauses a rollout after INFERMESH_ROLLOUT_MAX_UNCOUNTED_WINDOWS windows in a row not counted, naming the router, until it is resumed', async () => {
    const canary = await canaryOf('stalled');
    const revision = Number((await registryApi.models()).find((m) => m.name === 'stalled')!.revision);
    const step: RoutedSplit = { revision, traffic: [{ version: 1, weight: 90 }, { version: canary, weight: 10 }] };
    const stale: RoutedSplit = { revision: revision - 1, traffic: [{ version: 1, weight: 100 }] };
    const changes: { action: string; reason: string; principal?: string }[] = [];
    const sub = nc.subscribe(subjects.event('stalled', 'rollout.changed'), {
      callback: (_err, msg) => {
        const e = decodeEvent(msg.data);
        if (e.type === 'rollout.changed') changes.push({ action: e.action, reason: e.reason, principal: e.principal });
      },
    });
    try {
      // router-b never follows the step: each window is not counted, and the third pauses the rollout.
      for (let i = 0; i < MAX_UNCOUNTED; i++) {
        expect((await rollouts.status('stalled')).rollout?.phase).toBe('progressing');
        await reportWindow('stalled', canary, [{ router: 'router-a', routedBy: [step] }, { router: 'router-b', routedBy: [stale] }]);
      }
      const paused = await waitFor('the rollout paused', async () => {
        const s = await rollouts.status('stalled');
        return s.rollout?.phase === 'paused' ? s : undefined;
      }, 10_000, 50);
      expect(paused.rollout!.reason).toBe(`paused: ${MAX_UNCOUNTED} windows in a row were not counted (INFERMESH_ROLLOUT_MAX_UNCOUNTED_WINDOWS is ${MAX_UNCOUNTED}); resume it once the routers follow the step. `
        + `The last window not counted: the step is v1 90%, v${canary} 10%, but 1 of 2 router reports routed otherwise: router-b by v1 100% (revision ${revision - 1})`);
      expect(paused.traffic).toEqual(step.traffic);
      expect(paused.history.map((h) => h.action)).toEqual(['started', 'not_counted', 'paused']);
      await waitFor('the paused event', () => changes.some((c) => c.action === 'paused'), 5_000, 50);
      expect(changes.find((c) => c.action === 'paused')).toEqual({ action: 'paused', reason: paused.rollout!.reason, principal: 'controller' });

      // Paused, further windows change nothing; resumed, the routers get the full allowance again.
      await reportWindow('stalled', canary, [{ router: 'router-b', routedBy: [stale] }]);
      await sleep(WINDOW_MS);
      expect((await rollouts.status('stalled')).rollout).toMatchObject({ phase: 'paused', passes: 0 });
      await rollouts.resume('stalled');
      await reportWindow('stalled', canary, [{ router: 'router-b', routedBy: [stale] }]);
      await sleep(WINDOW_MS);
      expect((await rollouts.status('stalled')).rollout?.phase).toBe('progressing');
      await reportWindow('stalled', canary, [{ router: 'router-a', routedBy: [step] }, { router: 'router-b', routedBy: [step] }]);
      const counted = await waitFor('a window counted', async () => {
        const s = await rollouts.status('stalled');
        return s.rollout!.passes === 1 ? s : undefined;
      }, 10_000, 50);
      expect(counted.rollout?.phase).toBe('progressing');
    } finally {
      sub.unsubscribe();
    }
  });
});
