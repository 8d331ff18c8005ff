// Builds real services in the test process: a registry or a pod on port 0 against a test NATS.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../lib/config';
import { createLogger, silentLogger, type Logger, type LogLevel } from '../../lib/log';
import { startRegistryService, type RegistryService } from '../../services/registry/registry-service';
import { startInferenceService, type InferenceService } from '../../services/inference/inference-service';
import { startRouterService, type RouterService } from '../../services/router/router-service';

/** A Config for tests: everything on 127.0.0.1 and port 0, CPU only, fast heartbeats. */
export function testConfig(natsUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    INFERMESH_NATS_URL: natsUrl,
    INFERMESH_LISTEN_HOST: '127.0.0.1',
    INFERMESH_REGISTRY_PORT: '0',
    INFERMESH_ROUTER_PORT: '0',
    INFERMESH_ROUTER_HTTP_PORT: '0',
    INFERMESH_CONSOLE_PORT: '0',
    INFERMESH_INFERENCE_PORT: '0',
    INFERMESH_EXECUTION_PROVIDERS: 'cpu',
    INFERMESH_HEARTBEAT_INTERVAL_MS: '200',
    INFERMESH_POD_TTL_MS: '1500',
    INFERMESH_LOG_LEVEL: 'error',
    ...env,
  });
}

/** A logger that keeps its latest `size` lines, for a test to print when it fails. */
export function recentLogger(service: string, size = 60, level: LogLevel = 'info'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger(service, level, {}, (line) => {
    lines.push(line);
    if (lines.length > size) lines.shift();
  });
  return { logger, lines };
}

/** A registry in this process. */
export function startTestRegistry(natsUrl: string, env: Record<string, string> = {}, logger: Logger = silentLogger): Promise<RegistryService> {
  return startRegistryService(testConfig(natsUrl, env), logger);
}

/** An inference pod in this process, with its own model folder (removed on shutdown). */
export async function startTestPod(natsUrl: string, registryPort: number, env: Record<string, string> = {}): Promise<InferenceService> {
  const modelDir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-pod-'));
  const pod = await startInferenceService(testConfig(natsUrl, {
    INFERMESH_REGISTRY_URL: `127.0.0.1:${registryPort}`,
    INFERMESH_MODEL_DIR: modelDir,
    INFERMESH_POD_NAME: `pod-${path.basename(modelDir)}`,
    ...env,
  }), silentLogger);
  return {
    ...pod,
    async shutdown(budgetMs) {
      await pod.shutdown(budgetMs);
      fs.rmSync(modelDir, { recursive: true, force: true });
    },
  };
}

/** A router in this process. */
export function startTestRouter(natsUrl: string, registryPort: number, env: Record<string, string> = {}, logger: Logger = silentLogger): Promise<RouterService> {
  return startRouterService(testConfig(natsUrl, { INFERMESH_REGISTRY_URL: `127.0.0.1:${registryPort}`, ...env }), logger);
}

/**
 * The settings of a registry with authentication on whose bootstrap admin key is `token`: the key
 * is written to `dir`/admin.token (mode 0600), as an operator would mount it.
 */
export function bootstrapAuthEnv(dir: string, token: string): Record<string, string> {
  const tokenFile = path.join(dir, 'admin.token');
  fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  return { INFERMESH_AUTH: 'true', INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE: tokenFile };
}
