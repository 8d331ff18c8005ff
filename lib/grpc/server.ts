// The one way a service creates its gRPC server: limits, keepalive, the health service and server
// reflection, so TLS, authentication and interceptors are added here once for every service.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { protoDefinitions, protos } from './proto';
import { HealthService } from './health';
import type { TlsFiles } from '../tls';

/** Options every infermesh gRPC server shares. */
export interface ServerOptions {
  /** Largest message received or sent, in bytes. */
  maxMessageBytes: number;
  /** Interceptors every call passes (the router's authentication); none by default. */
  interceptors?: grpc.ServerInterceptor[];
}

/** Channel options shared by servers and clients (keepalive lets dead peers be noticed; clients ping less often, see client.ts). */
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

/** The full names of the services added to each server createServer made, until listen() reflects them. */
const servedBy = new WeakMap<grpc.Server, Set<string>>();

/** 'inference.GRPCInferenceService' from a service definition (its methods' paths). */
function serviceName(service: grpc.ServiceDefinition): string | undefined {
  const first = Object.values(service)[0] as grpc.MethodDefinition<unknown, unknown> | undefined;
  return first?.path.split('/')[1];
}

/**
 * A gRPC server with the standard health service already added. listen() adds gRPC server
 * reflection (grpc.reflection.v1 and v1alpha, `@grpc/reflection`) for exactly the services added
 * by then, so `grpcurl -plaintext HOST:PORT list` and describe work without the .proto files.
 */
export function createServer(opts: ServerOptions): { server: grpc.Server; health: HealthService } {
  const server = new grpc.Server({
    ...channelOptions(opts.maxMessageBytes),
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    interceptors: opts.interceptors ?? [],
  });
  const served = new Set<string>();
  servedBy.set(server, served);
  const addService = server.addService.bind(server);
  server.addService = (service, implementation) => {
    addService(service, implementation);
    const name = serviceName(service);
    if (name) served.add(name);
  };
  const health = new HealthService();
  server.addService(protos().health.Health.service, health.handlers());
  return { server, health };
}

/** Adds reflection for the services `server` serves (once; only to servers createServer made). */
function addReflection(server: grpc.Server): void {
  const served = servedBy.get(server);
  if (!served) return;
  servedBy.delete(server);
  // Only the files that define a served service (and their imports): nothing else is described.
  const files = protoDefinitions().filter((def) => [...served].some((name) => name in def));
  new ReflectionService(Object.assign({}, ...files) as PackageDefinition, { services: [...served] }).addToServer(server);
}

/** TLS of a grpc-js server. */
export interface ServerTls {
  /** The material in force (lib/tls.ts), followed as it is reloaded: new connections get the new certificate. */
  files: TlsFiles;
  /** Require a client certificate signed by the CA (mutual TLS). */
  clientAuth: boolean;
}

/**
 * A grpc-js server's TLS from TlsFiles: the very options of lib/tls.ts contextOptions() that the
 * lib/h2 and HTTP doors take (lowest version, no renegotiation), as they are when a port binds and at each reload.
 * grpc-js's certificate-provider credentials would hand its server certificate, key and CA only,
 * and setSecureContext drops every option it is not given. A client certificate is asked for
 * always (the registry's door reads a pod's or router's one), required with `clientAuth`.
 */
class FilesServerCredentials extends grpc.ServerCredentials {
  private stopFollowing: (() => void) | undefined;

  constructor(private readonly files: TlsFiles, clientAuth: boolean) {
    super({ requestCert: true, rejectUnauthorized: clientAuth }, files.contextOptions());
  }

  // What grpc-js binds a port with: the material in force when it binds, not when these
  // credentials were made (a reload in between, or while no port listens, would be lost).
  override _getSecureContextOptions(): ReturnType<grpc.ServerCredentials['_getSecureContextOptions']> {
    return this.files.contextOptions();
  }

