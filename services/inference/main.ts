// Inference pod entry point. Start with: node --require ./dist/lib/telemetry-register.js dist/services/inference/main.js
import { loadConfig } from '../../lib/config';
import { createLogger } from '../../lib/log';
import { exitOnSignal, exitOnStartupError } from '../../lib/lifecycle';
import { startInferenceService } from './inference-service';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('inference', config.logLevel, { pod: config.podName });
  const service = await startInferenceService(config, log);
  exitOnSignal(service, log, config.shutdownTimeoutMs);
}

main().catch(exitOnStartupError(createLogger('inference')));
