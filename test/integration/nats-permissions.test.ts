// The control plane on a nats-server run as the local mesh runs it (cli/local-mesh/nats-auth.ts,
// permissions from lib/nats-permissions.ts): a stranger is refused; each kind's identity can do
// what its service does and nothing that would forge the control plane (a pod cannot publish
// events, rollout metrics, routers' subjects, nor write the KV buckets or the object store; a router
// cannot write KV); and the real registry, router and pod still work end to end, each with its own.
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { AckPolicy } from '@nats-io/jetstream';
import { createUser } from '@nats-io/nkeys';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, nkeyAuthenticator, type Subscription } from '@nats-io/transport-node';
import { startLocalMesh } from '../../cli/local-mesh/mesh';
import { jetStreamOf, metadataBucket, connectNats, resources, type NatsConnection } from '../../lib/nats';
import { inboxPrefixOf, type NatsIdentityKind } from '../../lib/nats-permissions';
import { encodePlacementDemand, subjects, publishEvent, type MeshEvent } from '../../lib/events';
import { encodeWindowReport, windowSubject } from '../../lib/window-stats';
import { KEYS_BUCKET, newApiKey } from '../../lib/auth';
import { silentLogger } from '../../lib/log';
import { InferenceApi, RegistryApi } from '../../client/index';
import { heldOutDigits } from '../../tools/models/mnist-data';
import { startSecuredTestNats } from '../helpers/nats';
import { startTestPod, startTestRegistry, startTestRouter } from '../helpers/services';
import { modelPath } from '../helpers/models';
import { waitFor } from '../helpers/wait';
import type { RegistryService } from '../../services/registry/registry-service';

jest.setTimeout(180_000);

type Nats = Awaited<ReturnType<typeof startSecuredTestNats>>;

