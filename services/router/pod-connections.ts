// The router's connections to each pod: a few HTTP/2 connections for pass-through calls (one
// connection caps large-message throughput), and one typed client for metadata calls.
import type * as grpc from '@grpc/grpc-js';
import { inferenceClient, rawClient } from '../../lib/grpc/client';
import type { InferenceClient } from '../../lib/grpc/types';

interface Connections {
  raw: grpc.Client[];
  typed: InferenceClient;
  next: number;
}

export class PodConnections {
  private readonly byAddress = new Map<string, Connections>();

  constructor(private readonly perPod: number, private readonly maxMessageBytes: number) {}

  private get(address: string): Connections {
    let c = this.byAddress.get(address);
    if (!c) {
      c = {
        // A local subchannel pool per client gives each its own HTTP/2 connection.
        raw: Array.from({ length: this.perPod }, (_, i) => rawClient(address, {
          maxMessageBytes: this.maxMessageBytes,
          channel: { 'grpc.use_local_subchannel_pool': 1, 'infermesh.connection': i },
        })),
        typed: inferenceClient(address, { maxMessageBytes: this.maxMessageBytes }),
        next: 0,
      };
      this.byAddress.set(address, c);
    }
    return c;
  }

  /** A pass-through client for `address`, rotating over its connections. */
  raw(address: string): grpc.Client {
    const c = this.get(address);
    return c.raw[c.next++ % c.raw.length]!;
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
    for (const r of c.raw) r.close();
    c.typed.close();
  }

  closeAll(): void {
    for (const a of [...this.byAddress.keys()]) this.close(a);
  }
}
