// WatchEvents cannot fill the event stream's consumer table, which routers and pods share
// (INFERMESH_EVENT_STREAM_MAX_CONSUMERS), against a real nats-server and a real registry with
// authentication on: a watch that ends deletes its consumer at once, so hundreds opened and
// cancelled leave the count where it was; one key past INFERMESH_REGISTRY_MAX_WATCHES_PER_CALLER
// open watches is RESOURCE_EXHAUSTED while another key still watches; and a table full anyway is
// RESOURCE_EXHAUSTED saying so, not INTERNAL with a stack in the log.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { InfermeshError, RegistryApi, type EventWatch } from '../../client/index';
import { newApiKey } from '../../lib/auth/api-keys';
import { resources } from '../../lib/nats';
import { subjects } from '../../lib/events';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { bootstrapAuthEnv, recentLogger, startTestRegistry, testConfig } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import type { RegistryService } from '../../services/registry/registry-service';

jest.setTimeout(120_000);

/** A small consumer table, so filling it is quick. */
const CONSUMER_BOUND = 64;
const S = resources.eventStream;

/** What a watch's start was refused with. */
async function refusalOf(watch: EventWatch): Promise<InfermeshError> {
  const err = await watch.ready.then(() => undefined, (e: unknown) => e);
  watch.cancel();
  if (!(err instanceof InfermeshError)) throw new Error(`expected the watch to be refused, got ${String(err)}`);
  return err;
}

describe('WatchEvents and the event stream\'s consumers', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let service: RegistryService;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let dir: string;
  let address: string;
  let admin: RegistryApi;
  let baseline: number;
  const log = recentLogger('registry', 200);
  const bootstrap = newApiKey();
  const opened: RegistryApi[] = [];
  const registryAs = (token: string) => {
    const api = new RegistryApi(address, { token });
    opened.push(api);
    return api;
  };
  const consumers = async () => (await jsm.streams.info(S)).state.consumer_count;
  /** A key with `read` on modelA only, as the hostile caller had. */
  const readerOfModelA = async (name: string) => (await admin.createKey(name, ['read:modelA'])).token;
  /** A live watch of modelA's new events. */
  const liveWatch = async (api: RegistryApi) => {
    const watch = api.watchEvents({ model: 'modelA', onlyNew: true });
    await watch.ready;
    return watch;
  };
  /** Waits until the registry holds no consumer beyond those it had at start. */
  const backToBaseline = () => waitFor('the watches\' consumers to be deleted', async () => (await consumers()) <= baseline, 10_000);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-watch-limits-'));
    const auth = bootstrapAuthEnv(dir, bootstrap.token);
    nats = await startTestNats();
    service = await startTestRegistry(nats.url, {
      ...auth,
      INFERMESH_EVENT_STREAM_MAX_CONSUMERS: String(CONSUMER_BOUND),
    }, log.logger);
    address = `127.0.0.1:${service.port}`;
    admin = registryAs(bootstrap.token);
    nc = await connect({ servers: nats.url });
    jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(S)).config.max_consumers).toBe(CONSUMER_BOUND);
    // The registry's own (the console's follower).
    baseline = await consumers();
    expect(baseline).toBeLessThan(8);
  });

  afterAll(async () => {
    for (const api of opened) api.close();
    await nc?.close();
    await service?.shutdown(5_000);
    await nats?.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('deletes a watch\'s consumer once it is cancelled: 200 watches opened and cancelled leave the count as it was', async () => {
    const reader = registryAs(await readerOfModelA('looping-reader'));
    // More than three times the table, a few at a time (each cancelled once it is live).
    for (let wave = 0; wave < 50; wave++) {
      const watches = await Promise.all(Array.from({ length: 4 }, () => liveWatch(reader)));
      for (const w of watches) w.cancel();
    }
    await backToBaseline();
    // The table has room for everyone: the admin (and any router or pod) still gets a consumer.
    const watch = await liveWatch(admin);
    watch.cancel();
    await backToBaseline();
  });

  it('keeps one key to INFERMESH_REGISTRY_MAX_WATCHES_PER_CALLER open watches (on any connection); another key still watches', async () => {
    const cap = testConfig(nats.url).registryMaxWatchesPerCaller;
    expect(cap).toBeLessThan(CONSUMER_BOUND / 2);
    const token = await readerOfModelA('greedy-reader');
    // The same key over two connections: the cap is the caller's, not a connection's.
    const [one, two] = [registryAs(token), registryAs(token)];
    const open = await Promise.all(Array.from({ length: cap }, (_, i) => liveWatch(i % 2 === 0 ? one : two)));
    try {
      const err = await refusalOf(two.watchEvents({ model: 'modelA', onlyNew: true }));
      expect(err.code).toBe('Overloaded');
      expect(err.grpcCode).toBe(8); // RESOURCE_EXHAUSTED
      expect(err.message).toContain('INFERMESH_REGISTRY_MAX_WATCHES_PER_CALLER');
      expect(await consumers()).toBe(baseline + cap);

      // Another key, and the admin, are not held back by it.
      const other = await liveWatch(registryAs(await readerOfModelA('patient-reader')));
      const admins = await liveWatch(admin);
      other.cancel();
      admins.cancel();

      // Once one of its watches ends, the key may open one again.
      open.pop()!.cancel();
      open.push(await waitFor('a slot given back', () => liveWatch(one).catch(() => undefined), 10_000));
    } finally {
      for (const w of open) w.cancel();
    }
    await backToBaseline();
  });

  it('answers RESOURCE_EXHAUSTED, not INTERNAL, when the stream\'s consumer table is full anyway', async () => {
    // Another party (other replicas, a pod's flood) holds every consumer the stream may have.
    const fillers: string[] = [];
    for (let n = await consumers(); n < CONSUMER_BOUND; n++) {
      const name = `filler-${n}`;
      await jsm.consumers.add(S, { name, durable_name: name, ack_policy: AckPolicy.None, filter_subject: subjects.eventsAll });
      fillers.push(name);
    }
    const reader = registryAs(await readerOfModelA('late-reader'));
    try {
      expect(await consumers()).toBe(CONSUMER_BOUND);
      // More refused watches than one caller's cap: a refused watch gives its slot back.
      for (let i = 0; i < 20; i++) {
        const err = await refusalOf((i % 2 === 0 ? admin : reader).watchEvents({ model: 'modelA', onlyNew: true }));
        expect(err.code).toBe('Overloaded');
        expect(err.grpcCode).toBe(8);
        expect(err.message).toContain('INFERMESH_EVENT_STREAM_MAX_CONSUMERS');
        expect(err.message).not.toMatch(/internal error/);
      }
      expect(log.lines.filter((l) => l.includes('unexpected error'))).toEqual([]);
    } finally {
      for (const name of fillers) await jsm.consumers.delete(S, name);
    }
    // Room again: watches start.
    const watch = await liveWatch(reader);
    watch.cancel();
    await backToBaseline();
  });
});
