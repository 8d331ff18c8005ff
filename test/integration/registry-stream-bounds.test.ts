// PullArtifact and WatchEvents hold a bounded amount for a client that does not read, and not for
// ever (INFERMESH_REGISTRY_MAX_STREAM_BUFFER_BYTES, INFERMESH_REGISTRY_SEND_TIMEOUT_MS), against a
// real nats-server and a real registry: a pull of a 12 MiB artifact that is never read keeps the
// bytes the registry has waiting for it within the bound (the object store is read no further) and
// is reset after the timeout, its store consumer gone; a watch that stops reading while events are
// published does the same and gives back its consumer on the event stream and its caller's slot; an
// idle watch with nothing waiting, and a pull whose reader is slow but steady, are not cut; and a
// watch that stops reading has fetched no more events ahead than INFERMESH_EVENT_FOLLOW_AHEAD_BYTES.
import { randomFillSync } from 'node:crypto';
import http2 from 'node:http2';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import * as grpc from '@grpc/grpc-js';
import { RegistryApi } from '../../client/index';
import { registryClient } from '../../lib/grpc/client';
import { protos } from '../../lib/grpc/proto';
import type { RegistryClient } from '../../lib/grpc/types';
import { subjects } from '../../lib/events';
import { resources } from '../../lib/nats';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startTestRegistry } from '../helpers/services';
import { varint } from '../helpers/protobuf';
import { waitFor } from '../helpers/wait';
import type { RegistryService } from '../../services/registry/registry-service';

jest.setTimeout(120_000);

const KiB = 1024;
const MiB = 1024 * KiB;
const BUFFER_BYTES = 512 * KiB;
const SEND_TIMEOUT_MS = 2_000;
const ARTIFACT_WEIGHT_BYTES = 12 * MiB;
/** The object store's chunk: the most one message of a pull takes. */
const CHUNK_BYTES = 128 * KiB;

// ---- A valid ONNX model (OUTPUT0 = Identity(INPUT0)) whose bulk is an unused initializer ----

const key = (field: number, wire: number) => varint(field * 8 + wire);
const int = (field: number, n: number) => Buffer.concat([key(field, 0), varint(n)]);
const bytes = (field: number, payload: Buffer | string) => {
  const b = Buffer.from(payload);
  return Buffer.concat([key(field, 2), varint(b.length), b]);
};
function valueInfo(name: string): Buffer {
  const dims = Buffer.concat([bytes(1, bytes(2, 'batch')), bytes(1, int(1, 4))]);
  return Buffer.concat([bytes(1, name), bytes(2, bytes(1, Buffer.concat([int(1, 1), bytes(2, dims)])))]);
}
function largeOnnx(weightBytes: number): Buffer {
  const node = bytes(1, Buffer.concat([bytes(1, 'INPUT0'), bytes(2, 'OUTPUT0'), bytes(3, 'identity'), bytes(4, 'Identity')]));
  const weights = randomFillSync(Buffer.alloc(weightBytes));
  const tensor = Buffer.concat([int(1, weightBytes), int(2, 2), bytes(8, 'weights'), bytes(9, weights)]);
  const graph = Buffer.concat([node, bytes(2, 'large'), bytes(5, tensor), bytes(11, valueInfo('INPUT0')), bytes(12, valueInfo('OUTPUT0'))]);
  return Buffer.concat([int(1, 8), bytes(8, int(2, 17)), bytes(7, graph)]);
}

/** How a call ended: its status code (the data it has not read still unread). */
function statusOf(call: grpc.ClientReadableStream<unknown>): Promise<number> {
  return new Promise((resolve) => {
    call.once('error', (err: grpc.ServiceError) => resolve(err.code));
    call.once('status', (s: grpc.StatusObject) => resolve(s.code));
  });
}

/**
 * A call opened over its own HTTP/2 connection whose answer is never read: node:http2 takes what
 * fits its 16 KiB buffer and the 64 KiB stream window, then stops (a grpc-js client reads ahead
 * into buffers of its own). `ended` resolves with the RST_STREAM code that ended it (0: none).
 */
