// A whole mesh on one machine: NATS (a child nats-server unless a URL is given), the registry, the
// router and N inference pods, each its own process. `infermesh up` runs one; e2e tests run many.
import fs from 'node:fs';
import path from 'node:path';
import { startNatsServer, type NatsServerProcess } from './nats-server';
import { startService, type ServiceProcess } from './service-process';
import { freePort } from './free-port';

/** Options of startLocalMesh(). */
export interface LocalMeshOptions {
  /** Where NATS keeps its store, pods their artifacts, and every process its log. */
  dataDir: string;
  /** A NATS server to use instead of starting one. */
  natsUrl?: string;
  /** Router port (0: any free port). */
  routerPort: number;
  /** Registry port (0: any free port). */
  registryPort: number;
  /** Inference pods to start. */
  pods: number;
  /** Extra environment for every service. */
  env?: Record<string, string>;
  /** Called with every log line of every process, prefixed by its label. */
  onLine?: (label: string, line: string) => void;
}

/** A running local mesh. */
export interface LocalMesh {
  natsUrl: string;
  nats?: NatsServerProcess;
  registry: ServiceProcess;
  router: ServiceProcess;
  pods: ServiceProcess[];
  registryAddress: string;
  routerAddress: string;
  /** Starts one more pod (its name: pod-<n>). */
  addPod(env?: Record<string, string>): Promise<ServiceProcess>;
  /** Stops everything: router, pods, registry (graceful), then NATS. */
  stop(): Promise<void>;
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
    let nats: NatsServerProcess | undefined;
    let natsUrl = opts.natsUrl;
    if (!natsUrl) {
      nats = await startNatsServer({ storeDir: path.join(opts.dataDir, 'nats'), logFile: path.join(logs, 'nats.log') });
      started.push(nats);
      natsUrl = nats.url;
    }
    const registryPort = opts.registryPort || (await freePort());
    const base: Record<string, string> = {
      INFERMESH_NATS_URL: natsUrl,
      INFERMESH_REGISTRY_URL: `127.0.0.1:${registryPort}`,
      INFERMESH_LISTEN_HOST: '127.0.0.1',
      INFERMESH_ADVERTISE_HOST: '127.0.0.1',
      ...opts.env,
    };
    const start = (name: 'registry' | 'router' | 'inference', label: string, env: Record<string, string>) =>
      startService(name, {
        label,
        env: { ...base, ...env },
        logFile: path.join(logs, `${label}.log`),
        onLine: opts.onLine ? (line) => opts.onLine!(label, line) : undefined,
      });

    const registry = await start('registry', 'registry', { INFERMESH_REGISTRY_PORT: String(registryPort) });
    started.push(registry);
    let podCount = 0;
    const pods: ServiceProcess[] = [];
    const addPod = async (env: Record<string, string> = {}) => {
      const name = `pod-${++podCount}`;
      const pod = await start('inference', name, {
        INFERMESH_POD_NAME: name,
        INFERMESH_INFERENCE_PORT: '0',
        INFERMESH_MODEL_DIR: path.join(opts.dataDir, 'models', name),
        ...env,
      });
      pods.push(pod);
      started.push(pod);
      return pod;
    };
    await Promise.all(Array.from({ length: opts.pods }, () => addPod()));
    const router = await start('router', 'router', { INFERMESH_ROUTER_PORT: String(opts.routerPort) });
    started.push(router);
    return {
      natsUrl,
      nats,
      registry,
      router,
      pods,
      registryAddress: `127.0.0.1:${registry.port}`,
      routerAddress: `127.0.0.1:${router.port}`,
      addPod,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
