// Process lifecycle shared by every service's main.ts: run until SIGTERM/SIGINT, then shut down in
// the service's fixed order within one time budget, forcing the exit when the budget runs out.
import type { Logger } from './log';
import { stopTelemetry } from './telemetry';

/** A running service as main.ts sees it. */
export interface RunningService {
  /** Graceful shutdown in the service's order; must finish within `budgetMs`. */
  shutdown(budgetMs: number): Promise<void>;
}

/**
 * On the first SIGTERM or SIGINT, shuts `service` down within `budgetMs`, flushes telemetry and exits
 * 0; exits 1 if the budget runs out or a second signal arrives.
 */
export function exitOnSignal(service: RunningService, log: Logger, budgetMs: number): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn('second signal: exiting now', { signal });
      process.exit(1);
    }
    stopping = true;
    log.info('shutting down', { signal, budgetMs });
    const force = setTimeout(() => {
      log.error('shutdown budget exceeded: forcing exit', { budgetMs });
      process.exit(1);
    }, budgetMs + 2_000);
    force.unref();
    service
      .shutdown(budgetMs)
      .then(() => stopTelemetry())
      .then(
        () => {
          log.info('stopped');
          process.exit(0);
        },
        (err: unknown) => {
          log.error('shutdown failed', { err });
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** Logs and exits on a start-up failure (bad config, NATS unreachable...), naming the cause. */
export function exitOnStartupError(log: Logger): (err: unknown) => never {
  return (err) => {
    log.error('failed to start', { err });
    process.exit(1);
  };
}
