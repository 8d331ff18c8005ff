// The processes a benchmark measures, started exactly as `infermesh up` starts them: nats-server,
// the registry, inference pods (each with its own settings) and optionally the router, all on
// 127.0.0.1; then `mnist` is pushed and every pod (and the router) is waited on until it serves it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InferenceApi, RegistryApi } from '../client';
import { startNatsServer, type NatsServerProcess } from '../cli/local-mesh/nats-server';
import { ROOT, startService, type ServiceName, type ServiceProcess } from '../cli/local-mesh/service-process';
import { MODEL } from './mnist-requests';

/** Settings every benchmark service shares: CPU only, on loopback. */
const COMMON_ENV: Record<string, string> = {
  INFERMESH_LISTEN_HOST: '127.0.0.1',
  INFERMESH_ADVERTISE_HOST: '127.0.0.1',
  INFERMESH_EXECUTION_PROVIDERS: 'cpu',
};

/** A running set of benchmark processes. */
export interface BenchMesh {
  registryAddress: string;
  /** Starts a pod with `env` on top of the common settings and waits until it serves mnist. */
  addPod(label: string, env?: Record<string, string>): Promise<ServiceProcess>;
  /** Starts a router with `env` and waits until it routes mnist to a pod. */
  startRouter(env?: Record<string, string>): Promise<ServiceProcess>;
  /** Where the processes write their logs. */
  logDir: string;
  /** Stops every process, newest first, and removes the data folder. */
  stop(): Promise<void>;
}

/** Polls `check` every 100 ms until it resolves true, for at most `timeoutMs`. */
async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`benchmark: ${what} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Resolves once `address` answers ModelReady for mnist and one inference succeeds. */
export async function waitServing(what: string, address: string): Promise<void> {
  const api = new InferenceApi(address);
  try {
    await waitFor(what, async () => (await api.modelReady(MODEL)) && (await api.infer(MODEL, [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: new Float32Array(784) }])).outputs.length > 0);
  } finally {
    api.close();
  }
}

/** Starts NATS and the registry, and pushes models/mnist.onnx as `mnist`. */
export async function startBenchMesh(): Promise<BenchMesh> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-bench-'));
  const logDir = path.join(dataDir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const started: { stop(): Promise<unknown> }[] = [];
  const stop = async () => {
    for (const s of started.splice(0).reverse()) await s.stop().catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const nats: NatsServerProcess = await startNatsServer({ storeDir: path.join(dataDir, 'nats'), logFile: path.join(logDir, 'nats.log') });
    started.push(nats);
    const base: Record<string, string> = { ...COMMON_ENV, INFERMESH_NATS_URL: nats.url };
    const start = async (name: ServiceName, label: string, env: Record<string, string>) => {
      const p = await startService(name, { label, env: { ...base, ...env }, logFile: path.join(logDir, `${label}.log`) });
      started.push(p);
      return p;
    };
    const registry = await start('registry', 'registry', { INFERMESH_REGISTRY_PORT: '0' });
    const registryAddress = `127.0.0.1:${registry.port}`;
    base.INFERMESH_REGISTRY_URL = registryAddress;
    const registryApi = new RegistryApi(registryAddress);
    await registryApi.push(MODEL, path.join(ROOT, 'models', 'mnist.onnx')).finally(() => registryApi.close());
    return {
      registryAddress,
      logDir,
      async addPod(label, env = {}) {
        const pod = await start('inference', label, {
          INFERMESH_POD_NAME: label,
          INFERMESH_INFERENCE_PORT: '0',
          INFERMESH_MODEL_DIR: path.join(dataDir, 'models', label),
          ...env,
        });
        await waitServing(`pod ${label}`, `127.0.0.1:${pod.port}`);
        return pod;
      },
      async startRouter(env = {}) {
        const router = await start('router', 'router', { INFERMESH_ROUTER_PORT: '0', ...env });
        await waitServing('router', `127.0.0.1:${router.port}`);
        return router;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