function unreadCall(address: string, method: 'PullArtifact' | 'WatchEvents', request: object): { ended: Promise<number>; answered: Promise<void>; close(): void } {
  const def = protos().registry.Registry.service[method];
  const message = def.requestSerialize(request as never);
  const framed = Buffer.alloc(5 + message.length);
  framed.writeUInt32BE(message.length, 1);
  message.copy(framed, 5);
  const session = http2.connect(`http://${address}`);
  session.on('error', () => undefined);
  const stream = session.request({ ':method': 'POST', ':path': def.path, 'content-type': 'application/grpc', te: 'trailers' });
  stream.on('error', () => undefined);
  stream.end(framed);
  stream.pause();
  return {
    ended: new Promise((resolve) => stream.once('close', () => resolve(stream.rstCode ?? 0))),
    answered: new Promise((resolve) => stream.once('response', () => resolve())),
    close: () => session.destroy(),
  };
}

/** Resolves once a call's data has all been read. */
const readToEnd = (call: grpc.ClientReadableStream<unknown>) => new Promise((resolve) => call.once('end', resolve));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('registry streams a client does not read', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let service: RegistryService;
  let address: string;
  let api: RegistryApi;
  let raw: RegistryClient;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let artifactBytes: number;
  const storeConsumers = async () => (await jsm.streams.info(`OBJ_${resources.artifactBucket}`)).state.consumer_count;
  const eventConsumers = async () => (await jsm.streams.info(resources.eventStream)).state.consumer_count;

  /** Samples the bytes the registry has waiting for its streams every 20 ms for `ms`; the most seen. */
  const mostQueuedOver = async (ms: number) => {
    let most = 0;
    for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) most = Math.max(most, service.streams.queuedBytes);
    return most;
  };

  beforeAll(async () => {
    nats = await startTestNats();
    service = await startTestRegistry(nats.url, {
      INFERMESH_REGISTRY_MAX_STREAM_BUFFER_BYTES: String(BUFFER_BYTES),
      INFERMESH_REGISTRY_SEND_TIMEOUT_MS: String(SEND_TIMEOUT_MS),
      // One watch per caller (every client here is 127.0.0.1): a slot not given back refuses the next.
      INFERMESH_REGISTRY_MAX_WATCHES_PER_CALLER: '1',
    });
    address = `127.0.0.1:${service.port}`;
    api = new RegistryApi(address);
    raw = registryClient(address);
    const artifact = largeOnnx(ARTIFACT_WEIGHT_BYTES);
    artifactBytes = artifact.length;
    await api.push('big', artifact);
    nc = await connect({ servers: nats.url });
    jsm = await jetstreamManager(nc);
  });

  afterAll(async () => {
    raw?.close();
    api?.close();
    await nc?.close();
    await service?.shutdown(5_000);
    await nats?.cleanup();
  });

  it('keeps a pull that is never read within the buffer bound, then resets it and closes its store consumer', async () => {
    const before = await storeConsumers();
    const call = unreadCall(address, 'PullArtifact', { model: 'big', version: 1 });
    try {
      // The registry writes until the bound and waits there: the store is not read into memory.
      await waitFor('the pull to have bytes waiting', () => service.streams.queuedBytes > 0, 10_000);
      const most = await mostQueuedOver(SEND_TIMEOUT_MS / 2);
      expect(most).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(BUFFER_BYTES + CHUNK_BYTES + 16);
      expect(await storeConsumers()).toBe(before + 1);

      const started = Date.now();
      expect(await call.ended).toBe(http2.constants.NGHTTP2_CANCEL);
      expect(Date.now() - started).toBeLessThan(SEND_TIMEOUT_MS * 3);
      expect(service.streams.timedOut).toBe(1);
      await waitFor('the stream to give back what it held', () => service.streams.streams === 0 && service.streams.queuedBytes === 0, 5_000);
      await waitFor('the store consumer to be closed', async () => (await storeConsumers()) === before, 10_000);
    } finally {
      call.close();
    }
  });

  it('does not cut a pull whose reader is slow but steady', async () => {
    const call = raw.PullArtifact({ model: 'big', version: 1 });
    const ended = statusOf(call);
    const read = readToEnd(call);
    let received = 0;
    let pauses = 0;
    call.on('data', (m: { data: Buffer }) => {
      received += m.data.length;
      // Every 2 MiB read, a pause shorter than the send timeout, the stream paused meanwhile: in
      // all, three times the timeout without the stream ending.
      if (received >= (pauses + 1) * 2 * MiB) {
        pauses++;
        call.pause();
        setTimeout(() => call.resume(), SEND_TIMEOUT_MS / 2);
      }
    });
    expect(await ended).toBe(grpc.status.OK);
    await read;
    expect(received).toBe(artifactBytes);
    expect(pauses).toBeGreaterThan(4);
    expect(service.streams.timedOut).toBe(1);
    await waitFor('the stream to give back what it held', () => service.streams.streams === 0 && service.streams.queuedBytes === 0, 5_000);
  });

  it('leaves an idle watch open, and resets one that stops reading while events are published, giving back its consumer and slot', async () => {
    const baseline = await eventConsumers();
    const call = unreadCall(address, 'WatchEvents', { model: 'big', only_new: true, start_sequence: '0' });
    try {
      await call.answered;
      expect(await eventConsumers()).toBe(baseline + 1);
      let over = false;
      void call.ended.then(() => (over = true));

      // Nothing waits for an idle watch: the send timeout does not apply.
      await sleep(SEND_TIMEOUT_MS * 1.5);
      expect(over).toBe(false);

      // Events of about 200 KiB each, published while the client reads none of them: far more
      // than its window and the registry's bound together.
      const publishing = (async () => {
        for (let i = 0; i < 30 && !over; i++) await api.updateModel('big', { description: `${i}:${'d'.repeat(200 * KiB)}` });
      })();
      await waitFor('the watch to have bytes waiting', () => service.streams.queuedBytes > 0, 20_000);
      const most = await mostQueuedOver(SEND_TIMEOUT_MS / 2);
      expect(most).toBeGreaterThan(0);
      // The bound, and one event written when it was just under.
      expect(most).toBeLessThanOrEqual(BUFFER_BYTES + 256 * KiB);
      expect(await call.ended).toBe(http2.constants.NGHTTP2_CANCEL);
      await publishing;
      expect(service.streams.timedOut).toBe(2);
      await waitFor('the stream to give back what it held', () => service.streams.streams === 0 && service.streams.queuedBytes === 0, 5_000);
      await waitFor('the watch\'s consumer to be deleted', async () => (await eventConsumers()) === baseline, 10_000);
      // The caller's one watch slot is back: a new watch is taken.
      const watch = api.watchEvents({ model: 'big', onlyNew: true });
      await watch.ready;
      watch.cancel();
    } finally {
      call.close();
    }
  });
  it('fetches no more events ahead of a watch that stopped reading than its byte bound', async () => {
    // A registry of its own whose watches wait long (the default send timeout) and fetch ahead
    // what the setting allows at least: two of the largest events.
    const other = await startTestRegistry(nats.url, { INFERMESH_EVENT_FOLLOW_AHEAD_BYTES: String(2 * (MiB + 64 * KiB)) });
    const otherApi = new RegistryApi(`127.0.0.1:${other.port}`);
    const call = unreadCall(`127.0.0.1:${other.port}`, 'WatchEvents', { model: 'ahead', only_new: true, start_sequence: '0' });
    try {
      await otherApi.push('ahead', largeOnnx(1024));
      await call.answered;
      // 30 events of about 200 KiB published while the client reads none of them.
      for (let i = 0; i < 30; i++) await otherApi.updateModel('ahead', { description: `${i}:${'d'.repeat(200 * KiB)}` });
      await sleep(500);
      let delivered = 0;
      for await (const c of await jsm.consumers.list(resources.eventStream)) {
        const filter = subjects.eventsOf('ahead');
        if (c.config.filter_subject === filter || c.config.filter_subjects?.includes(filter)) delivered = Math.max(delivered, c.delivered.consumer_seq);
      }
      // What the client's window and the registry's buffer took (about 1.1 MiB: 6 events), one in
      // the sender's hands, and the bound's worth (11 more): nats.js's own 100 messages would be
      // every event, the push's and the 30.
      expect(delivered).toBeGreaterThan(0);
      expect(delivered).toBeLessThanOrEqual(20);
    } finally {
      call.close();
      otherApi.close();
      await other.shutdown(5_000);
    }
  });
});
