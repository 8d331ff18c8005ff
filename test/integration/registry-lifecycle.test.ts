// The registry's version lifecycle and events against a real nats-server: model config updates with
// compare-and-set; archive and delete refused while a version serves traffic and allowed once a
// newer one took it; a shared artifact survives the deletion of one of its versions; every change
// is an event; a consumer that starts late gets every event published before it, in order.
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { Kvm } from '@nats-io/kv';
import { RegistryApi, RolloutApi, InfermeshError, type WatchedEvent, type RegistryEvent } from '../../client/index';
import { followEvents } from '../../lib/events';
import { resources } from '../../lib/nats';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startTestRegistry } from '../helpers/services';
import { modelPath } from '../helpers/models';
import { waitFor } from '../helpers/wait';
import type { RegistryService } from '../../services/registry/registry-service';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function storedObjects(natsUrl: string): Promise<string[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    const os = await new Objm(nc).open(resources.artifactBucket);
    return (await os.list()).map((o) => o.name).sort();
  } finally {
    await nc.close();
  }
}

/** The event stream's last sequence, read from JetStream itself. */
async function lastSequence(natsUrl: string): Promise<number> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    return (await jsm.streams.info(resources.eventStream)).state.last_seq;
  } finally {
    await nc.close();
  }
}

/** Collects a watch's events in the background. */
function collect(watch: AsyncIterable<WatchedEvent>): { events: WatchedEvent[]; done: Promise<void> } {
  const events: WatchedEvent[] = [];
  const done = (async () => {
    for await (const e of watch) events.push(e);
  })();
  return { events, done };
}

const summary = (e: RegistryEvent): string => {
  switch (e.type) {
    case 'version.published': return `${e.model} ${e.type} v${e.version}`;
    case 'version.archived': return `${e.model} ${e.type} v${e.version}`;
    case 'version.deleted': return `${e.model} ${e.type} v${e.version} artifactDeleted=${e.artifactDeleted}`;
    case 'traffic.changed': return `${e.model} ${e.type} ${e.traffic.map((t) => `v${t.version}:${t.weight}`).join(',')}`;
    case 'model.config.changed': return `${e.model} ${e.type} ${e.description}`;
    case 'rollout.changed': return `${e.model} ${e.type} ${e.action} v${e.canary}`;
    default: return `${e.model} ${e.type}`;
  }
};

