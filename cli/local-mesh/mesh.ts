// A whole mesh on one machine: NATS (a child nats-server unless a URL is given), the registry, the
// router and N inference pods, each its own process. `infermesh up` runs one; e2e tests run many.
// NATS, the registry, the router and every pod are supervised: one that exits unasked is restarted
// (same name, same port, same folders) while the rest keep serving. The NATS it starts refuses
// clients without one of the nkeys made for this start (cli/local-mesh/nats-auth.ts); each service
// gets its own kind's seed and the permissions of lib/nats-permissions.ts.
import fs from 'node:fs';
import path from 'node:path';
import type { NatsServerProcess } from './nats-server';
import { startSecuredNatsServer, type NatsCredentials } from './nats-auth';
import { meshSecurity, type MeshSecurity } from './secure';
import type { ServiceKind } from '../../lib/tls';
import { startService, type ServiceProcess } from './service-process';
import { freePort, startOnPort } from './free-port';
import { DEFAULT_RESTART_POLICY, supervise, type RestartPolicy, type SupervisedService } from './supervisor';

/** Options of startLocalMesh(). */
export interface LocalMeshOptions {
  /** Where NATS keeps its store, pods their artifacts, and every process its log. */
  dataDir: string;
  /** A NATS server to use instead of starting one. */
  natsUrl?: string;
  /** Router port (0: any free port). */
  routerPort: number;
  /** The router's HTTP/REST port (0: any free one); default: the router's own (8000), or any when routerPort is 0. */
  routerHttpPort?: number;
  /** Registry port (0: any free port). */
  registryPort: number;
  /** The registry's web console port (0: any free one); default: the registry's own (8004), or any when registryPort is 0. */
  consolePort?: number;
  /** Inference pods to start. */
  pods: number;
  /** Extra environment for every service. */
  env?: Record<string, string>;
  /** Called with every log line of every process, prefixed by its label. */
  onLine?: (label: string, line: string) => void;
  /** Called with each line about a process that exited unasked and its restart; default: none. */
  onRestart?: (line: string) => void;
  /** Back-off between restarts; default DEFAULT_RESTART_POLICY (250 ms doubling to 10 s). */
  restartPolicy?: RestartPolicy;
  /** TLS on every hop and tokens at the router and the registry (cli/local-mesh/secure.ts); default off. */
  secure?: boolean;
}

/** A running local mesh. */
export interface LocalMesh {
  natsUrl: string;
  nats?: NatsServerProcess;
  /** The NATS identities of this start (seed files per kind, the server's config); absent with an outside NATS. */
  natsCredentials?: NatsCredentials;
  /** With `secure`: the CA clients trust and the admin token. */
  security?: Pick<MeshSecurity, 'caFile' | 'caPem' | 'tokenFile' | 'token'>;
  registry: SupervisedService;
  router: SupervisedService;
  pods: SupervisedService[];
  registryAddress: string;
  routerAddress: string;
  /** The router's HTTP/REST door (undefined with INFERMESH_ROUTER_HTTP off). */
  routerHttpAddress: string | undefined;
  /** The web console's URL (undefined with INFERMESH_CONSOLE off). */
  consoleUrl: string | undefined;
  /** Starts one more pod (its name: pod-<n>). */
  addPod(env?: Record<string, string>): Promise<SupervisedService>;
  /** Stops everything: router, pods, registry (graceful), then NATS. */
  stop(): Promise<void>;
}

/** The nats-server process running now, in the shape the supervisor watches. */
function natsProcess(server: NatsServerProcess): ServiceProcess {
  const child = server.child;
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
  return {
    name: 'nats',
    pid: child.pid!,
    port: server.port,
    child,
    exited,
    async stop() {
      await server.stop();
      return child.exitCode;
    },
    kill: () => server.kill(),
  };
}

