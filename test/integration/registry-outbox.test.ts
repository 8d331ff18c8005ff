// Every write of a model's record is announced, once: its events are stored in the record's outbox
// by the same compare-and-set, so a registry that cannot publish them (NATS refusing, or the
// process killed between the write and the publish) leaves them for the next flush, by itself
// after a restart or by another replica, and JetStream's message ids and the stream itself keep
// each one from being stored twice. A version's writes (another key) store theirs in the model's
// outbox ahead of the write, and an API key's in the key's own record.
import fs from 'node:fs';
import { RegistryApi } from '../../client/index';
import { keysBucket } from '../../lib/auth';
import { KeyStore } from '../../services/registry/keys';
import { ensureEventStream, newEvent, publishEvent, subjects, type MeshEvent } from '../../lib/events';
import { artifactStore, connectNats, jetStreamOf, metadataBucket, resources, type NatsConnection } from '../../lib/nats';
import { createLogger, silentLogger } from '../../lib/log';
import { DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { Registry } from '../../services/registry/registry';
import { Rollouts } from '../../services/registry/rollout/rollouts';
import { announcing, keys, type ModelRecord, type OutboxIndex, type VersionRecord } from '../../services/registry/records';
import { ErrorCode, MeshError } from '../../lib/errors';
import type { KV } from '../../lib/nats';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startTestRegistry, testConfig } from '../helpers/services';
import { modelPath } from '../helpers/models';
import { waitFor } from '../helpers/wait';
import type { RegistryService } from '../../services/registry/registry-service';

jest.setTimeout(90_000);

// The registries here flush at start-up only: each test calls the flush it means, when it means it.
const ONLY_AT_START = { INFERMESH_REGISTRY_OUTBOX_INTERVAL_MS: '3600000' };

/** The limits of the registries the tests build themselves (a service's come from its config). */
const LIMITS = { maxArtifactBytes: 1 << 30, maxWarmupConfigBytes: 256 * 1024, maxWarmupRuns: 100, maxWarmupElements: 1 << 20 };

/** A description of `bytes` UTF-8 bytes whose content says `tag`. */
const descriptionOf = (tag: string, bytes: number) => `${tag}:`.padEnd(bytes, 'd');

