// The router's connections to each pod: a few bare HTTP/2 connections for ModelInfer's bytes (one
// connection caps large-message throughput), and one typed grpc-js client for every other call.
import { inferenceClient } from '../../lib/grpc/client';
import { H2Upstream, type H2UpstreamOptions } from '../../lib/h2/upstream';
import type { InferenceClient } from '../../lib/grpc/types';

/**
 * Settings of the router's HTTP/2 connections to an upstream: each carries `maxRequests` streams
 * (a client's stream ids are odd) before it is replaced; 0: until its stream ids run out.
 */
export function upstreamOptions(maxRequests: number): H2UpstreamOptions {
  return maxRequests > 0 ? { maxStreamId: 2 * maxRequests - 1 } : {};
}

interface Connections {
  h2: H2Upstream;
  typed: InferenceClient;
}

export class PodConnections {
  private readonly byAddress = new Map<string, Connections>();

  /** `perPod` connections to each pod; each carries `maxRequestsPerConnection` requests (0: until its ids run out). */
  constructor(private readonly perPod: number, private readonly maxMessageBytes: number, private readonly maxRequestsPerConnection = 0) {}

  private get(address: string): Connections {
    let c = this.byAddress.get(address);
    if (!c) {
      c = {
        h2: new H2Upstream(address, this.perPod, upstreamOptions(this.maxRequestsPerConnection)),
        typed: inferenceClient(address, { maxMessageBytes: this.maxMessageBytes }),
      };
      this.byAddress.set(address, c);
    }
    return c;
  }

  /** The HTTP/2 connections to `address`, for ModelInfer's bytes. */
  h2(address: string): H2Upstream {
    return this.get(address).h2;
  }

  /** A typed client for `address`. */
  typed(address: string): InferenceClient {
    return this.get(address).typed;
  }

  /** Closes the connections of a pod that left. */
  close(address: string): void {
    const c = this.byAddress.get(address);
    if (!c) return;
    this.byAddress.delete(address);
    c.h2.close();
    c.typed.close();
  }

  closeAll(): void {
    for (const a of [...this.byAddress.keys()]) this.close(a);
  }
}
