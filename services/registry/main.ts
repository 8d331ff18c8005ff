// Registry entry point. Start with: node --require ./dist/lib/telemetry-register.js dist/services/registry/main.js
import { loadConfig } from '../../lib/config';
import { createLogger } from '../../lib/log';
import { exitOnSignal, exitOnStartupError } from '../../lib/lifecycle';
import { setSha256Backend } from '@nats-io/obj';
import { startRegistryService } from './registry-service';

async function main(): Promise<void> {
  // The Object Store hashes every object it stores, by default with a pure-JS SHA-256 (~30 MB/s,
  // the bottleneck of a large push); Node's is several times faster. (Set here, not in the service
  // module: the library loads it with a dynamic import, which jest's VM, where tests build the
  // registry in-process, does not allow.)
  setSha256Backend('native');
  const config = loadConfig();
  const log = createLogger('registry', config.logLevel);
  const service = await startRegistryService(config, log);
  exitOnSignal(service, log, config.shutdownTimeoutMs);
}

main().catch(exitOnStartupError(createLogger('registry')));
