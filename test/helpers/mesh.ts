// A registry and pods in this process against a test nats-server, with helpers to push models
// and wait for them to be ready.
import { RegistryApi } from '../../client/index';
import { inferenceClient, unary } from '../../lib/grpc/client';
import type * as grpc from '@grpc/grpc-js';
import { READY_REASON_KEY } from '../../lib/grpc/ready-reason';
import type { InferenceClient } from '../../lib/grpc/types';
import type { Logger } from '../../lib/log';
import { startTestNats, type NatsServerProcess } from './nats';
import { startTestPod, startTestRegistry } from './services';
import { modelPath } from './models';
import { waitFor } from './wait';
import type { RegistryService } from '../../services/registry/registry-service';
import type { InferenceService } from '../../services/inference/inference-service';

export interface TestMesh {
  nats: NatsServerProcess & { cleanup(): Promise<void> };
  registry: RegistryService;
  registryApi: RegistryApi;
  /** Starts a pod with extra INFERMESH_* settings. */
  startPod(env?: Record<string, string>): Promise<InferenceService>;
  /** Pushes models/<file> as `model`; resolves to the version. */
  push(model: string, file: string): Promise<number>;
  close(): Promise<void>;
}

/** NATS and a registry (with extra INFERMESH_* settings `registryEnv`). */
export async function startTestMesh(registryEnv: Record<string, string> = {}, registryLogger?: Logger): Promise<TestMesh> {
  const nats = await startTestNats();
  const registry = await startTestRegistry(nats.url, registryEnv, registryLogger);
  const registryApi = new RegistryApi(`127.0.0.1:${registry.port}`);
  const pods: InferenceService[] = [];
  return {
    nats,
    registry,
    registryApi,
    async startPod(env = {}) {
      const pod = await startTestPod(nats.url, registry.port, env);
      pods.push(pod);
      return pod;
    },
    async push(model, file) {
      return (await registryApi.push(model, modelPath(file))).version;
    },
    async close() {
      registryApi.close();
      await Promise.all(pods.map((p) => p.shutdown(5_000).catch(() => undefined)));
      await registry.shutdown(5_000);
      await nats.cleanup();
    },
  };
}

/** Waits until `client` reports every model in `models` ready. */
export async function waitReady(client: InferenceClient, models: string[], timeoutMs = 60_000): Promise<void> {
  await waitFor(`models ready: ${models.join(', ')}`, async () => {
    const ready = await Promise.all(models.map((name) => unary<{ ready: boolean }>((cb) => client.ModelReady({ name, version: '' }, cb))));
    return ready.every((r) => r.ready);
  }, timeoutMs);
}

export { inferenceClient, unary };

/** ModelReady's answer and the reason in its trailing metadata. */
export function modelReady(client: InferenceClient, name: string, version = ''): Promise<{ ready: boolean; reason: string }> {
  return new Promise((resolve, reject) => {
    let ready: boolean | undefined;
    const call = client.ModelReady({ name, version }, (err, res) => {
      if (err) reject(err);
      else ready = res!.ready;
    });
    call.on('status', (s: grpc.StatusObject) => setImmediate(() => resolve({ ready: ready ?? false, reason: String(s.metadata.get(READY_REASON_KEY)[0] ?? '') })));
  });
}


/**
 * The settings of a pod in a process of its own against `mesh` (cli/local-mesh's startService):
 * named `name`, its models in `modelDir`, CPU only, on 127.0.0.1 and a port of its own, heartbeats
 * every 200 ms; `env` adds to them or overrides them.
 */
export function podProcessEnv(mesh: Pick<TestMesh, 'nats' | 'registry'>, name: string, modelDir: string, env: Record<string, string> = {}): Record<string, string> {
  return {
    INFERMESH_NATS_URL: mesh.nats.url,
    INFERMESH_REGISTRY_URL: `127.0.0.1:${mesh.registry.port}`,
    INFERMESH_INFERENCE_PORT: '0',
    INFERMESH_LISTEN_HOST: '127.0.0.1',
    INFERMESH_MODEL_DIR: modelDir,
    INFERMESH_POD_NAME: name,
    INFERMESH_EXECUTION_PROVIDERS: 'cpu',
    INFERMESH_HEARTBEAT_INTERVAL_MS: '200',
    ...env,
  };
}
