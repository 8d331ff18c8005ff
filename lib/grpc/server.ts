// The one way a service creates its gRPC server: limits, keepalive and the health service, so
// TLS, authentication and interceptors are added here once for every service.
import * as grpc from '@grpc/grpc-js';
import { protos } from './proto';
import { HealthService } from './health';

/** Options every infermesh gRPC server shares. */
export interface ServerOptions {
  /** Largest message received or sent, in bytes. */
  maxMessageBytes: number;
}

/** Channel options shared by servers and clients (keepalive lets dead peers be noticed). */
export function channelOptions(maxMessageBytes: number): grpc.ChannelOptions {
  return {
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 10_000,
  };
}

/** A gRPC server with the standard health service already added. */
export function createServer(opts: ServerOptions): { server: grpc.Server; health: HealthService } {
  const server = new grpc.Server({
    ...channelOptions(opts.maxMessageBytes),
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  });
  const health = new HealthService();
  server.addService(protos().health.Health.service, health.handlers());
  return { server, health };
}

/** Binds `host:port` (port 0: any free port) without TLS and resolves to the bound port. */
export function listen(server: grpc.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const addr = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
  });
}

/**
 * Stops taking new calls and waits for in-flight ones up to `timeoutMs`, then cancels what is left.
 * Resolves true when everything finished in time.
 */
export function shutdownServer(server: grpc.Server, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve(false);
    }, timeoutMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
