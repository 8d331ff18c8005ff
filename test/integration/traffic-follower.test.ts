// The traffic follower against a real registry and NATS: a slow full sync (its ListModels answer
// held back until an event about the same model was applied) never takes a model backwards, nor
// drops a model created after its list was read; a model whose record is really gone is dropped.
import { connectNats, jetStreamOf, metadataBucket, type NatsConnection } from '../../lib/nats';
import { registryClient } from '../../lib/grpc/client';
import type { RegistryClient } from '../../lib/grpc/types';
import { silentLogger } from '../../lib/log';
import { isCurrent, TrafficFollower } from '../../lib/traffic-follower';
import type { TrafficWeight } from '../../lib/events';
import { RolloutApi } from '../../client/index';
import { startTestMesh, type TestMesh } from '../helpers/mesh';
import { waitFor } from '../helpers/wait';
import { keys } from '../../services/registry/records';

jest.setTimeout(60_000);

/**
 * The real registry client, except that each ListModels answer (read by the registry when asked)
 * is handed over only once the test opens the gate: a full sync as slow as the test needs.
 */
function slowListing(real: RegistryClient) {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let answered = 0;
  const client = new Proxy(real, {
    get(target, prop, receiver) {
      if (prop !== 'ListModels') return Reflect.get(target, prop, receiver) as unknown;
      return (req: object, opts: object, cb: (err: unknown, res?: unknown) => void) =>
        target.ListModels(req, opts, (err, res) => {
          answered++;
          void gate.then(() => cb(err, res));
        });
    },
  });
  return {
    client,
    /** ListModels answers the registry gave so far (each waits for the gate). */
    answered: () => answered,
    /** Hands over the answers held, and every later one at once. */
    release: () => open(),
  };
}

describe('TrafficFollower', () => {
  let mesh: TestMesh;
  let nc: NatsConnection;
  let rollouts: RolloutApi;
  const followers: TrafficFollower[] = [];
  const clients: RegistryClient[] = [];

  beforeAll(async () => {
    mesh = await startTestMesh();
    nc = await connectNats({ natsUrl: mesh.nats.url, natsUser: '', natsPassword: '', natsToken: '' }, 'follower-test', silentLogger);
    rollouts = new RolloutApi(`127.0.0.1:${mesh.registry.port}`);
  });

  afterAll(async () => {
    for (const f of followers) await f.stop();
    for (const c of clients) c.close();
    rollouts.close();
    await nc.drain();
    await mesh.close();
  });

  /** A follower whose full syncs are held at a gate; records every call of its listener. */
  async function follower() {
    const real = registryClient(`127.0.0.1:${mesh.registry.port}`);
    clients.push(real);
    const slow = slowListing(real);
    const calls: { model: string; traffic: TrafficWeight[] }[] = [];
    const f = new TrafficFollower(nc, jetStreamOf(nc).js, slow.client, (model, traffic) => void calls.push({ model, traffic }), silentLogger, { resyncIntervalMs: 3_600_000 });
    followers.push(f);
    await f.start();
    return { f, slow, calls, last: (model: string) => calls.filter((c) => c.model === model).at(-1)?.traffic };
  }

  it('ignores a full sync read before a newer traffic split it answers after', async () => {
    await mesh.push('ordered', 'fixtures/identity_fp32.onnx');
    await mesh.push('ordered', 'fixtures/identity_fp32.onnx');
    await mesh.push('marker', 'fixtures/identity_fp32.onnx');
    const { f, slow, calls, last } = await follower();
    // The start-up sync read both models while 'ordered' served version 1; its answer is held.
    await waitFor('the start-up ListModels answered by the registry', () => slow.answered() === 1);
    expect(calls).toEqual([]);

    await rollouts.start('ordered', 2, { weight: 100 });
    await rollouts.promote('ordered');
    await waitFor('the promotion applied from its event', () => last('ordered')?.[0]?.version === 2);

    slow.release();
    await f.synced; // the stale list was applied
    expect(last('marker')).toEqual([{ version: 1, weight: 100 }]);
    expect(last('ordered')).toEqual([{ version: 2, weight: 100 }]);
    // Version 1 alone (what the held list said) was never passed on.
    expect(calls.filter((c) => c.model === 'ordered').map((c) => c.traffic)).not.toContainEqual([{ version: 1, weight: 100 }]);
  });

  it('keeps a model created after a slow list was read, and drops one whose record is gone', async () => {
    const { f, slow, calls, last } = await follower();
    await waitFor('the start-up ListModels answered by the registry', () => slow.answered() === 1);
    await mesh.push('late', 'fixtures/identity_fp32.onnx');
    await waitFor('the late model applied from its event', () => last('late')?.[0]?.version === 1);
    slow.release();
    await f.synced;
    // The list without 'late' did not drop it: the registry still has it.
    expect(calls.filter((c) => c.model === 'late' && c.traffic.length === 0)).toEqual([]);
    expect(last('late')).toEqual([{ version: 1, weight: 100 }]);

    // A record that is really gone (an emptied bucket) is dropped at the next full sync.
    const kv = await metadataBucket(nc, 1);
    await kv.purge(keys.model('late'));
    expect(await f.syncAll()).toBe(true);
    expect(last('late')).toEqual([]);
  });

  it.each([
    [undefined, '5', true],
    [5, '5', true],
    [5, '6', true],
    [6, '5', false],
    [6, '0', true], // a registry that does not say its revision
    [0, '3', true],
  ])('held %p, offered revision %p: current %p', (held, offered, expected) => {
    expect(isCurrent(held, offered)).toBe(expected);
  });
});
