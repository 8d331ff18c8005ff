// Registry entry point. Start with: node --require ./dist/lib/telemetry-register.js dist/services/registry/main.js
import { loadConfig } from '../../lib/config';
import { createLogger } from '../../lib/log';
import { exitOnSignal, exitOnStartupError } from '../../lib/lifecycle';
import { startRegistryService } from './registry-service';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('registry', config.logLevel);
  const service = await startRegistryService(config, log);
  exitOnSignal(service, log, config.shutdownTimeoutMs);
}

main().catch(exitOnStartupError(createLogger('registry')));