  // Follows the files while a server listens with these credentials (grpc-js adds a watcher per port).
  override _addWatcher(watcher: Parameters<grpc.ServerCredentials['_addWatcher']>[0]): void {
    super._addWatcher(watcher);
    this.stopFollowing ??= this.files.onChange(() => this.updateSecureContextOptions(this.files.contextOptions()));
  }

  override _removeWatcher(watcher: Parameters<grpc.ServerCredentials['_removeWatcher']>[0]): void {
    super._removeWatcher(watcher);
    if (this.getWatcherCount() > 0) return;
    this.stopFollowing?.();
    this.stopFollowing = undefined;
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/**
 * The credentials of a server: plaintext without `tls`; with it, TLS from `files` (each reload is
 * applied with setSecureContext: calls in flight finish on their connections).
 */
export function serverCredentials(tls?: ServerTls): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return new FilesServerCredentials(tls.files, tls.clientAuth);
}

/**
 * Binds `host:port` (port 0: any free port) and resolves to the bound port: plaintext by default,
 * TLS with `tls`. (A server behind a front door listens with listenBehindDoor instead.)
 */
export function listen(server: grpc.Server, host: string, port: number, tls?: ServerTls): Promise<number> {
  const addr = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
  return bind(server, addr, serverCredentials(tls));
}

/** Adds reflection, then binds `addr` (a grpc-js target: host:port or unix:path). */
function bind(server: grpc.Server, addr: string, credentials: grpc.ServerCredentials): Promise<number> {
  addReflection(server);
  return new Promise((resolve, reject) => {
    server.bindAsync(addr, credentials, (err, bound) => (err ? reject(err) : resolve(bound)));
  });
}

/**
 * Longest Unix socket path the kernel binds: sun_path is 108 octets on Linux, 104 on macOS and the
 * BSDs, its last a NUL; the smaller, so a path that binds here binds there too.
 */
const MAX_SOCKET_PATH_BYTES = 103;

/** Directories of inner servers not yet removed, removed at the latest when the process exits. */
const innerDirs = new Set<string>();
let exitHooked = false;

function removeInnerDir(dir: string): void {
  innerDirs.delete(dir);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** The grpc-js server behind a service's front door: where the door connects to it. */
export interface InnerEndpoint {
  /** The Unix socket it listens on, for the door's H2Upstream. */
  readonly path: string;
  /** Removes the socket and its directory; call once the server has shut down. */
  remove(): void;
}

/**
 * Binds the grpc-js server behind a front door (the router's, a pod's) to a Unix domain socket in
 * a fresh directory under `parent` (default: the OS temp dir, TMPDIR; in Kubernetes the /tmp
 * emptyDir) that only this process's user may enter (mode 0700), never to a TCP port: the door
 * authenticates callers and holds them to its limits, and the server behind it checks neither, so
 * nothing but the door may reach it. A loopback port could be called by any process in the network
 * namespace (every sidecar of a Kubernetes pod, every user of a shared host). The directory goes
 * with remove(), or when the process exits.
 */
export async function listenBehindDoor(server: grpc.Server, parent = os.tmpdir()): Promise<InnerEndpoint> {
  const dir = fs.mkdtempSync(path.join(parent, 'infermesh-grpc-'));
  // mkdtemp makes it 0700 already; said again so that no umask or platform can loosen it.
  fs.chmodSync(dir, 0o700);
  const socket = path.join(dir, 'grpc.sock');
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH_BYTES) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`the temp dir ${parent} is too long for a Unix socket path (${socket} is over ${MAX_SOCKET_PATH_BYTES} octets): set TMPDIR to a shorter one`);
  }
  innerDirs.add(dir);
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', () => {
      for (const d of [...innerDirs]) removeInnerDir(d);
    });
  }
  try {
    await bind(server, `unix:${socket}`, serverCredentials());
  } catch (err) {
    removeInnerDir(dir);
    throw err;
  }
  return { path: socket, remove: () => removeInnerDir(dir) };
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