export async function startLocalMesh(opts: LocalMeshOptions): Promise<LocalMesh> {
  const logs = path.join(opts.dataDir, 'logs');
  fs.mkdirSync(logs, { recursive: true });
  const started: { stop(): Promise<unknown> }[] = [];
  const stopAll = async () => {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    started.length = 0;
  };
  try {
    const restartPolicy = opts.restartPolicy ?? DEFAULT_RESTART_POLICY;
    const security = opts.secure ? await meshSecurity(opts.dataDir) : undefined;
    const onLog = (line: string) => opts.onRestart?.(line);
    let nats: NatsServerProcess | undefined;
    let natsUrl = opts.natsUrl;
    let natsCredentials: NatsCredentials | undefined;
    if (!natsUrl) {
      // Fresh identities at every start: seeds of an earlier run, wherever they went, stop working.
      const secured = await startSecuredNatsServer({ storeDir: path.join(opts.dataDir, 'nats'), logFile: path.join(logs, 'nats.log'), authDir: path.join(opts.dataDir, 'nats-auth'), extraArgs: security && (await security.natsArgs()) });
      const server = secured.server;
      natsCredentials = secured.credentials;
      nats = server;
      // Same port and store on restart; every service reconnects by itself.
      started.push(await supervise('nats', async (attempt) => {
        if (attempt > 0) await server.restart();
        return natsProcess(server);
      }, { onLog }, restartPolicy));
      natsUrl = server.url;
    }
    // Fixed ports, so that a restarted registry or router is where everyone expects it.
    const registryPort = opts.registryPort || (await freePort());
    const routerPort = opts.routerPort || (await freePort());
    const base: Record<string, string> = {
      // tls://: the services use their TLS files for NATS at a tls:// URL only (lib/tls.ts natsTlsOptions).
      INFERMESH_NATS_URL: security ? natsUrl.replace(/^nats:/, 'tls:') : natsUrl,
      INFERMESH_REGISTRY_URL: `127.0.0.1:${registryPort}`,
      INFERMESH_LISTEN_HOST: '127.0.0.1',
      INFERMESH_ADVERTISE_HOST: '127.0.0.1',
      ...opts.env,
    };
    const seedOf = (name: 'registry' | 'router' | 'inference'): Record<string, string> =>
      natsCredentials ? { INFERMESH_NATS_NKEY_SEED_FILE: natsCredentials.seedFiles[name === 'inference' ? 'pod' : name] } : {};
    const kindOf = (name: 'registry' | 'router' | 'inference'): ServiceKind => (name === 'inference' ? 'pod' : name);
    const start = async (name: 'registry' | 'router' | 'inference', label: string, env: Record<string, string>) =>
      startService(name, {
        label,
        // A certificate naming the service (a pod by its INFERMESH_POD_NAME, its label) at each start.
        env: { ...base, ...seedOf(name), ...(security && (await security.envOf(kindOf(name), label))), ...env },
        logFile: path.join(logs, `${label}.log`),
        onLine: opts.onLine ? (line) => opts.onLine!(label, line) : undefined,
      });
    const supervised = (label: string, startOne: (attempt: number) => ReturnType<typeof start>) => supervise(label, startOne, { onLog }, restartPolicy);

    // The console's port as the router's HTTP port: as asked, else the default (8004) beside a fixed
    // registry port and an ephemeral one beside an ephemeral one.
    const consolePort = opts.consolePort ?? (opts.registryPort === 0 ? 0 : undefined);
    const registry = await supervised('registry', () => start('registry', 'registry', { INFERMESH_REGISTRY_PORT: String(registryPort), ...(consolePort !== undefined && { INFERMESH_CONSOLE_PORT: String(consolePort) }) }));
    started.push(registry);
    let podCount = 0;
    const pods: SupervisedService[] = [];
    const addPod = async (env: Record<string, string> = {}) => {
      const name = `pod-${++podCount}`;
      const podEnv = (port: number) => ({
        INFERMESH_POD_NAME: name,
        INFERMESH_INFERENCE_PORT: String(port),
        INFERMESH_MODEL_DIR: path.join(opts.dataDir, 'models', name),
        ...env,
      });
      let lastPort = 0;
      // A restarted pod comes back on its port (routers know the address), or on any if another
      // process took it (startOnPort); a start that fails otherwise is retried on the same port.
      const pod = await supervised(name, async (attempt) => {
        const p = attempt > 0 && lastPort > 0
          ? await startOnPort(name, lastPort, (port) => start('inference', name, podEnv(port)), onLog)
          : await start('inference', name, podEnv(0));
        lastPort = p.port;
        return p;
      });
      pods.push(pod);
      started.push(pod);
      return pod;
    };
    await Promise.all(Array.from({ length: opts.pods }, () => addPod()));
    // The HTTP/REST port: as asked, else the router's default (8000) beside a fixed gRPC port and an
    // ephemeral one beside an ephemeral one (tests run meshes side by side).
    const httpPort = opts.routerHttpPort ?? (opts.routerPort === 0 ? 0 : undefined);
    const router = await supervised('router', () => start('router', 'router', { INFERMESH_ROUTER_PORT: String(routerPort), ...(httpPort !== undefined && { INFERMESH_ROUTER_HTTP_PORT: String(httpPort) }) }));
    started.push(router);
    return {
      natsUrl,
      nats,
      natsCredentials,
      ...(security && { security: { caFile: security.caFile, caPem: security.caPem, tokenFile: security.tokenFile, token: security.token } }),
      registry,
      router,
      pods,
      registryAddress: `127.0.0.1:${registry.port}`,
      routerAddress: `127.0.0.1:${router.port}`,
      routerHttpAddress: router.httpPort === undefined ? undefined : `127.0.0.1:${router.httpPort}`,
      consoleUrl: registry.httpPort === undefined ? undefined : `${security ? 'https' : 'http'}://127.0.0.1:${registry.httpPort}/`,
      addPod,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