/** Warm-up samples that take about `bytes` as stored (raw data in base64). */
const warmupOf = (bytes: number) => ({
  warmup: [{ name: 'w', inputs: [{ name: 'x', dims: [1, 4], rawData: Buffer.alloc(Math.floor((bytes * 3) / 4), 7).toString('base64') }] }],
});

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
    registries.push(await startTestRegistry(nats.url, ONLY_AT_START));
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

  /**
   * A registry over the real buckets (API keys' too) whose events go through a NATS connection of
   * their own (closed to make its publishes fail, as a registry killed after its writes).
   */
  async function registryWithOwnPublisher() {
    const store = await connectNats(testConfig(nats.url), 'outbox-store', silentLogger);
    const publisher = await connectNats(testConfig(nats.url), 'outbox-publisher', silentLogger);
    connections.push(store, publisher);
    const { js, jsm } = jetStreamOf(publisher);
    await jsm; // its first request answered, so closing the connection leaves none failing unawaited
    const keyBucket = await keysBucket(store, { replicas: 1, create: true });
    const registry = new Registry({
      kv: await metadataBucket(store, 1), artifacts: await artifactStore(store, 1), js, log: silentLogger, keys: keyBucket,
      ...LIMITS,
    });
    return { registry, rollouts: new Rollouts(registry), publisher, apiKeys: new KeyStore(keyBucket, registry.keyOutbox(), silentLogger) };
  }

  /**
   * `bucket` with its update and put calls passed through `hooks`, which make the write (`write()`)
   * when they choose: to hold a registry between its writes, or to see where it is.
   */
  function hookedKv(bucket: KV, hooks: { update?(key: string, write: () => Promise<number>): Promise<number>; put?(key: string, write: () => Promise<number>): Promise<number> }): KV {
    return new Proxy(bucket, {
      get(target, prop) {
        if (prop === 'update' && hooks.update) {
          return (key: string, value: Uint8Array, revision: number) => hooks.update!(key, () => target.update(key, value, revision));
        }
        if (prop === 'put' && hooks.put) {
          return (key: string, ...rest: unknown[]) => hooks.put!(key, () => (target.put as (...a: unknown[]) => Promise<number>)(key, ...rest));
        }
        const v: unknown = Reflect.get(target, prop);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as KV;
  }

  /** A file's bytes as a push streams them. */
  async function* bytesOf(file: string): AsyncGenerator<Uint8Array> {
    yield await fs.promises.readFile(file);
  }

  /**
   * A registry over the real buckets whose event publishes wait while `stall()` is in force, as
   * over a NATS link that does not answer; `release()` lets them go on, or with `fail` ends each
   * waiting one as a timeout would (later ones go through). `reads` counts its reads of model records.
   */
  async function registryWithStallingPublisher() {
    const store = await connectNats(testConfig(nats.url), 'outbox-stalling', silentLogger);
    connections.push(store);
    const real = jetStreamOf(store).js;
    let stalled: Promise<boolean> | undefined;
    let end: (fail: boolean) => void = () => undefined;
    let waiting = 0;
    const js = new Proxy(real, {
      get(target, prop) {
        if (prop === 'publish') {
          return async (...args: Parameters<typeof real.publish>) => {
            if (stalled) {
              waiting++;
              if (await stalled) throw new Error('publish timed out');
            }
            return target.publish(...args);
          };
        }
        const v: unknown = Reflect.get(target, prop);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const reads: string[] = [];
    const bucket = await metadataBucket(store, 1);
    const kv = new Proxy(bucket, {
      get(target, prop) {
        if (prop === 'get') return (key: string) => (reads.push(key), target.get(key));
        const v: unknown = Reflect.get(target, prop);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as KV;
    const registry = new Registry({
      kv, artifacts: await artifactStore(store, 1), js, log: silentLogger,
      ...LIMITS, maxWarmupElements: 1 << 26,
    });
    return {
      registry,
      reads,
      waiting: () => waiting,
      stall() {
        stalled = new Promise<boolean>((resolve) => (end = resolve));
      },
      release(fail = false) {
        stalled = undefined;
        end(fail);
      },
    };
  }

  /** What `p` resolved to, or 'still waiting' after `ms`. */
  const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), ms).unref())]);

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
    registries.push(await startTestRegistry(nats.url, ONLY_AT_START));
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

  it('publishes a version\'s push, archive and deletion whose registry stopped after the write, once, at the next flush', async () => {
    const file = modelPath('fixtures/identity_fp32.onnx');
    for (let i = 0; i < 3; i++) await registryApi.push('versioned', file);
    const { registry, publisher } = await registryWithOwnPublisher();
    await publisher.close();
    // Each write is made; its registry publishes nothing after it (whatever its call answers).
    await registry.pushVersion('versioned', bytesOf(file), { sizeBytes: BigInt(fs.statSync(file).size) }, 'key:pusher').catch(() => undefined);
    await registry.archiveVersion('versioned', 2, 'key:archiver').catch(() => undefined);
    await registry.deleteVersion('versioned', 3, 'key:deleter').catch(() => undefined);
    const kv = await metadataBucket(nc, 1);
    expect((await kv.get(keys.version('versioned', 4)))?.json<VersionRecord>()).toMatchObject({ version: 4, state: 'AVAILABLE' });
    expect((await kv.get(keys.version('versioned', 2)))?.json<VersionRecord>()).toMatchObject({ state: 'ARCHIVED' });
    expect((await kv.get(keys.version('versioned', 3)))?.operation).toBe('DEL');
    const versionEvents = async () => (await eventsOf('versioned')).filter((e) => e.type.startsWith('version.') && e.principal !== 'anonymous');
    expect(await versionEvents()).toEqual([]);

    // The next flush (a registry starting, or another replica's) publishes them, in order.
    expect(await registries[0]!.registry.flushOutboxes()).toBeGreaterThanOrEqual(1);
    const sha256 = (await kv.get(keys.version('versioned', 4)))!.json<VersionRecord>().sha256;
    expect(await versionEvents()).toMatchObject([
      { type: 'version.published', version: 4, sha256, principal: 'key:pusher' },
      { type: 'version.archived', version: 2, principal: 'key:archiver' },
      // The same bytes are versions 1, 2 and 4's too: kept.
      { type: 'version.deleted', version: 3, sha256, artifactDeleted: false, principal: 'key:deleter' },
    ]);
    for (const r of registries) expect(await r.registry.flushOutboxes()).toBe(0);
    expect(await versionEvents()).toHaveLength(3);
    expect((await kv.get(keys.model('versioned')))!.json<ModelRecord>().outbox).toBeUndefined();
  });

  it('publishes no version.archived for an archive undone because a traffic write put the version in the split', async () => {
    const file = modelPath('fixtures/identity_fp32.onnx');
    await registryApi.push('undone', file);
    await registryApi.push('undone', file);
    // Registry A archives v2; its writes of v2's record and its confirming rewrite of the model's
    // record wait on gates, so that a traffic writer (registry B, as a rollout does) reads v2
    // AVAILABLE before A's write and stores its split after it, ahead of A's confirmation.
    const store = await connectNats(testConfig(nats.url), 'outbox-undone', silentLogger);
    connections.push(store);
    const bucket = await metadataBucket(store, 1);
    let markerStored!: () => void;
    const marker = new Promise<void>((r) => (markerStored = r));
    let letWrite!: () => void;
    const writeGate = new Promise<void>((r) => (letWrite = r));
    let versionWritten!: () => void;
    const written = new Promise<void>((r) => (versionWritten = r));
    let letConfirm!: () => void;
    const confirmGate = new Promise<void>((r) => (letConfirm = r));
    let wrote = false;
    const kv = hookedKv(bucket, {
      async update(key, write) {
        if (key === keys.version('undone', 2) && !wrote) {
          await writeGate;
          const r = await write();
          wrote = true;
          versionWritten();
          return r;
        }
        if (key === keys.model('undone') && wrote) await confirmGate;
        const r = await write();
        if (key === keys.model('undone')) markerStored();
        return r;
      },
    });
    const a = new Registry({
      kv, artifacts: await artifactStore(store, 1), js: jetStreamOf(store).js, log: silentLogger,
      ...LIMITS,
    });
    const archived = a.archiveVersion('undone', 2, 'key:archiver').then(() => 'archived', (err: unknown) => err);
    await marker;
    const b = registries[0]!.registry;
    const split = b.updateModel('undone', async (cur) => {
      const servable = await b.servable('undone', 2);
      letWrite();
      await written;
      if (!servable || cur.traffic.some((t) => t.version === 2)) return cur;
      const traffic = [{ version: 1, weight: 50 }, { version: 2, weight: 50 }];
      return announcing({ ...cur, traffic }, { type: 'traffic.changed', model: 'undone', traffic, principal: 'key:rollout' });
    }, true);
    expect((await split).traffic).toEqual([{ version: 1, weight: 50 }, { version: 2, weight: 50 }]);
    letConfirm();
    // The traffic writer won: the archive is refused and undone, and was never announced.
    expect(await archived).toMatchObject({ code: ErrorCode.FailedPrecondition });
    expect((await b.getVersion('undone', 2)).state).toBe('AVAILABLE');
    await waitFor('the split announced', async () => (await eventsOf('undone')).some((e) => e.type === 'traffic.changed' && e.principal === 'key:rollout'));
    await b.flushOutboxes();
    expect((await eventsOf('undone')).filter((e) => e.type === 'version.archived')).toEqual([]);
    expect((await b.getModel('undone')).outbox).toBeUndefined();
  });

  it('publishes an API key\'s creation and revocation whose registry stopped after the write, once, at the next flush', async () => {
    const { registry, publisher, apiKeys } = await registryWithOwnPublisher();
    const before = await apiKeys.create('revoked-later', ['read'], 'key:admin');
    await waitFor('its creation announced', async () => (await eventsOf('')).some((e) => e.type === 'key.created' && e.keyId === before.key.id));
    await publisher.close();
    const made = await apiKeys.create('made-while-down', ['infer:mnist*'], 'key:admin').catch(() => undefined);
    await apiKeys.revoke(before.key.id, 'key:admin').catch(() => undefined);
    const listed = await apiKeys.list();
    const created = listed.find((k) => k.name === 'made-while-down');
    expect(created).toBeDefined();
    expect(listed.find((k) => k.id === before.key.id)?.revokedAt).toEqual(expect.any(String));
    if (made) expect(made.key.id).toBe(created!.id);
    const keyEvents = async () => (await eventsOf('')).filter((e) => 'keyId' in e && (e.keyId === created!.id || e.keyId === before.key.id));
    expect((await keyEvents()).map((e) => e.type)).toEqual(['key.created']);

    expect(await registries[0]!.registry.flushOutboxes()).toBeGreaterThanOrEqual(1);
    // In order for each key; two keys' records are flushed in any order.
    const events = await keyEvents();
    expect(events.filter((e) => 'keyId' in e && e.keyId === before.key.id)).toMatchObject([
      { type: 'key.created' },
      { type: 'key.revoked', name: 'revoked-later', principal: 'key:admin' },
    ]);
    expect(events.filter((e) => 'keyId' in e && e.keyId === created!.id)).toMatchObject([
      { type: 'key.created', name: 'made-while-down', grants: ['infer:mnist*'], principal: 'key:admin' },
    ]);
    expect(await registries[0]!.registry.flushOutboxes()).toBe(0);
    expect(await registry.flushOutboxes()).toBe(0);
    expect(await keyEvents()).toHaveLength(3);
  });

  it('makes one API key when its write is retried after an attempt that was stored but not answered', async () => {
    const store = await connectNats(testConfig(nats.url), 'outbox-key-retry', silentLogger);
    connections.push(store);
    const bucket = await keysBucket(store, { replicas: 1, create: true });
    let creates = 0;
    const kv = new Proxy(bucket, {
      get(target, prop) {
        if (prop === 'create') {
          return async (key: string, value: Uint8Array) => {
            const first = creates++ === 0;
            const revision = await target.create(key, value);
            // The first is stored, its answer lost, as in a JetStream leader election.
            if (first) throw new Error('TIMEOUT');
            return revision;
          };
        }
        const v: unknown = Reflect.get(target, prop);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as KV;
    const apiKeys = new KeyStore(kv, registries[0]!.registry.keyOutbox(), silentLogger);
    const made = await apiKeys.create('answer-lost', ['read'], 'key:admin');
    expect(creates).toBe(2);
    expect((await apiKeys.list()).filter((k) => k.name === 'answer-lost').map((k) => k.id)).toEqual([made.key.id]);
  });

  it('drops the events of versions\' writes their registry never made, and fences those writes', async () => {
    await registryApi.push('unwritten', modelPath('fixtures/identity_fp32.onnx'));
    await registryApi.push('unwritten', modelPath('fixtures/identity_fp32.onnx'));
    const kv = await metadataBucket(nc, 1);
    // What registries killed between storing a write's event and the write leave, over an hour ago
    // (past the flush interval): an archive's event, the version as it was; a push's, no record.
    const version = (await kv.get(keys.version('unwritten', 2)))!;
    const longAgo = new Date(Date.now() - 7_200_000).toISOString();
    const archive = { ...newEvent({ type: 'version.archived', model: 'unwritten', version: 2, principal: 'key:test' }), time: longAgo, over: version.revision };
    const push = { ...newEvent({ type: 'version.published', model: 'unwritten', version: 3, sha256: version.json<VersionRecord>().sha256, sizeBytes: 1, principal: 'key:test' }), time: longAgo, over: 0 };
    const entry = (await kv.get(keys.model('unwritten')))!;
    await kv.update(keys.model('unwritten'), JSON.stringify({ ...entry.json<ModelRecord>(), latestVersion: 3, outbox: [archive, push] }), entry.revision);

    expect(await registries[0]!.registry.flushOutboxes()).toBe(1);
    expect((await eventsOf('unwritten')).filter((e) => e.type === 'version.archived' || (e.type === 'version.published' && e.version === 3))).toEqual([]);
    expect((await kv.get(keys.model('unwritten')))!.json<ModelRecord>().outbox).toBeUndefined();
    // The writes, were their registries still on their way, can no longer be made.
    await expect(kv.update(keys.version('unwritten', 2), JSON.stringify({ ...version.json<VersionRecord>(), state: 'ARCHIVED' }), version.revision)).rejects.toThrow(/wrong last sequence/i);
    expect((await kv.get(keys.version('unwritten', 2)))!.json<VersionRecord>().state).toBe('AVAILABLE');
    await expect(kv.put(keys.version('unwritten', 3), JSON.stringify({ ...version.json<VersionRecord>(), version: 3 }), { previousSeq: 0 })).rejects.toThrow(/wrong last sequence/i);
    expect((await kv.get(keys.version('unwritten', 3)))?.operation).toBe('DEL');
    expect((await registries[0]!.registry.listVersions('unwritten')).map((v) => v.version)).toEqual([1, 2]);
  });

  it('waits for a version\'s write as long as its grace setting says before fencing it', async () => {
    await registryApi.push('patient', modelPath('fixtures/identity_fp32.onnx'));
    const kv = await metadataBucket(nc, 1);
    const v1 = (await kv.get(keys.version('patient', 1)))!.json<VersionRecord>();
    // A push's event half an hour old whose write is not made: past the default grace, within an hour's.
    const push = { ...newEvent({ type: 'version.published', model: 'patient', version: 2, sha256: v1.sha256, sizeBytes: 1, principal: 'key:test' }), time: new Date(Date.now() - 1_800_000).toISOString(), over: 0 };
    const entry = (await kv.get(keys.model('patient')))!;
    await kv.update(keys.model('patient'), JSON.stringify({ ...entry.json<ModelRecord>(), latestVersion: 2, outbox: [push] }), entry.revision);
    const patient = new Registry({
      kv: await metadataBucket(nc, 1), artifacts: await artifactStore(nc, 1), js: jetStreamOf(nc).js, log: silentLogger, outboxVersionWriteGraceMs: 3_600_000,
      ...LIMITS,
    });
    await patient.flushOutbox('patient');
    expect((await kv.get(keys.model('patient')))!.json<ModelRecord>().outbox?.map((e) => e.id)).toEqual([push.id]);
    expect(await kv.get(keys.version('patient', 2))).toBeNull();
    // A registry at the default (40 s) gives it up: the write can no longer be made.
    await registries[0]!.registry.flushOutbox('patient');
    expect((await kv.get(keys.version('patient', 2)))?.operation).toBe('DEL');
    expect((await kv.get(keys.model('patient')))!.json<ModelRecord>().outbox).toBeUndefined();
  });

  it('confirms an archive whose registry stopped between its write and its confirmation, unless the version is in the split', async () => {
    const file = modelPath('fixtures/identity_fp32.onnx');
    await registryApi.push('unconfirmed', file);
    await registryApi.push('unconfirmed', file);
    const kv = await metadataBucket(nc, 1);
    // Registries killed after their writes, before confirming them out of the split, over an hour
    // ago: v2 archived (out of the split), v1 deleted (in it: a traffic write won, its undo never made).
    const v1 = (await kv.get(keys.version('unconfirmed', 1)))!;
    const v2 = (await kv.get(keys.version('unconfirmed', 2)))!;
    await kv.update(keys.version('unconfirmed', 2), JSON.stringify({ ...v2.json<VersionRecord>(), state: 'ARCHIVED' }), v2.revision);
    await kv.delete(keys.version('unconfirmed', 1), { previousSeq: v1.revision });
    const longAgo = new Date(Date.now() - 7_200_000).toISOString();
    const archive = { ...newEvent({ type: 'version.archived', model: 'unconfirmed', version: 2, principal: 'key:test' }), time: longAgo, over: v2.revision };
    const deletionMarker = { schema: 1, id: 'deletion-of-v1', time: longAgo, type: 'version.deleted', model: 'unconfirmed', version: 1, sha256: v1.json<VersionRecord>().sha256, principal: 'key:test', over: v1.revision };
    const entry = (await kv.get(keys.model('unconfirmed')))!;
    await kv.update(keys.model('unconfirmed'), JSON.stringify({ ...entry.json<ModelRecord>(), outbox: [deletionMarker, archive] }), entry.revision);

    expect(await registries[0]!.registry.flushOutboxes()).toBe(1);
    expect((await eventsOf('unconfirmed')).filter((e) => e.type === 'version.archived' || e.type === 'version.deleted')).toMatchObject([
      { type: 'version.archived', version: 2, id: archive.id },
    ]);
    expect((await kv.get(keys.model('unconfirmed')))!.json<ModelRecord>().outbox).toBeUndefined();
  });

  it('does not fence a push whose version write is held up past a short flush interval, as a JetStream election does', async () => {
    const file = modelPath('fixtures/identity_fp32.onnx');
    await registryApi.push('held-up', file);
    const store = await connectNats(testConfig(nats.url), 'outbox-held-up', silentLogger);
    connections.push(store);
    const bucket = await metadataBucket(store, 1);
    let reached!: () => void;
    const atWrite = new Promise<void>((r) => (reached = r));
    let letWrite!: () => void;
    const writeGate = new Promise<void>((r) => (letWrite = r));
    const kv = hookedKv(bucket, {
      async put(key, write) {
        if (key === keys.version('held-up', 2)) {
          reached();
          await writeGate;
        }
        return write();
      },
    });
    const pusher = new Registry({
      kv, artifacts: await artifactStore(store, 1), js: jetStreamOf(store).js, log: silentLogger,
      ...LIMITS,
    });
    const pushed = pusher.pushVersion('held-up', bytesOf(file), { sizeBytes: BigInt(fs.statSync(file).size) }, 'key:pusher').then((r) => r.version, (err: unknown) => err);
    await atWrite;
    // A replica flushing every 100 ms (the setting's least) finds the push's event a few intervals old.
    const flusher = new Registry({
      kv: await metadataBucket(nc, 1), artifacts: await artifactStore(nc, 1), js: jetStreamOf(nc).js, log: silentLogger, outboxIntervalMs: 100,
      ...LIMITS,
    });
    const modelKv = await metadataBucket(nc, 1);
    await waitFor('the push\'s event older than three intervals', async () => {
      const marker = (await modelKv.get(keys.model('held-up')))!.json<ModelRecord>().outbox?.find((e) => e.type === 'version.published');
      return marker !== undefined && Date.now() - Date.parse(marker.time) > 300;
    });
    await flusher.flushOutbox('held-up');
    letWrite();
    expect(await pushed).toBe(2);
    await waitFor('its push announced', async () => (await eventsOf('held-up')).some((e) => e.type === 'version.published' && e.version === 2));
  });

  it('publishes an archive and a push whose version another replica deleted before they were announced', async () => {
    const file = modelPath('fixtures/identity_fp32.onnx');
    await registryApi.push('superseded', file);
    await registryApi.push('superseded', file);
    // Registry A holds its calls once their writes are made (an archive's confirmed out of the
    // split, a push's record created), before it publishes their events.
    const store = await connectNats(testConfig(nats.url), 'outbox-superseded', silentLogger);
    connections.push(store);
    const bucket = await metadataBucket(store, 1);
    let held!: () => void;
    let holding = new Promise<void>((r) => (held = r));
    let release!: () => void;
    let gate = new Promise<void>((r) => (release = r));
    let archiveWritten = false;
    const hold = async () => {
      held();
      await gate;
    };
    const kv = hookedKv(bucket, {
      async update(key, write) {
        const r = await write();
        if (key === keys.version('superseded', 2)) archiveWritten = true;
        else if (key === keys.model('superseded') && archiveWritten) {
          archiveWritten = false;
          await hold();
        }
        return r;
      },
      async put(key, write) {
        const r = await write();
        if (key === keys.version('superseded', 3)) await hold();
        return r;
      },
    });
    const a = new Registry({
      kv, artifacts: await artifactStore(store, 1), js: jetStreamOf(store).js, log: silentLogger,
      ...LIMITS,
    });
    const b = registries[0]!.registry;

    const archived = a.archiveVersion('superseded', 2, 'key:archiver');
    await holding;
    await b.deleteVersion('superseded', 2, 'key:deleter');
    release();
    await archived;

    holding = new Promise<void>((r) => (held = r));
    gate = new Promise<void>((r) => (release = r));
    const pushed = a.pushVersion('superseded', bytesOf(file), { sizeBytes: BigInt(fs.statSync(file).size) }, 'key:pusher');
    await holding;
    await b.deleteVersion('superseded', 3, 'key:deleter');
    release();
    expect((await pushed).version).toBe(3);

    await b.flushOutboxes();
    expect((await eventsOf('superseded')).filter((e) => e.type.startsWith('version.') && e.principal !== 'anonymous')).toMatchObject([
      { type: 'version.archived', version: 2, principal: 'key:archiver' },
      { type: 'version.deleted', version: 2, principal: 'key:deleter' },
      { type: 'version.published', version: 3, principal: 'key:pusher' },
      { type: 'version.deleted', version: 3, principal: 'key:deleter' },
    ]);
    expect((await b.getModel('superseded')).outbox).toBeUndefined();
  });

  it('gives up a version write its registry never made at the next write, not at a long flush interval', async () => {
    await registryApi.push('stuck', modelPath('fixtures/identity_fp32.onnx'));
    const kv = await metadataBucket(nc, 1);
    // A push's event a registry killed before its write left a minute ago; registries[0] flushes
    // every hour: the model's later events must not wait that long behind it.
    const version = (await kv.get(keys.version('stuck', 1)))!.json<VersionRecord>();
    const push = { ...newEvent({ type: 'version.published', model: 'stuck', version: 2, sha256: version.sha256, sizeBytes: 1, principal: 'key:test' }), time: new Date(Date.now() - 60_000).toISOString(), over: 0 };
    const entry = (await kv.get(keys.model('stuck')))!;
    await kv.update(keys.model('stuck'), JSON.stringify({ ...entry.json<ModelRecord>(), latestVersion: 2, outbox: [push] }), entry.revision);

    await registries[0]!.registry.editModel('stuck', { description: 'after the stuck push' }, undefined, 'key:editor');
    expect((await eventsOf('stuck')).filter((e) => e.type === 'model.config.changed' || (e.type === 'version.published' && e.version === 2))).toMatchObject([
      { type: 'model.config.changed', description: 'after the stuck push' },
    ]);
    expect((await kv.get(keys.model('stuck')))!.json<ModelRecord>().outbox).toBeUndefined();
    expect((await kv.get(keys.version('stuck', 2)))?.operation).toBe('DEL');
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

  it('takes an UpdateModel with its description and warm-up samples at their bounds, and announces it', async () => {
    await registryApi.push('at-bounds', modelPath('fixtures/identity_fp32.onnx'));
    // INFERMESH_MAX_MODEL_METADATA_BYTES and INFERMESH_MAX_WARMUP_CONFIG_BYTES at their defaults:
    // the record holds both once; its model.config.changed, carrying them too, is not stored in it.
    const description = descriptionOf('bounds', 256 * 1024 - 16);
    const raw = Buffer.alloc(Math.floor(((256 * 1024 - 200) * 3) / 4), 7); // as stored: base64, 256 KiB less the sample's fields
    const config = { warmup: [{ name: 'w', inputs: [{ name: 'x', dims: [1, 4], raw_data: raw }], count: 0 }] };
    const updated = await registryApi.updateModel('at-bounds', { description, config: config as never });
    expect(updated.description).toBe(description);
    const stored = (await (await metadataBucket(nc, 1)).get(keys.model('at-bounds')))!.json<ModelRecord>();
    expect(JSON.stringify(stored.config).length).toBeGreaterThan(256 * 1024 - 400);
    const announced = await waitFor('the change announced', async () => (await eventsOf('at-bounds')).find((e) => e.type === 'model.config.changed'));
    expect(announced).toMatchObject({ description, principal: expect.any(String) as unknown as string });
  });

  it('keeps taking writes while NATS takes none of their events, announcing the latest config once it does', async () => {
    await registryApi.push('piling', modelPath('fixtures/identity_fp32.onnx'));
    const { registry, publisher } = await registryWithOwnPublisher();
    await publisher.close();
    const config = warmupOf(200 * 1024);
    for (let i = 0; i < 12; i++) {
      await registry.editModel('piling', { description: descriptionOf(`edit ${i}`, 200 * 1024), config }, undefined, 'key:test');
    }
    // Pending config changes say the same (the record as it is when published): the oldest (its
    // publish perhaps under way) and the newest wait, their content not stored with them.
    const stored = (await (await metadataBucket(nc, 1)).get(keys.model('piling')))!;
    expect(stored.json<ModelRecord>().outbox?.map((e) => e.type)).toEqual(['model.config.changed', 'model.config.changed']);
    expect(stored.value.length).toBeLessThan(512 * 1024);

    expect(await registries[0]!.registry.flushOutboxes()).toBe(1);
    const changes = (await eventsOf('piling')).filter((e) => e.type === 'model.config.changed');
    expect(changes).toHaveLength(2);
    for (const change of changes) expect(change).toMatchObject({ description: descriptionOf('edit 11', 200 * 1024), principal: 'key:test' });
  });

  it('refuses a record larger than a NATS message RESOURCE_EXHAUSTED, saying what is large', async () => {
    await registryApi.push('too-large', modelPath('fixtures/identity_fp32.onnx'));
    const store = await connectNats(testConfig(nats.url), 'outbox-large', silentLogger);
    connections.push(store);
    // An operator raised INFERMESH_MAX_MODEL_METADATA_BYTES past what a record can hold.
    const registry = new Registry({
      kv: await metadataBucket(store, 1), artifacts: await artifactStore(store, 1), js: jetStreamOf(store).js, log: silentLogger,
      ...LIMITS, maxModelMetadataBytes: 2 * 1024 * 1024,
    });
    const err = await registry.editModel('too-large', { description: descriptionOf('large', 1024 * 1024) }, undefined, 'key:test').then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(MeshError);
    expect(err).toMatchObject({ code: ErrorCode.Overloaded, message: expect.stringMatching(/max_payload.*description and labels \d+/) as unknown as string });
    expect((await registry.getModel('too-large')).description).toBe('');
  });

  it('answers a write with the revision of what it wrote, not of a later write its publish outlasted', async () => {
    await registryApi.push('outlasted', modelPath('fixtures/identity_fp32.onnx'));
    const slow = await registryWithStallingPublisher();
    slow.stall();
    const first = slow.registry.editModel('outlasted', { labels: { team: 'a' } }, undefined, 'key:first');
    await waitFor('the first publish stalled', () => slow.waiting() > 0);
    // Another writer changes the description, and its registry publishes both writes' events.
    await registries[0]!.registry.editModel('outlasted', { description: 'set by the second' }, undefined, 'key:second');
    slow.release();
    const told = await first;
    expect(told.labels).toEqual({ team: 'a' });
    expect(told.description).toBe('');
    // The first writer's compare-and-set over what it was told must not undo the second's description.
    const again = await slow.registry.editModel('outlasted', { labels: { team: 'b' } }, told.revision, 'key:first').then(() => undefined, (e: unknown) => e);
    expect(again).toMatchObject({ code: ErrorCode.Conflict });
    expect((await registries[0]!.registry.getModel('outlasted')).description).toBe('set by the second');
  });

  it('answers a write within a few seconds when its publish stalls, leaving the events to the flush', async () => {
    await registryApi.push('stalled', modelPath('fixtures/identity_fp32.onnx'));
    const slow = await registryWithStallingPublisher();
    slow.stall();
    const answer = await within(slow.registry.editModel('stalled', { description: 'while NATS stalls' }, undefined, 'key:test'), 15_000);
    expect(answer).toMatchObject({ description: 'while NATS stalls' });
    slow.release(true);
    expect(await registries[0]!.registry.flushOutboxes('marked')).toBe(1);
    expect((await eventsOf('stalled')).filter((e) => e.type === 'model.config.changed')).toMatchObject([{ description: 'while NATS stalls' }]);
  });

  it('stops publishing an event another flush published, rather than storing it again past the duplicate window', async () => {
    await registryApi.push('stale', modelPath('fixtures/identity_fp32.onnx'));
    const kv = await metadataBucket(nc, 1);
    const pending = newEvent({ type: 'traffic.changed', model: 'stale', traffic: [{ version: 1, weight: 100 }], principal: 'key:test' });
    const entry = (await kv.get(keys.model('stale')))!;
    await kv.update(keys.model('stale'), JSON.stringify({ ...entry.json<ModelRecord>(), outbox: [pending] }), entry.revision);

    // A replica's flush stalls on its publish; another publishes the event, and a newer one.
    const slow = await registryWithStallingPublisher();
    slow.stall();
    const stalledFlush = slow.registry.flushOutbox('stale').catch(() => undefined);
    await waitFor('the flush stalled', () => slow.waiting() > 0);
    expect(await registries[0]!.registry.flushOutboxes()).toBe(1);
    await registries[0]!.registry.editModel('stale', { description: 'newer' }, undefined, 'key:test');
    await new Promise((r) => setTimeout(r, 300)); // past the stream's duplicate window
    // Its publish times out; a retry would store the event a second time, after the newer one.
    slow.release(true);
    await stalledFlush;
    const events = (await eventsOf('stale')).filter((e) => e.type === 'traffic.changed' || e.type === 'model.config.changed');
    expect(events.map((e) => e.id).filter((id) => id === pending.id)).toHaveLength(1);
    expect(events.at(-1)).toMatchObject({ type: 'model.config.changed', description: 'newer' });
  });

  it('reads, every interval, only the records of models with events pending', async () => {
    await registryApi.push('indexed', modelPath('fixtures/identity_fp32.onnx'));
    const reader = await registryWithStallingPublisher();
    await reader.registry.flushOutboxes('marked'); // takes off the index the models whose events are out
    reader.reads.length = 0;
    expect(await reader.registry.flushOutboxes('marked')).toBe(0);
    expect(reader.reads.filter((k) => k.startsWith('models.'))).toEqual([]);

    const { registry, publisher } = await registryWithOwnPublisher();
    await publisher.close();
    await registry.editModel('indexed', { description: 'pending' }, undefined, 'key:test');
    const index = (await (await metadataBucket(nc, 1)).get(keys.outboxIndex))!.json<OutboxIndex>();
    expect(index.models).toEqual(['indexed']);
    expect(await reader.registry.flushOutboxes('marked')).toBe(1);
    expect(reader.reads.filter((k) => k.startsWith('models.') && k !== keys.model('indexed'))).toEqual([]);
    expect((await eventsOf('indexed')).filter((e) => e.type === 'model.config.changed')).toMatchObject([{ description: 'pending' }]);
  });

  it('takes writes while the outbox index is full, their events left to the next write or a start-up\'s full read', async () => {
    const name = 'n'.repeat(128);
    await registryApi.push(name, modelPath('fixtures/identity_fp32.onnx'));
    const kv = await metadataBucket(nc, 1);
    const before = await kv.get(keys.outboxIndex);
    // An index as large as one NATS message holds (NATS took no event of thousands of models for a
    // while): one more name of 128 characters would not fit.
    const names = Array.from({ length: 8_010 }, (_, i) => `full-${i}-`.padEnd(128, 'x'));
    const frame = JSON.stringify({ schema: 1, models: [] }).length;
    let bytes = frame - 1;
    const models = names.filter((n) => (bytes += n.length + 3) <= 1024 * 1024 - 100);
    await kv.put(keys.outboxIndex, JSON.stringify({ schema: 1, models } satisfies OutboxIndex));
    try {
      const { registry, publisher } = await registryWithOwnPublisher();
      await publisher.close();
      await expect(registry.editModel(name, { description: 'while the index is full' }, undefined, 'key:test')).resolves.toMatchObject({ description: 'while the index is full' });
      expect((await kv.get(keys.outboxIndex))!.json<OutboxIndex>().models).toEqual(models);
      expect(await registries[0]!.registry.flushOutboxes('every-record')).toBeGreaterThanOrEqual(1);
      expect((await eventsOf(name)).filter((e) => e.type === 'model.config.changed')).toMatchObject([{ description: 'while the index is full' }]);
    } finally {
      if (before?.operation === 'PUT') await kv.put(keys.outboxIndex, before.value);
      else await kv.delete(keys.outboxIndex);
    }
  });

  it('warns of a model\'s pending events at a flush only when they are older than its interval', async () => {
    await registryApi.push('young', modelPath('fixtures/identity_fp32.onnx'));
    const { registry, publisher } = await registryWithOwnPublisher();
    await publisher.close();
    /** What a registry flushing every `outboxIntervalMs` logs of 'young' as it flushes the marked models. */
    const flushed = async (outboxIntervalMs: number) => {
      await registry.editModel('young', { description: `pending at ${outboxIntervalMs}` }, undefined, 'key:test');
      const store = await connectNats(testConfig(nats.url), 'outbox-flusher', silentLogger);
      connections.push(store);
      const lines: { level: string; msg: string }[] = [];
      const flusher = new Registry({
        kv: await metadataBucket(store, 1), artifacts: await artifactStore(store, 1), js: jetStreamOf(store).js, outboxIntervalMs,
        log: createLogger('registry', 'debug', {}, (l) => lines.push(JSON.parse(l) as { level: string; msg: string })),
        ...LIMITS,
      });
      await flusher.flushOutboxes('marked');
      return lines.filter((l) => l.msg.startsWith('publishing the events') && JSON.stringify(l).includes('"young"')).map((l) => l.level);
    };
    // Events of a second or two, at a flush every minute: most likely a write's own, its publish under way.
    expect(await flushed(60_000)).toEqual(['debug']);
    expect(await flushed(0)).toEqual(['warn']);
    expect((await eventsOf('young')).filter((e) => e.type === 'model.config.changed')).toMatchObject([{ description: 'pending at 60000' }, { description: 'pending at 0' }]);
  });
});
