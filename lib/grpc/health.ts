// grpc.health.v1: Check and Watch, per service name ('' is the whole server).
import * as grpc from '@grpc/grpc-js';
import type { HealthHandlers } from './types';
import { statusMessage } from '../errors';
import type { HealthCheckResponse } from './generated/grpc/health/v1/HealthCheckResponse';

/** A serving status of the health protocol. */
export type ServingStatus = 'SERVING' | 'NOT_SERVING';

/** The health service; a service flips its statuses as it starts, drains and stops. */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>([['', 'NOT_SERVING']]);
  private readonly watchers = new Set<{ service: string; call: grpc.ServerWritableStream<unknown, HealthCheckResponse> }>();

  /** Sets the status of `service` ('' = the server as a whole) and tells its watchers. */
  set(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const w of this.watchers) if (w.service === service) w.call.write({ status });
  }

  /** The current status of `service`, or undefined when unknown. */
  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Ends every Watch stream (at shutdown, so the server can close). */
  closeWatchers(): void {
    for (const w of this.watchers) w.call.end();
    this.watchers.clear();
  }

  handlers(): HealthHandlers {
    return {
      Check: (call, cb) => {
        const status = this.statuses.get(call.request.service);
        // The name is the caller's, of any length: cut as every status message is (the router lets anyone ask).
        if (!status) return cb({ code: grpc.status.NOT_FOUND, details: statusMessage(`unknown service '${call.request.service}'`) });
        cb(null, { status });
      },
      Watch: (call) => {
        const w = { service: call.request.service, call: call as grpc.ServerWritableStream<unknown, HealthCheckResponse> };
        this.watchers.add(w);
        call.write({ status: this.statuses.get(w.service) ?? 'SERVICE_UNKNOWN' });
        call.on('cancelled', () => this.watchers.delete(w));
      },
    };
  }
}
