// Builds the registry service from its parts: NATS, JetStream resources, the domain and the server.
import type { Config } from '../../lib/config';
import { connectNats, jetStreamOf, metadataBucket, artifactStore } from '../../lib/nats';
import { ensureEventStream } from '../../lib/events';
import { createServer, listen, shutdownServer } from '../../lib/grpc/server';
import { protos } from '../../lib/grpc/proto';
import type { Logger } from '../../lib/log';
import type { RunningService } from '../../lib/lifecycle';
import { Registry } from './registry';
import { registryHandlers } from './grpc-handlers';

/** A started registry: its bound port, and shutdown. */
export interface RegistryService extends RunningService {
  port: number;
  registry: Registry;
}

/** Connects to NATS, ensures the KV bucket, object store and event stream, and serves on the configured port. */
export async function startRegistryService(config: Config, log: Logger): Promise<RegistryService> {
  const nc = await connectNats(config, 'infermesh-registry', log);
  const { js, jsm } = jetStreamOf(nc);
  await ensureEventStream(await jsm, config.jetstreamReplicas);
  const [kv, artifacts] = await Promise.all([metadataBucket(nc, config.jetstreamReplicas), artifactStore(nc, config.jetstreamReplicas)]);
  const registry = new Registry({ kv, artifacts, js, log, maxArtifactBytes: config.maxArtifactBytes });

  const { server, health } = createServer({ maxMessageBytes: config.maxMessageBytes });
  server.addService(protos().registry.Registry.service, registryHandlers(registry, log));
  const port = await listen(server, config.listenHost, config.registryPort);
  health.set('', 'SERVING');
  health.set('infermesh.registry.v1.Registry', 'SERVING');
  log.info('listening', { port });

  return {
    port,
    registry,
    async shutdown(budgetMs) {
      health.set('', 'NOT_SERVING');
      health.set('infermesh.registry.v1.Registry', 'NOT_SERVING');
      health.closeWatchers();
      await shutdownServer(server, budgetMs);
      await nc.drain().catch(() => undefined);
    },
  };
}
