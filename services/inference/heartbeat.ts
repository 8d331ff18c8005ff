// The pod's announcement on NATS: who it is, where it serves, which versions it has and in what
// state. Sent every interval, at once when something changes, and at exit; and in answer to a
// discover request (a router or registry that starts asks), at most one answer per interval
// however many requests come, since the subject also takes what a JetStream consumer delivers there.
// With TLS on each heartbeat is signed with the pod's certificate key (lib/heartbeat-signatures.ts),
// its versions' reasons cut as decoders keep them, so what they check is what was signed.
import { performance } from 'node:perf_hooks';
import type { HeartbeatSigner } from '../../lib/heartbeat-signatures';
import { cutReason, encodeHeartbeat, isDiscoverRequest, subjects, SCHEMA_VERSION, type Heartbeat, type PodMemory, type PodModel } from '../../lib/events';
import type { NatsConnection } from '../../lib/nats';
import type { Logger } from '../../lib/log';

/** What a heartbeat reports, read fresh for each one. */
export interface PodStatus {
  models: PodModel[];
  inflight: number;
  memory?: PodMemory;
}

export class HeartbeatPublisher {
  private state: Heartbeat['state'] = 'serving';
  private timer: NodeJS.Timeout | undefined;
  private pending = false;
  private discover: { unsubscribe(): void } | undefined;
  /** When a heartbeat last answered a discover request (performance.now()). */
  private answeredAt = -Infinity;
  /** The answer to requests that came within the interval of the last, sent at its end. */
  private answer: NodeJS.Timeout | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly pod: string,
    /** The shared identity the pod's certificate proves (INFERMESH_POD_IDENTITY); empty: its name, and the heartbeat names none. */
    private readonly identity: string,
    private readonly address: string,
    private readonly intervalMs: number,
    private readonly status: () => PodStatus,
    private readonly log: Logger,
    opts: {
      /**
       * Discover requests get at most one answer this often (default the heartbeat interval,
       * INFERMESH_HEARTBEAT_INTERVAL_MS: 1 s, as an mDNS responder multicasts an answer at most once
       * a second, RFC 6762 §6); the requests that come within it share one heartbeat at its end.
       */
      discoverAnswerIntervalMs?: number;
      /** Signs each heartbeat (TLS on); default none: no heartbeat is signed. */
      signer?: HeartbeatSigner;
    } = {},
  ) {
    this.discoverAnswerIntervalMs = opts.discoverAnswerIntervalMs ?? intervalMs;
    this.signer = opts.signer;
  }

  private readonly discoverAnswerIntervalMs: number;
  private readonly signer: HeartbeatSigner | undefined;

  /** Starts the periodic heartbeat and answers discover requests. */
  start(): void {
    this.timer = setInterval(() => this.publish(), this.intervalMs);
    // Only a well-formed request counts: a consumer delivering there (its idle heartbeats come ten
    // times a second, for ever if it is durable) must not make every pod heartbeat with it.
    const sub = this.nc.subscribe(subjects.discover, {
      callback: (err, msg) => {
        if (!err && isDiscoverRequest(msg)) this.answerDiscover();
      },
    });
    this.discover = sub;
    this.publish();
  }

  /** Sends a heartbeat soon (changes made in the same tick share one). */
  publishSoon(): void {
    if (this.pending) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      this.publish();
    });
  }

  /** Announces draining: routers stop sending new requests at once. */
  draining(): void {
    this.state = 'draining';
    this.publish();
  }

  /** Announces that the pod is gone and stops heartbeats; flushes so the message leaves first. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.answer);
    this.discover?.unsubscribe();
    this.state = 'stopped';
    this.publish();
    await this.nc.flush().catch(() => undefined);
  }

  /** Answers a discover request now, or at the end of the interval since the last answer. */
  private answerDiscover(): void {
    // A heartbeat is sent after this request anyway: it is the answer.
    if (this.answer) return;
    const wait = this.answeredAt + this.discoverAnswerIntervalMs - performance.now();
    if (wait <= 0) {
      this.answeredAt = performance.now();
      this.publish();
      return;
    }
    this.answer = setTimeout(() => {
      this.answeredAt = performance.now();
      this.publish();
    }, wait);
  }

  private publish(): void {
    // Any heartbeat sent now answers the requests waiting for the interval's end.
    if (this.answer) {
      clearTimeout(this.answer);
      this.answer = undefined;
    }
    if (this.nc.isClosed()) return;
    const { models, inflight, memory } = this.status();
    const kept = models.map((m) => (m.reason === undefined ? m : { ...m, reason: cutReason(m.reason) }));
    const hb: Heartbeat = { schema: SCHEMA_VERSION, pod: this.pod, ...(this.identity && { identity: this.identity }), address: this.address, state: this.state, models: kept, inflight, ...(memory && { memory }), time: new Date().toISOString() };
    try {
      this.nc.publish(subjects.heartbeat, encodeHeartbeat(this.signer ? this.signer.sign(hb) : hb));
    } catch (err) {
      this.log.warn('heartbeat not sent', { err });
    }
  }
}
