// A pod's answers to discover requests, against a real nats-server: a request as routers and
// registries send it gets a heartbeat at once, a flood of them one more per interval; and nothing
// else delivered to the subject makes the pod heartbeat, such as a durable JetStream push consumer
// whose deliver subject was set to it (what any pod's or router's NATS identity may create), which
// delivers the events and then idle heartbeats ten times a second for ever.
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, nanos, type NatsConnection } from '@nats-io/transport-node';
import { decodeHeartbeat, ensureEventStream, subjects } from '../../../../lib/events';
import { silentLogger } from '../../../../lib/log';
import { resources } from '../../../../lib/nats';
import { HeartbeatPublisher } from '../../../../services/inference/heartbeat';
import { startTestNats, type NatsServerProcess } from '../../../helpers/nats';
import { waitFor } from '../../../helpers/wait';

const HOUR_MS = 3_600_000;

let server: NatsServerProcess & { cleanup(): Promise<void> };
/** The pod's connection, and another's (a router's: it asks and listens). */
let pod: NatsConnection;
let peer: NatsConnection;

beforeAll(async () => {
  server = await startTestNats();
  pod = await connect({ servers: server.url });
  peer = await connect({ servers: server.url });
});

afterAll(async () => {
  await pod?.drain();
  await peer?.drain();
  await server?.cleanup();
});

/** Heartbeats of `name` the peer has received. */
function heartbeatsOf(name: string): { count(): number; stop(): void } {
  let n = 0;
  const sub = peer.subscribe(subjects.heartbeat, { callback: (_err, msg) => void (decodeHeartbeat(msg.data).pod === name && n++) });
  return { count: () => n, stop: () => sub.unsubscribe() };
}

/**
 * Until everything the peer published has reached the pod, and what the pod published in answer
 * has reached the peer (each flush's PONG follows the messages sent to that connection before it).
 * The pod answers while its first flush is under way, after that flush's PING went out: a second
 * PING follows the answer, so its PONG says the server has it.
 */
async function roundTrip(): Promise<void> {
  await peer.flush();
  await pod.flush();
  await pod.flush();
  await peer.flush();
}

function publisher(name: string, discoverAnswerIntervalMs: number): HeartbeatPublisher {
  // No periodic heartbeat within the test: only the first, the answers and the goodbye.
  return new HeartbeatPublisher(pod, name, '', '127.0.0.1:1', HOUR_MS, () => ({ models: [], inflight: 0 }), silentLogger, { discoverAnswerIntervalMs });
}

it('answers a discover request at once, and a flood of them with one heartbeat per interval', async () => {
  const seen = heartbeatsOf('pod-flood');
  await peer.flush();
  const hb = publisher('pod-flood', HOUR_MS);
  hb.start();
  try {
    await roundTrip();
    expect(seen.count()).toBe(1);
    peer.publish(subjects.discover);
    await roundTrip();
    expect(seen.count()).toBe(2);
    // Within the interval of that answer: one more, at its end (an hour away here).
    for (let i = 0; i < 200; i++) peer.publish(subjects.discover);
    await roundTrip();
    expect(seen.count()).toBe(2);
  } finally {
    await hb.stop();
    await roundTrip();
    seen.stop();
  }
  // The goodbye, and nothing pending after it.
  expect(seen.count()).toBe(3);
});

it('answers the requests that came within the interval with one heartbeat at its end', async () => {
  const seen = heartbeatsOf('pod-trailing');
  await peer.flush();
  const hb = publisher('pod-trailing', 200);
  hb.start();
  try {
    peer.publish(subjects.discover);
    await roundTrip();
    for (let i = 0; i < 50; i++) peer.publish(subjects.discover);
    await roundTrip();
    await waitFor('the answer at the end of the interval', () => seen.count() >= 3);
    await roundTrip();
    expect(seen.count()).toBe(3);
  } finally {
    await hb.stop();
    seen.stop();
  }
});

it('takes no message but a discover request for one: not a JetStream consumer\'s events or idle heartbeats, not a body, headers or a reply subject', async () => {
  const jsm = await jetstreamManager(peer);
  await ensureEventStream(jsm, 1, 1024);
  const js = jetstream(peer);
  await js.publish('infermesh.events.m.model.created', JSON.stringify({ schema: 1, type: 'model.created' }));
  await js.publish('infermesh.events.m.model.updated', JSON.stringify({ schema: 1, type: 'model.updated' }));

  const seen = heartbeatsOf('pod-js');
  let events = 0;
  let idle = 0;
  const watch = peer.subscribe(subjects.discover, {
    callback: (_err, msg) => {
      if (msg.data.length > 0) events++;
      else if (msg.headers?.code === 100) idle++;
    },
  });
  await peer.flush();
  // No rate limit: every message the pod took for a request would show.
  const hb = publisher('pod-js', 0);
  hb.start();
  try {
    await roundTrip();
    expect(seen.count()).toBe(1);
    await jsm.consumers.add(resources.eventStream, {
      durable_name: 'delivers-to-discover',
      deliver_subject: subjects.discover,
      idle_heartbeat: nanos(100),
      deliver_policy: DeliverPolicy.All,
      ack_policy: AckPolicy.None,
      filter_subject: subjects.eventsAll,
    });
    await waitFor('the consumer\'s events and idle heartbeats on the discover subject', () => events >= 2 && idle >= 3);
    // The same, published by hand: a body, headers, a reply subject.
    peer.publish(subjects.discover, 'please');
    const h = headers();
    h.set('x', 'y');
    peer.publish(subjects.discover, new Uint8Array(0), { headers: h });
    peer.publish(subjects.discover, new Uint8Array(0), { reply: 'somewhere' });
    await roundTrip();
    expect(seen.count()).toBe(1);
    // A request as routers send it is still answered.
    peer.publish(subjects.discover);
    await roundTrip();
    expect(seen.count()).toBe(2);
  } finally {
    await jsm.consumers.delete(resources.eventStream, 'delivers-to-discover');
    watch.unsubscribe();
    await hb.stop();
    seen.stop();
  }
});
