// Every write of a model's record is announced, once: its events are stored in the record's outbox
// by the same compare-and-set, so a registry that cannot publish them (NATS refusing, or the
// process killed between the write and the publish) leaves them for the next flush, by itself
// after a restart or by another replica, and JetStream's message ids and the stream itself keep
// each one from being stored twice.
import { RegistryApi, RolloutApi } from '../../client/index';
import { ensureEventStream, newEvent, publishEvent, subjects, type MeshEvent } from '../../lib/events';
import { artifactStore, connectNats, jetStreamOf, metadataBucket, resources, type NatsConnection } from '../../lib/nats';
import { silentLogger } from '../../lib/log';
import { DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { Registry } from '../../services/registry/registry';
import { Rollouts } from '../../services/registry/rollout/rollouts';
import { keys, type ModelRecord } from '../../services/registry/records';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startTestRegistry, testConfig } from '../helpers/services';
import { modelPath } from '../helpers/models';
import { waitFor } from '../helpers/wait';
import type { RegistryService } from '../../services/registry/registry-service';

jest.setTimeout(60_000);

describe('the outbox of model writes', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let nc: NatsConnection;
  const registries: RegistryService[] = [];
  const connections: NatsConnection[] = [];
  let registryApi: RegistryApi;

  beforeAll(async () => {
    nats = await startTestNats();
    nc = await connectNats(testConfig(nats.url), 'outbox-test', silentLogger);
    // The event stream as the registry makes it, but with a duplicate window of 100 ms: a flush
    // past it must still know which events are stored already.
    await (await jetStreamOf(nc).jsm).streams.add({
      name: resources.eventStream, subjects: [subjects.eventsAll], retention: RetentionPolicy.Limits, storage: StorageType.File,
      discard: DiscardPolicy.Old, num_replicas: 1, max_consumers: 1024, duplicate_window: 100_000_000,
    });
    await ensureEventStream(await jetStreamOf(nc).jsm, 1, 1024);
    registries.push(await startTestRegistry(nats.url));
    registryApi = new RegistryApi(`127.0.0.1:${registries[0]!.port}`);
  });

  afterAll(async () => {
    registryApi?.close();
    for (const r of registries) await r.shutdown(2_000);
    for (const c of connections) if (!c.isClosed()) await c.close();
    await nc?.drain();
    await nats?.cleanup();
  });

  /** Every event stored on the stream about `model`, oldest first. */
  async function eventsOf(model: string): Promise<MeshEvent[]> {
    const jsm = await jetStreamOf(nc).jsm;
    const last = (await jsm.streams.info(resources.eventStream)).state.last_seq;
    const found: MeshEvent[] = [];
    for (let seq = 1; seq <= last; seq++) {
      const m = await jsm.streams.getMessage(resources.eventStream, { seq }).catch(() => null);
      const e = m ? (m.json<MeshEvent>()) : undefined;
      if (e?.model === model) found.push(e);
    }
    return found;
  }

  /** A registry over the real buckets whose events go through a NATS connection of their own (closed to make its publishes fail). */
  async function registryWithOwnPublisher() {
    const store = await connectNats(testConfig(nats.url), 'outbox-store', silentLogger);
    const publisher = await connectNats(testConfig(nats.url), 'outbox-publisher', silentLogger);
    connections.push(store, publisher);
    const registry = new Registry({
      kv: await metadataBucket(store, 1), artifacts: await artifactStore(store, 1), js: jetStreamOf(publisher).js, log: silentLogger,
      maxArtifactBytes: 1 << 30, maxWarmupConfigBytes: 256 * 1024, maxWarmupRuns: 100, maxWarmupElements: 1 << 20,
    });
    return { registry, rollouts: new Rollouts(registry), publisher };
  }

  it('publishes a rollout step whose publish failed after its write, once, when a registry starts', async () => {
    await registryApi.push('stepped', modelPath('fixtures/identity_fp32.onnx'));
    const canary = (await registryApi.push('stepped', modelPath('fixtures/identity_fp32.onnx'))).version;
    const { rollouts, publisher } = await registryWithOwnPublisher();
    await rollouts.start('stepped', canary, { weight: 10, steps: [10, 50], automatic: false, analysis: {} }, 'key:test');
    await waitFor('the start announced', async () => (await eventsOf('stepped')).some((e) => e.type === 'rollout.changed' && e.action === 'started'));

    // NATS refuses this registry's publishes from here on: the step is written, its events are not sent.
    await publisher.close();
    await rollouts.setWeight('stepped', 50, 'key:test').catch(() => undefined);
    const stored = await rollouts.status('stepped');
    expect(stored.traffic).toEqual([{ version: 1, weight: 50 }, { version: canary, weight: 50 }]);
    expect((await eventsOf('stepped')).filter((e) => e.type === 'rollout.changed' && e.action === 'weight')).toEqual([]);

    // A registry starting (the same one restarted, or another replica) publishes them at start-up.
    registries.push(await startTestRegistry(nats.url));
    const weighted = await waitFor('the step announced', async () => {
      const events = await eventsOf('stepped');
      const step = events.filter((e) => e.type === 'rollout.changed' && e.action === 'weight');
      return step.length > 0 ? events : undefined;
    }, 15_000, 100);
    const afterStep = weighted.slice(weighted.findIndex((e) => e.type === 'rollout.changed' && e.action === 'weight'));
    expect(afterStep.map((e) => e.type)).toEqual(['rollout.changed', 'traffic.changed']);
    expect(afterStep[1]).toMatchObject({ traffic: [{ version: 1, weight: 50 }, { version: canary, weight: 50 }], principal: 'key:test' });

    // Every replica's next flush finds nothing left: each event stays stored once.
    for (const r of registries) expect(await r.registry.flushOutboxes()).toBe(0);
    expect(await eventsOf('stepped')).toHaveLength(weighted.length);
  });

  it('publishes only what a flush that died before clearing the outbox had not, past the duplicate window', async () => {
    await registryApi.push('flushed', modelPath('fixtures/identity_fp32.onnx'));
    const { registry } = await registryWithOwnPublisher();
    const kv = await metadataBucket(nc, 1);
    // What a registry killed midway through a flush leaves: two events in the outbox, the first published.
    const sent = newEvent({ type: 'model.config.changed', model: 'flushed', description: 'first', labels: {}, config: {}, principal: 'key:test' });
    const unsent = newEvent({ type: 'model.config.changed', model: 'flushed', description: 'second', labels: {}, config: {}, principal: 'key:test' });
    const entry = (await kv.get(keys.model('flushed')))!;
    await kv.update(keys.model('flushed'), JSON.stringify({ ...entry.json<ModelRecord>(), description: 'second', outbox: [sent, unsent] }), entry.revision);
    await publishEvent(jetStreamOf(nc).js, sent);
    await new Promise((r) => setTimeout(r, 300)); // past the stream's duplicate window

    expect(await registries[0]!.registry.flushOutboxes()).toBe(1);
    expect(await registry.flushOutboxes()).toBe(0);
    const ids = (await eventsOf('flushed')).map((e) => e.id);
    expect(ids.filter((id) => id === sent.id)).toHaveLength(1);
    expect(ids.filter((id) => id === unsent.id)).toHaveLength(1);
    expect((await kv.get(keys.model('flushed')))!.json<ModelRecord>().outbox).toBeUndefined();
  });
});