describe('registry versions and events', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let service: RegistryService;
  let client: RegistryApi;
  let rollouts: RolloutApi;
  /** Moves all of a model's traffic to `version` (later versions come in through a rollout). */
  const serve = async (model: string, version: number) => {
    await rollouts.start(model, version, { weight: 100 });
    await rollouts.promote(model);
  };
  let early: ReturnType<RegistryApi['watchEvents']>;
  let earlyEvents: ReturnType<typeof collect>;
  const addSub = fs.readFileSync(modelPath('fixtures/add_sub_fp32.onnx'));
  const identity = fs.readFileSync(modelPath('fixtures/identity_fp32.onnx'));
  const identity64 = fs.readFileSync(modelPath('fixtures/identity_int64.onnx'));

  beforeAll(async () => {
    nats = await startTestNats();
    service = await startTestRegistry(nats.url);
    client = new RegistryApi(`127.0.0.1:${service.port}`);
    rollouts = new RolloutApi(`127.0.0.1:${service.port}`);
    // A consumer that is there from the start, to compare the late ones with.
    early = client.watchEvents({ onlyNew: true });
    earlyEvents = collect(early);
    await early.ready;
  });

  afterAll(async () => {
    early?.cancel();
    client?.close();
    rollouts?.close();
    await service?.shutdown(5_000);
    await nats?.cleanup();
  });

  it('updates a model\'s description, labels and config with compare-and-set, and announces it', async () => {
    const created = await client.push('config-model', identity).then(() => client.model('config-model'));
    expect(created.description).toBe('');
    const updated = await client.updateModel('config-model', {
      description: 'identity for tests',
      labels: { team: 'ml' },
      config: { dynamic_batching: { enabled: true, max_batch_size: 16, max_queue_delay_us: 200 } },
    }, { expectedRevision: created.revision });
    expect(updated).toMatchObject({
      description: 'identity for tests',
      labels: { team: 'ml' },
      config: { dynamic_batching: { enabled: true, max_batch_size: 16, max_queue_delay_us: '200' } },
      latest_version: 1,
      traffic: [{ version: 1, weight: 100 }],
    });
    expect(Number(updated.revision)).toBeGreaterThan(Number(created.revision));
    // A writer that read the old revision loses.
    const stale = await client.updateModel('config-model', { description: 'stale' }, { expectedRevision: created.revision }).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(InfermeshError);
    expect((stale as InfermeshError).grpcCode).toBe(10); // ABORTED
    // Only the named fields change.
    const again = await client.updateModel('config-model', { description: 'second' });
    expect(again).toMatchObject({ description: 'second', labels: { team: 'ml' }, config: { dynamic_batching: { max_batch_size: 16 } } });
    await expect(client.updateModel('config-model', {})).rejects.toMatchObject({ grpcCode: 3 });
    await expect(client.updateModel('nope', { description: 'x' })).rejects.toMatchObject({ grpcCode: 5 });
  });

  it('refuses to archive or delete a version that serves traffic, and allows it once a newer one took it', async () => {
    const v1 = await client.push('lifecycle', addSub);
    for (const op of [() => client.archiveVersion('lifecycle', 1), () => client.deleteVersion('lifecycle', 1)]) {
      const err = (await op().catch((e: unknown) => e)) as InfermeshError;
      expect(err).toBeInstanceOf(InfermeshError);
      expect(err.grpcCode).toBe(9); // FAILED_PRECONDITION
      expect(err.message).toMatch(/model 'lifecycle' version 1 is serving traffic \(v1 100%\)/);
    }
    expect((await client.version('lifecycle', 1)).state).toBe('VERSION_STATE_AVAILABLE');

    await client.push('lifecycle', identity);
    expect((await client.model('lifecycle')).traffic).toEqual([{ version: 1, weight: 100 }]); // a later version waits for a rollout
    await serve('lifecycle', 2);
    expect((await client.model('lifecycle')).traffic).toEqual([{ version: 2, weight: 100 }]);
    const archived = await client.archiveVersion('lifecycle', 1);
    expect(archived).toMatchObject({ version: 1, state: 'VERSION_STATE_ARCHIVED', sha256: v1.sha256 });
    expect(await client.archiveVersion('lifecycle', 1)).toEqual(archived); // idempotent
    expect((await client.versions('lifecycle')).map((v) => [v.version, v.state])).toEqual([
      [1, 'VERSION_STATE_ARCHIVED'], [2, 'VERSION_STATE_AVAILABLE'],
    ]);
    expect(sha(await client.pull('lifecycle', 1))).toBe(v1.sha256); // archived bytes stay pullable

    const deleted = await client.deleteVersion('lifecycle', 1);
    expect(deleted.version).toMatchObject({ version: 1, sha256: v1.sha256 });
    expect(deleted.artifactDeleted).toBe(true); // nothing else had add_sub's bytes
    expect(await storedObjects(nats.url)).not.toContain(v1.sha256);
    expect((await client.versions('lifecycle')).map((v) => v.version)).toEqual([2]);
    await expect(client.version('lifecycle', 1)).rejects.toMatchObject({ grpcCode: 5 });
    await expect(client.deleteVersion('lifecycle', 1)).rejects.toMatchObject({ grpcCode: 5 });
    await expect(client.archiveVersion('lifecycle', 7)).rejects.toMatchObject({ grpcCode: 5 });

    // Numbers are never reused.
    expect((await client.push('lifecycle', addSub)).version).toBe(3);
  });

  it('never leaves an archived version in the traffic split, however an archive and a rollout interleave', async () => {
    const outcomes = { archivedFirst: 0, servedFirst: 0 };
    for (let i = 0; i < 8; i++) {
      const model = `race-${i}`;
      await client.push(model, identity);
      await client.push(model, addSub);
      // Archive version 2 while a rollout puts it into the split: exactly one of them may win.
      const [archive, rollout] = await Promise.allSettled([client.archiveVersion(model, 2), rollouts.start(model, 2, { weight: 100 })]);
      const [m, v2] = await Promise.all([client.model(model), client.version(model, 2)]);
      if (archive.status === 'fulfilled') {
        outcomes.archivedFirst++;
        expect(rollout.status).toBe('rejected');
        expect((rollout as PromiseRejectedResult).reason).toMatchObject({ grpcCode: 9 });
        expect(v2.state).toBe('VERSION_STATE_ARCHIVED');
        expect(m.traffic).toEqual([{ version: 1, weight: 100 }]);
      } else {
        outcomes.servedFirst++;
        expect((archive as PromiseRejectedResult).reason).toMatchObject({ grpcCode: 9 });
        expect(rollout.status).toBe('fulfilled');
        expect(v2.state).toBe('VERSION_STATE_AVAILABLE');
        expect(m.traffic).toEqual([{ version: 1, weight: 0 }, { version: 2, weight: 100 }]);
      }
    }
    expect(outcomes.archivedFirst + outcomes.servedFirst).toBe(8);
  });

  it('keeps an artifact another version still uses, deletes it with its last version, and tells a caller only whether its model still has it', async () => {
    const bytes = Buffer.concat([identity64]); // same bytes under two models, and twice under one
    const a1 = await client.push('shared-a', bytes);
    const b1 = await client.push('shared-b', bytes);
    expect(a1.sha256).toBe(b1.sha256);
    await client.push('shared-a', addSub);
    await client.push('shared-b', addSub);
    expect((await client.push('shared-a', bytes)).sha256).toBe(a1.sha256);
    await serve('shared-a', 2);
    await serve('shared-b', 2);

    // shared-a's v3 has the bytes still.
    const first = await client.deleteVersion('shared-a', 1);
    expect(first.artifactDeleted).toBe(false);
    // shared-a has them no more; shared-b does, so they stay, but shared-a's caller is not told
    // that another model has them (it could learn whether anyone serves a file it guesses).
    const second = await client.deleteVersion('shared-a', 3);
    expect(second.artifactDeleted).toBe(true);
    expect(await storedObjects(nats.url)).toContain(a1.sha256);
    expect(sha(await client.pull('shared-b', 1))).toBe(b1.sha256);

    // identity_int64 is used by nothing else in this file: its last version takes it along.
    const last = await client.deleteVersion('shared-b', 1);
    expect(last.artifactDeleted).toBe(true);
    expect(await storedObjects(nats.url)).not.toContain(a1.sha256);
    // Pushing the bytes again stores them again.
    const again = await client.push('shared-b', bytes);
    expect(again.version).toBe(3);
    expect(sha(await client.pull('shared-b', 3))).toBe(a1.sha256);
  });

  it('sweeps the bytes a delete interrupted after the record went, once they are old enough, and nothing in use', async () => {
    await client.push('orphan', addSub); // v1: bytes other models use too
    const v2 = await client.push('orphan', fs.readFileSync(modelPath('fixtures/identity_uint8.onnx')));
    // A registry that crashed in deleteVersion after removing the record, before the bytes.
    const nc = await connect({ servers: nats.url });
    try {
      const kv = await new Kvm(nc).open(resources.metadataBucket);
      await kv.delete('versions.orphan.2');
    } finally {
      await nc.close();
    }
    expect(await storedObjects(nats.url)).toContain(v2.sha256);
    // Bytes younger than the minimum age may belong to a push on its way to its record: kept.
    expect(await service.registry.sweepArtifacts(3_600_000)).toBe(0);
    expect(await storedObjects(nats.url)).toContain(v2.sha256);
    // Another replica starting with no minimum age sweeps them at start-up, and only them.
    const before = await storedObjects(nats.url);
    const replica = await startTestRegistry(nats.url, { INFERMESH_ARTIFACT_SWEEP_MIN_AGE_MS: '0' });
    try {
      await waitFor('the orphaned bytes to be swept', async () => !(await storedObjects(nats.url)).includes(v2.sha256), 10_000);
      expect(await storedObjects(nats.url)).toEqual(before.filter((o) => o !== v2.sha256));
      expect(sha(await client.pull('orphan', 1))).toBe(sha(addSub));
    } finally {
      await replica.shutdown(5_000);
    }
  });

  it('publishes an event for every change, in order', async () => {
    const last = await lastSequence(nats.url);
    await waitFor('the early consumer to catch up', () => earlyEvents.events.at(-1)?.sequence === last, 10_000, 20);
    const lifecycle = earlyEvents.events.filter((e) => e.event.model === 'lifecycle' || e.event.model === 'config-model').map((e) => summary(e.event));
    expect(lifecycle).toEqual([
      'config-model model.created',
      'config-model version.published v1',
      'config-model traffic.changed v1:100',
      'config-model model.config.changed identity for tests',
      'config-model model.config.changed second',
      'lifecycle model.created',
      'lifecycle version.published v1',
      'lifecycle traffic.changed v1:100',
      'lifecycle version.published v2',
      'lifecycle rollout.changed started v2',
      'lifecycle traffic.changed v1:0,v2:100',
      'lifecycle rollout.changed promoted v2',
      'lifecycle traffic.changed v2:100',
      'lifecycle version.archived v1',
      'lifecycle version.deleted v1 artifactDeleted=true',
      'lifecycle version.published v3',
    ]);
    const shared = earlyEvents.events.filter((e) => e.event.type === 'version.deleted' && e.event.model.startsWith('shared-')).map((e) => summary(e.event));
    expect(shared).toEqual(['shared-a version.deleted v1 artifactDeleted=false', 'shared-a version.deleted v3 artifactDeleted=true', 'shared-b version.deleted v1 artifactDeleted=true']);
    const config = earlyEvents.events.find((e) => e.event.type === 'model.config.changed')!.event;
    expect(config).toMatchObject({ schema: 1, labels: { team: 'ml' }, config: { dynamicBatching: { enabled: true, maxBatchSize: 16, maxQueueDelayUs: 200 } } });
  });

  it('gives a consumer that starts late every event published before it, in order, with nothing missing', async () => {
    const last = await lastSequence(nats.url);
    expect(last).toBeGreaterThan(20);
    // Through the API, from the beginning...
    const late = client.watchEvents();
    const lateEvents = collect(late);
    await waitFor('the late watch to catch up', () => lateEvents.events.length >= last, 10_000, 20);
    late.cancel();
    await lateEvents.done;
    expect(lateEvents.events.map((e) => e.sequence)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    // ...the same events the consumer that was there from the start received.
    await waitFor('the early consumer to catch up', () => earlyEvents.events.length >= last, 10_000, 20);
    expect(lateEvents.events).toEqual(earlyEvents.events);

    // And with lib/events directly, as pods and routers follow the stream.
    const nc = await connect({ servers: nats.url });
    const seen: { seq: number; id: string }[] = [];
    const follower = await followEvents(jetstream(nc), (e, seq) => void seen.push({ seq, id: e.id }), { afterSeq: 0 });
    await waitFor('followEvents to catch up', () => seen.length >= last, 10_000, 20);
    await follower.stop();
    await nc.close();
    expect(seen).toEqual(earlyEvents.events.map((e) => ({ seq: e.sequence, id: e.event.id })));
  });

  it('watches from a given sequence, and one model\'s events only', async () => {
    const from = 5;
    const watch = client.watchEvents({ fromSequence: from });
    const got = collect(watch);
    const last = await lastSequence(nats.url);
    await waitFor('the watch from 5', () => got.events.length >= last - from + 1, 10_000, 20);
    watch.cancel();
    await got.done;
    expect(got.events.map((e) => e.sequence)).toEqual(Array.from({ length: last - from + 1 }, (_, i) => i + from));

    const only = client.watchEvents({ model: 'shared-a' });
    const onlyGot = collect(only);
    const expected = earlyEvents.events.filter((e) => e.event.model === 'shared-a');
    await waitFor('the model watch', () => onlyGot.events.length >= expected.length, 10_000, 20);
    only.cancel();
    await onlyGot.done;
    expect(onlyGot.events).toEqual(expected);
    await expect(async () => {
      const bad = client.watchEvents({ model: 'bad/name' });
      await bad.ready;
    }).rejects.toMatchObject({ grpcCode: 3 });
  });

  it('ends open watches at shutdown instead of waiting for them', async () => {
    const other = await startTestRegistry(nats.url);
    const c = new RegistryApi(`127.0.0.1:${other.port}`);
    const watch = c.watchEvents();
    const got = collect(watch);
    await watch.ready;
    const started = Date.now();
    await other.shutdown(10_000);
    expect(Date.now() - started).toBeLessThan(2_000);
    await got.done; // the stream ended cleanly
    c.close();
  });
});