describe('NATS identities and permissions', () => {
  let nats: Nats;
  let registry: RegistryService;
  const conns: NatsConnection[] = [];
  const byKind: Partial<Record<NatsIdentityKind, NatsConnection>> = {};

  /** A connection with `kind`'s seed and inbox, as its service makes it. */
  async function connectAs(kind: NatsIdentityKind): Promise<NatsConnection> {
    const nc = await connectNats({ natsUrl: nats.url, natsUser: '', natsPassword: '', natsToken: '', natsNkeySeedFile: nats.credentials.seedFiles[kind] }, `test-${kind}`, silentLogger, { inboxPrefix: inboxPrefixOf(kind) });
    conns.push(nc);
    return nc;
  }
  const conn = (kind: NatsIdentityKind) => byKind[kind]!;

  /**
   * Whether a core publish by `kind` on `subject` reaches a subscriber (the admin's): `kind` publishes
   * and flushes (the server has routed it), then the admin publishes a marker behind it.
   */
  async function delivered(kind: NatsIdentityKind, subject: string): Promise<boolean> {
    const seen: string[] = [];
    const sub = conn('admin').subscribe(subject, { callback: (e, m) => void (e || seen.push(m.string())) });
    await conn('admin').flush();
    conn(kind).publish(subject, `from ${kind}`);
    await conn(kind).flush();
    conn('admin').publish(subject, 'marker');
    await waitFor('the marker', () => seen.includes('marker'), 10_000, 10);
    sub.unsubscribe();
    return seen.includes(`from ${kind}`);
  }

  /** Whether `kind` may subscribe to `subject`: the server closes a refused subscription with a permission error. */
  async function subscribeRefused(kind: NatsIdentityKind, subject: string): Promise<boolean> {
    const got: string[] = [];
    let refusal: Error | undefined;
    const sub: Subscription = conn(kind).subscribe(subject, {
      callback: (e, m) => {
        if (e) refusal = e;
        else got.push(m.string());
      },
    });
    await conn(kind).flush();
    conn('admin').publish(subject.replace(/>$/, 'x').replace(/\*/g, 'x'), 'seen');
    await conn('admin').flush();
    await waitFor(`${kind}'s subscription to ${subject} refused or served`, () => refusal !== undefined || got.length > 0, 5_000, 10).catch(() => undefined);
    if (!sub.isClosed()) sub.unsubscribe();
    return refusal !== undefined && /permission/i.test(String(refusal)) && got.length === 0;
  }

  /** The event stream's consumer bound in this suite: room for the services' followers and a flood's worth to refuse. */
  const CONSUMER_BOUND = 24;
  const jsmOf = (kind: NatsIdentityKind) => jetStreamOf(conn(kind)).jsm;

  const event = (model: string): MeshEvent => ({ schema: 1, id: `forged-${Math.random()}`, time: new Date().toISOString(), type: 'model.created', model }) as MeshEvent;

  beforeAll(async () => {
    nats = await startSecuredTestNats();
    registry = await startTestRegistry(nats.url, { INFERMESH_NATS_NKEY_SEED_FILE: nats.credentials.seedFiles.registry, INFERMESH_EVENT_STREAM_MAX_CONSUMERS: String(CONSUMER_BOUND) });
    for (const kind of ['registry', 'router', 'pod', 'admin'] as const) byKind[kind] = await connectAs(kind);
    // The keys bucket as the registry makes it.
    await (await new Kvm(conn('registry')).create(KEYS_BUCKET, { history: 1 })).put('0123456789abcdef', '{"id":"0123456789abcdef"}');
  });

  afterAll(async () => {
    for (const nc of conns) await nc.close().catch(() => undefined);
    await registry?.shutdown(5_000);
    await nats?.cleanup();
  });

  it('refuses a client without credentials, and one with an nkey the server was not given', async () => {
    await expect(connect({ servers: nats.url, reconnect: false })).rejects.toThrow(/authorization/i);
    const stranger = createUser();
    await expect(connect({ servers: nats.url, reconnect: false, authenticator: nkeyAuthenticator(stranger.getSeed()) })).rejects.toThrow(/authorization/i);
  });

  it('a pod publishes heartbeats and nothing of the control plane', async () => {
    expect(await delivered('pod', subjects.heartbeat)).toBe(true);
    // Rollout metrics, the routers' discover request, events: none gets through.
    expect(await delivered('pod', windowSubject('mnist'))).toBe(false);
    expect(await delivered('pod', subjects.discover)).toBe(false);
    expect(await delivered('pod', subjects.event('mnist', 'traffic.changed'))).toBe(false);
    expect(await delivered('router', windowSubject('mnist'))).toBe(true);
    // Placement demands (which make the controller load a version on a pod): routers only.
    expect(await delivered('pod', subjects.placementDemand)).toBe(false);
    expect(await delivered('router', subjects.placementDemand)).toBe(true);

    const stored = async () => (await (await jetStreamOf(conn('admin')).jsm).streams.info(resources.eventStream)).state.messages;
    const before = await stored();
    await expect(publishEvent(jetStreamOf(conn('pod')).js, event('mnist'))).rejects.toThrow();
    expect(await stored()).toBe(before);
  });

  it('a pod cannot write the registry or keys KV buckets or the object store, nor read the keys', async () => {
    const kvAsRegistry = await metadataBucket(conn('registry'), 1);
    await kvAsRegistry.put('models.forged', '{"name":"forged"}');
    const podKv = await new Kvm(conn('pod')).open(resources.metadataBucket).catch(() => undefined);
    if (podKv) {
      await expect(podKv.put('models.forged', '{"name":"evil"}')).rejects.toThrow();
      await expect(podKv.delete('models.forged')).rejects.toThrow();
    }
    expect((await kvAsRegistry.get('models.forged'))?.string()).toBe('{"name":"forged"}');
    await expect(new Kvm(conn('pod')).open(KEYS_BUCKET).then((kv) => kv.get('0123456789abcdef'))).rejects.toThrow();

    const podStore = await new Objm(conn('pod')).open(resources.artifactBucket).catch(() => undefined);
    if (podStore) await expect(podStore.putBlob({ name: 'forged' }, new Uint8Array([1, 2, 3]))).rejects.toThrow();
    const store = await new Objm(conn('registry')).open(resources.artifactBucket);
    expect(await store.info('forged')).toBeNull();
  });

  it('a pod cannot listen to heartbeats or to another kind\'s replies', async () => {
    expect(await subscribeRefused('pod', subjects.heartbeat)).toBe(true);
    expect(await subscribeRefused('pod', '_INBOX.>')).toBe(true);
    expect(await subscribeRefused('pod', `${inboxPrefixOf('registry')}.>`)).toBe(true);
    expect(await subscribeRefused('pod', `$KV.${KEYS_BUCKET}.>`)).toBe(true);
    expect(await subscribeRefused('router', `${inboxPrefixOf('pod')}.>`)).toBe(true);
  });

  it('a router reads and watches the keys bucket but writes no KV, no event and no heartbeat', async () => {
    const keys = await new Kvm(conn('router')).open(KEYS_BUCKET);
    expect((await keys.get('0123456789abcdef'))?.string()).toBe('{"id":"0123456789abcdef"}');
    await expect(keys.put('0123456789abcdef', '{"id":"0123456789abcdef","grants":["admin"]}')).rejects.toThrow();
    await expect(keys.delete('0123456789abcdef')).rejects.toThrow();
    const registryKv = await new Kvm(conn('router')).open(resources.metadataBucket).catch(() => undefined);
    if (registryKv) await expect(registryKv.put('models.forged', '{}')).rejects.toThrow();
    const kvAsRegistry = await new Kvm(conn('registry')).open(KEYS_BUCKET);
    expect((await kvAsRegistry.get('0123456789abcdef'))?.string()).toBe('{"id":"0123456789abcdef"}');

    expect(await delivered('router', subjects.heartbeat)).toBe(false);
    expect(await delivered('router', subjects.event('mnist', 'traffic.changed'))).toBe(false);
    await expect(publishEvent(jetStreamOf(conn('router')).js, event('mnist'))).rejects.toThrow();
  });

  it('a router\'s and the registry\'s KV watches answer JetStream\'s flow control: megabytes of changes reach them', async () => {
    // A KV watch is a push consumer with flow control: past a few MiB delivered, the server waits
    // for the client's answer on $JS.FC.<stream>.> before it sends more, so a watch whose answer
    // is refused stops seeing changes (revoked keys, placements) for good.
    // Each change is numbered in its first byte. The watch is an ordered consumer: on a loaded
    // machine it may start again from the stream and skip values a later one replaced (the bucket
    // keeps one per key), so what counts is that the last change reaches it, not every one.
    const changes = 40;
    for (const [kind, bucket, key] of [['router', KEYS_BUCKET, 'fedcba9876543210'], ['registry', resources.metadataBucket, 'flow-control.test']] as const) {
      const watch = await (await new Kvm(conn(kind)).open(bucket)).watch({ key });
      let seen = 0;
      let last = -1;
      const done = (async () => {
        for await (const e of watch) {
          seen++;
          if (e.value.length > 0) last = e.value[0]!;
        }
      })();
      const writer = await new Kvm(conn('registry')).open(bucket);
      for (let i = 0; i < changes; i++) {
        const value = new Uint8Array(512 * 1024);
        value[0] = i;
        await writer.put(key, value);
      }
      await waitFor(`${kind}'s watch of ${bucket} to see the last of ${changes} changes`, () => last === changes - 1 || undefined, 15_000, 50).catch((err: unknown) => {
        throw new Error(`${String(err)}; it saw ${seen}, the last numbered ${last}`);
      });
      watch.stop();
      await done;
      await writer.purge(key);
    }
  });

  it('a pod or a router cannot delete a consumer the registry made', async () => {
    const S = resources.eventStream;
    await (await jsmOf('registry')).consumers.add(S, { durable_name: 'registry-owned', ack_policy: AckPolicy.Explicit, filter_subject: subjects.eventsAll });
    try {
      for (const kind of ['pod', 'router'] as const) {
        await expect((await jsmOf(kind)).consumers.delete(S, 'registry-owned')).rejects.toThrow();
        expect((await (await jsmOf('registry')).consumers.info(S, 'registry-owned')).name).toBe('registry-owned');
      }
    } finally {
      await (await jsmOf('registry')).consumers.delete(S, 'registry-owned');
    }
  });

  it('a pod creates no consumer on the event stream but the filtered kind its follower makes: no durable by the legacy or unfiltered subject', async () => {
    const S = resources.eventStream;
    const count = async () => (await (await jsmOf('admin')).streams.info(S)).state.consumer_count;
    const before = await count();
    const pod = await jsmOf('pod');
    const ask = (subject: string, config: object) => conn('pod').request(subject, JSON.stringify({ stream_name: S, config }), { timeout: 3_000 }).then((m) => m.string(), (e: unknown) => String(e));
    // The client's own durable create (by name, no filter in the subject), the legacy durable subject
    // and the legacy unnamed one: each refused by the server.
    await expect(pod.consumers.add(S, { durable_name: 'pod-durable', ack_policy: AckPolicy.Explicit })).rejects.toThrow();
    expect(await ask(`$JS.API.CONSUMER.DURABLE.CREATE.${S}.pod-durable`, { durable_name: 'pod-durable', ack_policy: 'explicit' })).toMatch(/permission/i);
    expect(await ask(`$JS.API.CONSUMER.CREATE.${S}`, { ack_policy: 'none' })).toMatch(/permission/i);
    expect(await ask(`$JS.API.CONSUMER.CREATE.${S}.pod-named`, { name: 'pod-named', ack_policy: 'none' })).toMatch(/permission/i);
    // A filter outside the events subjects is refused too; the follower's own kind is made.
    expect(await ask(`$JS.API.CONSUMER.CREATE.${S}.pod-other.infermesh.pods.>`, { name: 'pod-other', ack_policy: 'none', filter_subject: 'infermesh.pods.>' })).toMatch(/permission/i);
    expect(await count()).toBe(before);
    const ordered = await jetStreamOf(conn('pod')).js.consumers.get(S, { filter_subjects: subjects.eventsAll });
    expect(await count()).toBe(before + 1);
    await (await jsmOf('admin')).consumers.delete(S, (await ordered.info(true)).name);
  });

  it('the event stream holds at most INFERMESH_EVENT_STREAM_MAX_CONSUMERS consumers: a pod\'s flood is refused there', async () => {
    const S = resources.eventStream;
    const admin = await jsmOf('admin');
    expect((await admin.streams.info(S)).config.max_consumers).toBe(CONSUMER_BOUND);
    const before = (await admin.streams.info(S)).state.consumer_count;
    const pod = await jsmOf('pod');
    const made: string[] = [];
    let refusal: unknown;
    try {
      for (let i = 0; i < CONSUMER_BOUND + 5 && refusal === undefined; i++) {
        // What the named create cannot refuse: a durable config with the follower's filter.
        const name = `pod-flood-${i}`;
        await pod.consumers.add(S, { name, durable_name: name, ack_policy: AckPolicy.None, filter_subject: subjects.eventsAll }).then(() => made.push(name), (e: unknown) => (refusal = e));
      }
      expect(String(refusal)).toMatch(/maximum consumers/i);
      expect(before + made.length).toBe(CONSUMER_BOUND);
    } finally {
      for (const name of made) await admin.consumers.delete(S, name);
    }
  });

  it('the registry writes KV, the object store and events, and publishes no heartbeat or metrics', async () => {
    const kv = await metadataBucket(conn('registry'), 1);
    await kv.put('models.by-registry', '{}');
    expect((await kv.get('models.by-registry'))?.string()).toBe('{}');
    const store = await new Objm(conn('registry')).open(resources.artifactBucket);
    await store.putBlob({ name: 'by-registry' }, new Uint8Array([1, 2, 3]));
    expect(await store.getBlob('by-registry')).toEqual(new Uint8Array([1, 2, 3]));
    expect(await publishEvent(jetStreamOf(conn('registry')).js, event('by-registry'))).toBeGreaterThan(0);
    expect(await delivered('registry', subjects.heartbeat)).toBe(false);
    // It may ask pods to announce themselves (it shows them), as routers do.
    expect(await delivered('registry', subjects.discover)).toBe(true);
    expect(await delivered('registry', windowSubject('mnist'))).toBe(false);
  });

  it('placement demands reach the registry only from routers', async () => {
    const demand = (router: string) => encodePlacementDemand({ schema: 1, router, model: 'mnist', version: 1, waiting: 1 });
    const seen: string[] = [];
    const sub = conn('registry').subscribe(subjects.placementDemand, { callback: (e, m) => void (e || seen.push(m.string())) });
    await conn('registry').flush();
    for (const kind of ['pod', 'router'] as const) {
      conn(kind).publish(subjects.placementDemand, demand(kind));
      await conn(kind).flush();
    }
    await waitFor('the router\'s demand', () => seen.some((s) => s.includes('"router":"router"')), 10_000, 10);
    sub.unsubscribe();
    expect(seen.filter((s) => s.includes('"router":"pod"'))).toEqual([]);
  });

  it('rollout metrics reach the registry only from routers', async () => {
    const report = (router: string) => encodeWindowReport({ schema: 1, router, model: 'mnist', windowStart: Date.now(), windowMs: 1_000, versions: [] });
    const seen: string[] = [];
    const sub = conn('registry').subscribe('infermesh.metrics.>', { callback: (e, m) => void (e || seen.push(m.string())) });
    await conn('registry').flush();
    for (const kind of ['pod', 'router'] as const) {
      conn(kind).publish(windowSubject('mnist'), report(kind));
      await conn(kind).flush();
    }
    await waitFor('the router\'s report', () => seen.some((s) => s.includes('"router":"router"')), 10_000, 10);
    sub.unsubscribe();
    expect(seen.filter((s) => s.includes('"router":"pod"'))).toEqual([]);
  });

  it('the registry, a router and a pod, each with its own identity, serve a pushed model', async () => {
    const pod = await startTestPod(nats.url, registry.port, { INFERMESH_NATS_NKEY_SEED_FILE: nats.credentials.seedFiles.pod });
    const router = await startTestRouter(nats.url, registry.port, { INFERMESH_NATS_NKEY_SEED_FILE: nats.credentials.seedFiles.router });
    const registryApi = new RegistryApi(`127.0.0.1:${registry.port}`);
    const api = new InferenceApi(`127.0.0.1:${router.port}`);
    try {
      await registryApi.push('mnist', modelPath('mnist.onnx'));
      // Served, not only ready: the router may answer ModelReady before its own view has the pod.
      await waitFor('mnist through the router', () => api.infer('mnist', [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: new Float32Array(784) }]).then(() => true, () => false), 60_000);
      const digits = heldOutDigits(10);
      let correct = 0;
      for (const d of digits) {
        const res = await api.infer('mnist', [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: d.pixels }]);
        const p = Array.from(res.outputs[0]!.data as Float32Array);
        if (p.indexOf(Math.max(...p)) === d.label) correct++;
      }
      expect(correct).toBeGreaterThanOrEqual(8);
    } finally {
      api.close();
      registryApi.close();
      await router.shutdown(5_000);
      await pod.shutdown(5_000);
    }
  });
});

