// The pod's announcement on NATS: who it is, where it serves, which versions it has and in what
// state. Sent every interval, at once when something changes or a router asks, and at exit.
import { encodeHeartbeat, subjects, SCHEMA_VERSION, type Heartbeat, type PodMemory, type PodModel } from '../../lib/events';
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

  constructor(
    private readonly nc: NatsConnection,
    private readonly pod: string,
    /** The shared identity the pod's certificate proves (INFERMESH_POD_IDENTITY); empty: its name, and the heartbeat names none. */
    private readonly identity: string,
    private readonly address: string,
    private readonly intervalMs: number,
    private readonly status: () => PodStatus,
    private readonly log: Logger,
  ) {}

  /** Starts the periodic heartbeat and answers routers' discovery requests. */
  start(): void {
    this.timer = setInterval(() => this.publish(), this.intervalMs);
    const sub = this.nc.subscribe(subjects.discover, { callback: () => this.publish() });
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
    this.discover?.unsubscribe();
    this.state = 'stopped';
    this.publish();
    await this.nc.flush().catch(() => undefined);
  }

  private publish(): void {
    if (this.nc.isClosed()) return;
    const { models, inflight, memory } = this.status();
    const hb: Heartbeat = { schema: SCHEMA_VERSION, pod: this.pod, ...(this.identity && { identity: this.identity }), address: this.address, state: this.state, models, inflight, ...(memory && { memory }), time: new Date().toISOString() };
    try {
      this.nc.publish(subjects.heartbeat, encodeHeartbeat(hb));
    } catch (err) {
      this.log.warn('heartbeat not sent', { err });
    }
  }
}
