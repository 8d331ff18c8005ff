// Active health checks: the router asks every known pod's grpc.health.v1 service at an interval.
// A pod that fails two checks in a row gets no traffic until a check passes again; heartbeats say
// what a pod has, health checks whether the router can really reach it.
import { healthClient, unary, type ClientTls } from '../../lib/grpc/client';
import type { HealthClient } from '../../lib/grpc/types';
import type { Logger } from '../../lib/log';
import type { Membership, Pod } from './membership';

const FAILURES_TO_MARK_UNHEALTHY = 2;

export class HealthChecker {
  private timer: NodeJS.Timeout | undefined;
  private readonly clients = new Map<string, HealthClient>();
  /** The identity each client expects (TLS on): a new pod at an address gets a new client. */
  private readonly identities = new Map<string, string | undefined>();
  private readonly failures = new Map<string, number>();

  /** `clientTls`: TLS of a client of the pod at an address (PodConnections.clientTls); unset: plaintext. */
  constructor(private readonly membership: Membership, private readonly intervalMs: number, private readonly log: Logger, private readonly clientTls: (address: string) => ClientTls | undefined = () => undefined) {}

  start(): void {
    if (this.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.checkAll(), this.intervalMs);
  }

  /** Checks every pod once. */
  async checkAll(): Promise<void> {
    const pods = this.membership.all();
    const live = new Set(pods.map((p) => p.address));
    for (const [address, c] of this.clients) {
      if (!live.has(address)) {
        c.close();
        this.clients.delete(address);
        this.identities.delete(address);
        this.failures.delete(address);
      }
    }
    await Promise.all(pods.map((p) => this.check(p)));
  }

  private async check(pod: Pod): Promise<void> {
    // A pod that has not proven who it is (TLS) is not spoken to, nor counted as failing.
    if (pod.verified === false) return;
    const tls = this.clientTls(pod.address);
    let client = this.clients.get(pod.address);
    if (client && this.identities.get(pod.address) !== tls?.identity) {
      client.close();
      client = undefined;
    }
    if (!client) {
      this.clients.set(pod.address, (client = healthClient(pod.address, { tls })));
      this.identities.set(pod.address, tls?.identity);
    }
    let ok = false;
    try {
      const res = await unary<{ status: string }>((cb) => client.Check({ service: '' }, { deadline: Date.now() + Math.min(1_000, this.intervalMs) }, cb));
      ok = res.status === 'SERVING';
    } catch {
      ok = false;
    }
    const n = ok ? 0 : (this.failures.get(pod.address) ?? 0) + 1;
    this.failures.set(pod.address, n);
    const healthy = n < FAILURES_TO_MARK_UNHEALTHY;
    if (healthy !== pod.healthy) this.log.warn(healthy ? 'pod passes health checks again' : 'pod fails health checks: no traffic', { pod: pod.id, address: pod.address });
    pod.healthy = healthy;
  }

  stop(): void {
    clearInterval(this.timer);
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