describe('the local mesh (npm start)', () => {
  it('runs NATS that refuses strangers, with fresh private seeds and each service given only its own', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-nats-mesh-'));
    const first = await startLocalMesh({ dataDir, routerPort: 0, registryPort: 0, pods: 1 });
    let firstSeeds: string[] = [];
    try {
      const creds = first.natsCredentials!;
      await expect(connect({ servers: first.natsUrl, reconnect: false })).rejects.toThrow(/authorization/i);
      expect(fs.statSync(path.dirname(creds.configFile)).mode & 0o777).toBe(0o700);
      for (const file of [creds.configFile, ...Object.values(creds.seedFiles)]) expect({ file, mode: fs.statSync(file).mode & 0o777 }).toEqual({ file, mode: 0o600 });
      firstSeeds = Object.values(creds.seedFiles).map((f) => fs.readFileSync(f, 'utf8'));
      expect(new Set(firstSeeds).size).toBe(4);
      const conf = fs.readFileSync(creds.configFile, 'utf8');
      for (const seed of firstSeeds) expect(conf).not.toContain(seed.trim());
      // Each process was given its own kind's seed file and no other.
      const seedOf = (pid: number) => fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith('INFERMESH_NATS_NKEY_SEED_FILE='))?.split('=')[1];
      expect(seedOf(first.registry.pid)).toBe(creds.seedFiles.registry);
      expect(seedOf(first.router.pid)).toBe(creds.seedFiles.router);
      expect(seedOf(first.pods[0]!.pid)).toBe(creds.seedFiles.pod);
      // The services work with them: the router sees the pod.
      const api = new InferenceApi(first.routerAddress);
      try {
        await waitFor('the router to answer', () => api.modelReady('none').then(() => true, (e: { grpcCode?: number }) => e.grpcCode === 5), 30_000);
      } finally {
        api.close();
      }
    } finally {
      await first.stop();
    }
    // The next start makes new identities: the old seeds are let in no more.
    const second = await startLocalMesh({ dataDir, routerPort: 0, registryPort: 0, pods: 0 });
    try {
      const old = firstSeeds[0]!.trim();
      expect(fs.readFileSync(second.natsCredentials!.seedFiles.registry, 'utf8').trim()).not.toBe(old);
      await expect(connect({ servers: second.natsUrl, reconnect: false, authenticator: nkeyAuthenticator(new TextEncoder().encode(old)) })).rejects.toThrow(/authorization/i);
    } finally {
      await second.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('start order', () => {
  it('a pod that starts before the registry waits for the event stream it may not create', async () => {
    const nats = await startSecuredTestNats();
    try {
      let started = false;
      const pod = startTestPod(nats.url, 1, { INFERMESH_NATS_NKEY_SEED_FILE: nats.credentials.seedFiles.pod }).then((p) => {
        started = true;
        return p;
      });
      await new Promise((r) => setTimeout(r, 1_500));
      expect(started).toBe(false);
      const registry = await startTestRegistry(nats.url, { INFERMESH_NATS_NKEY_SEED_FILE: nats.credentials.seedFiles.registry });
      try {
        await (await pod).shutdown(5_000);
      } finally {
        await registry.shutdown(5_000);
      }
    } finally {
      await nats.cleanup();
    }
  });
});

describe('authentication on', () => {
  it('the registry makes the keys bucket and a router follows it, each under its own identity', async () => {
    const nats = await startSecuredTestNats();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-nats-auth-'));
    const admin = newApiKey();
    fs.writeFileSync(path.join(dir, 'token'), admin.token, { mode: 0o600 });
    const registry = await startTestRegistry(nats.url, { INFERMESH_NATS_NKEY_SEED_FILE: nats.credentials.seedFiles.registry, INFERMESH_AUTH: 'true', INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE: path.join(dir, 'token') });
    const router = await startTestRouter(nats.url, registry.port, { INFERMESH_NATS_NKEY_SEED_FILE: nats.credentials.seedFiles.router, INFERMESH_AUTH: 'true' });
    const anonymous = new InferenceApi(`127.0.0.1:${router.port}`);
    const withKey = new InferenceApi(`127.0.0.1:${router.port}`, { token: admin.token });
    try {
      await expect(anonymous.modelReady('mnist')).rejects.toMatchObject({ grpcCode: 16 });
      // The bootstrap key, stored by the registry, is read by the router: the call is answered
      // (not ready: no such model). A router that cannot read the keys answers UNAVAILABLE.
      await waitFor('the router to know the bootstrap key', () => withKey.modelReady('mnist').then((ready) => ready === false, () => false), 10_000);
    } finally {
      anonymous.close();
      withKey.close();
      await router.shutdown(5_000);
      await registry.shutdown(5_000);
      await nats.cleanup();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
