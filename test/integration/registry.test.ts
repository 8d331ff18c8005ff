// The registry against a real nats-server: push, list, get and pull; rejected pushes leave nothing;
// concurrent pushes get distinct consecutive versions; identical bytes are stored once; and every
// model, version, artifact and event survives a restart of both the registry and NATS.
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { jetstreamManager } from '@nats-io/jetstream';
import { RegistryApi, InfermeshError, type WatchedEvent } from '../../client/index';
import { resources } from '../../lib/nats';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startTestRegistry } from '../helpers/services';
import { modelPath } from '../helpers/models';
import type { RegistryService } from '../../services/registry/registry-service';

jest.setTimeout(60_000);

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * Room for 20 pushes of one client at once: what is tested here is how concurrent pushes get their
 * versions, not how many one caller may have in progress (registry-uploads.test.ts).
 */
const PUSHES_AT_ONCE = { INFERMESH_REGISTRY_MAX_UPLOADS_PER_CALLER: '20', INFERMESH_REGISTRY_MAX_UPLOADS: '20' };

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
async function lastEventSequence(natsUrl: string): Promise<number> {
  const nc = await connect({ servers: natsUrl });
  try {
    return (await (await jetstreamManager(nc)).streams.info(resources.eventStream)).state.last_seq;
  } finally {
    await nc.close();
  }
}

describe('registry', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let service: RegistryService;
  let client: RegistryApi;
  const addSub = fs.readFileSync(modelPath('fixtures/add_sub_fp32.onnx'));
  const identity = fs.readFileSync(modelPath('fixtures/identity_int64.onnx'));

  beforeAll(async () => {
    nats = await startTestNats();
    service = await startTestRegistry(nats.url, PUSHES_AT_ONCE);
    client = new RegistryApi(`127.0.0.1:${service.port}`);
  });

  afterAll(async () => {
    client?.close();
    await service?.shutdown(5_000);
    await nats?.cleanup();
  });

  it('pushes, lists, gets and pulls a version with its sha256 and signature intact', async () => {
    const v = await client.push('add-sub', addSub, { chunkBytes: 37 });
    expect(v).toMatchObject({ model: 'add-sub', version: 1, sha256: sha(addSub), size_bytes: String(addSub.length), state: 'VERSION_STATE_AVAILABLE' });
    expect(v.inputs).toEqual([
      { name: 'INPUT0', datatype: 'FP32', shape: ['-1', '4'] },
      { name: 'INPUT1', datatype: 'FP32', shape: ['-1', '4'] },
    ]);
    expect(v.outputs.map((o) => o.name)).toEqual(['OUTPUT0', 'OUTPUT1']);
    const models = await client.models();
    expect(models.map((m) => ({ name: m.name, latest: m.latest_version, traffic: m.traffic }))).toEqual([
      { name: 'add-sub', latest: 1, traffic: [{ version: 1, weight: 100 }] },
    ]);
    expect(await client.version('add-sub', 1)).toEqual(v);
    expect(await client.version('add-sub', 0)).toEqual(v);
    expect((await client.versions('add-sub')).map((x) => x.version)).toEqual([1]);
    const pulled = await client.pull('add-sub', 1);
    expect(sha(pulled)).toBe(sha(addSub));
  });

  it.each([
    ['a wrong expected sha256', () => client.push('rejects', addSub, { expectedSha256: '0'.repeat(64) }), /artifact sha256 is [0-9a-f]{64}, but the client expected 0{64}/],
    ['a garbage file', () => client.push('rejects', Buffer.from('this is not an onnx model, just text'.repeat(10))), /not a servable ONNX model/],
    ['an empty file', () => client.push('rejects', Buffer.alloc(0)), /an artifact is never empty/],
    ['a bad model name', () => client.push('bad/name', addSub), /model name 'bad\/name' is invalid/],
  ])('rejects %s with INVALID_ARGUMENT and stores nothing', async (_name, push, message) => {
    const before = await storedObjects(nats.url);
    const err = (await push().catch((e: unknown) => e)) as InfermeshError;
    expect(err).toBeInstanceOf(InfermeshError);
    expect(err.grpcCode).toBe(3);
    expect(err.message).toMatch(message);
    expect(await storedObjects(nats.url)).toEqual(before);
    expect((await client.models()).map((m) => m.name)).not.toContain('rejects');
  });

  it('answers NOT_FOUND for unknown models and versions', async () => {
    await expect(client.model('nope')).rejects.toMatchObject({ grpcCode: 5, message: "model 'nope' not found" });
    await expect(client.version('add-sub', 99)).rejects.toMatchObject({ grpcCode: 5, message: "model 'add-sub' has no version 99" });
    await expect(client.pull('add-sub', 99)).rejects.toMatchObject({ grpcCode: 5 });
  });

  it('gives 20 concurrent pushes to one model 20 distinct consecutive versions', async () => {
    const versions = await Promise.all(Array.from({ length: 20 }, () => client.push('concurrent', identity)));
    expect(versions.map((v) => v.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const model = await client.model('concurrent');
    expect(model.latest_version).toBe(20);
    // The model's first version serves as soon as it is stored (whichever push got there first);
    // later versions wait for a rollout.
    expect(model.traffic).toHaveLength(1);
    expect(model.traffic[0]!.weight).toBe(100);
  });

  it('stores the same bytes once', async () => {
    const before = await storedObjects(nats.url);
    const a = await client.push('dedupe-a', addSub);
    const b = await client.push('dedupe-b', addSub);
    expect(a.sha256).toBe(b.sha256);
    expect(await storedObjects(nats.url)).toEqual(before); // add_sub's bytes were already stored
    expect(before.filter((n) => n === sha(addSub))).toHaveLength(1);
  });

  /** Every event stored so far, read through WatchEvents from the beginning. */
  async function allEvents(): Promise<WatchedEvent[]> {
    const last = await lastEventSequence(nats.url);
    const watch = client.watchEvents();
    const events: WatchedEvent[] = [];
    for await (const e of watch) {
      events.push(e);
      if (e.sequence >= last) break;
    }
    return events;
  }

  it('keeps every model, version, artifact and event across a restart of the registry and NATS', async () => {
    const models = await client.models();
    const versions = await client.versions('concurrent');
    const events = await allEvents();
    expect(events.map((e) => e.sequence)).toEqual(Array.from({ length: events.length }, (_, i) => i + 1));
    expect(events.filter((e) => e.event.type === 'version.published')).toHaveLength(23); // 1 + 20 + 2
    client.close();
    await service.shutdown(5_000);
    await nats.stop();
    await nats.restart();
    service = await startTestRegistry(nats.url, PUSHES_AT_ONCE);
    client = new RegistryApi(`127.0.0.1:${service.port}`);
    expect(await client.models()).toEqual(models);
    expect(await client.versions('concurrent')).toEqual(versions);
    expect(sha(await client.pull('add-sub', 1))).toBe(sha(addSub));
    expect(await allEvents()).toEqual(events);
  });
});
