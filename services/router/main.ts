// Router entry point. Start with: node --require ./dist/lib/telemetry-register.js dist/services/router/main.js
import { loadConfig } from '../../lib/config';
import { createLogger } from '../../lib/log';
import { exitOnSignal, exitOnStartupError } from '../../lib/lifecycle';
import { startRouterService } from './router-service';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('router', config.logLevel);
  const service = await startRouterService(config, log);
  exitOnSignal(service, log, config.shutdownTimeoutMs);
}

main().catch(exitOnStartupError(createLogger('router')));
