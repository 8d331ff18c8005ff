// Process lifecycle shared by every service's main.ts: run until SIGTERM/SIGINT, then shut down in
// the service's fixed order within one time budget, forcing the exit when the budget runs out.
import type { Logger } from './log';
import { stopTelemetry } from './telemetry';

/** A running service as main.ts sees it. */
export interface RunningService {
  /** Graceful shutdown in the service's order; must finish within `budgetMs`. */
  shutdown(budgetMs: number): Promise<void>;
  /**
   * Why the process cannot end by process.exit, when it cannot: Node waits there for every worker
   * thread, and one inside a native call (an onnxruntime run set aside past its budget) never stops
   * for it. Undefined (the default): it can.
   */
  cannotExit?(): string | undefined;
}

/**
 * On the first SIGTERM or SIGINT, shuts `service` down within `budgetMs`, flushes telemetry and exits
 * 0; exits 1 if the budget runs out or a second signal arrives.
 */
export function exitOnSignal(service: RunningService, log: Logger, budgetMs: number): void {
  let stopping = false;
  const exit = (code: number): never => {
    const why = service.cannotExit?.();
    if (why) {
      // The exit status is then 137 (killed), which an orchestrator restarts as any failure.
      log.error('exiting by SIGKILL: process.exit would wait for threads that cannot be stopped', { reason: why, code });
      process.kill(process.pid, 'SIGKILL');
    }
    process.exit(code);
  };
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn('second signal: exiting now', { signal });
      exit(1);
    }
    stopping = true;
    log.info('shutting down', { signal, budgetMs });
    const force = setTimeout(() => {
      log.error('shutdown budget exceeded: forcing exit', { budgetMs });
      exit(1);
    }, budgetMs + 2_000);
    force.unref();
    service
      .shutdown(budgetMs)
      .then(() => stopTelemetry())
      .then(
        () => {
          log.info('stopped');
          exit(0);
        },
        (err: unknown) => {
          log.error('shutdown failed', { err });
          exit(1);
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
