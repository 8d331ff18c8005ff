// An event follower whose fetching ahead is bounded by bytes (INFERMESH_EVENT_FOLLOW_AHEAD_BYTES; that
// the bound holds, registry-stream-bounds.test.ts shows) still gets every event promptly, whatever
// their sizes up to NATS's max_payload, against a real nats-server: with nats.js's own pull threshold, a pull left with less room than the next event
// and no other asked for stalled delivery until nats.js missed heartbeats (9 of 40 events in 30 s).
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { DEFAULT_EVENT_FOLLOW_AHEAD_BYTES, ensureEventStream, followEvents, subjects } from '../../lib/events';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';

jest.setTimeout(120_000);

const KiB = 1024;

let nats: NatsServerProcess & { cleanup(): Promise<void> };
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startTestNats();
  nc = await connect({ servers: nats.url });
  await ensureEventStream(await jetstreamManager(nc), 1, 1000);
});

afterAll(async () => {
  await nc?.close();
  await nats?.cleanup();
});

/** An event of about `size` bytes (a long description). */
function event(i: number, size: number): Buffer {
  const base = JSON.stringify({ schema: 1, id: `e${i}`, time: new Date().toISOString(), model: 'm', type: 'model.config.changed', principal: 'x', description: '' });
  return Buffer.from(base.replace('"description":""', `"description":"${'a'.repeat(Math.max(0, size - base.length))}"`));
}

it.each<[string, number, (i: number, maxPayload: number) => number]>([
  ['events of 520 KiB, 300 KiB and 200 bytes', DEFAULT_EVENT_FOLLOW_AHEAD_BYTES, (i) => [520 * KiB, 300 * KiB, 200][i % 3]!],
  ['events of the largest size, 700 KiB and 200 bytes', DEFAULT_EVENT_FOLLOW_AHEAD_BYTES, (i, max) => [max - 512, 700 * KiB, 200][i % 3]!],
  ['events of 900 KiB, 300 KiB and 200 bytes, and a bound of 5 MiB', 5 * 1024 * KiB, (i) => [900 * KiB, 300 * KiB, 200][i % 3]!],
])('delivers every event promptly: %s', async (_what, ahead, sizeOf) => {
  const js = jetstream(nc);
  const maxPayload = nc.info!.max_payload;
  // Delivery is what is measured: an event the follower would skip as malformed is counted too.
  const got: string[] = [];
  const follower = await followEvents(js, (e) => void got.push(e.id), { aheadBytes: ahead, onBadEvent: (_err, seq) => void got.push(`#${seq}`) });
  try {
    for (let i = 0; i < 40; i++) await js.publish(subjects.event('m', 'model.config.changed'), event(i, sizeOf(i, maxPayload)));
    // Promptly: well before nats.js would notice missed heartbeats and pull again.
    const deadline = Date.now() + 5_000;
    while (got.length < 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(got.length).toBe(40);
  } finally {
    await follower.stop();
  }
});
