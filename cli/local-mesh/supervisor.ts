// Keeps one service of the local mesh running: a process that exits while it should be serving is
// started again after a back-off that doubles with each quick failure, with a log line each time,
// as an orchestrator restarts a crashed container (Kubernetes' CrashLoopBackOff, on a shorter scale).
import type { ServiceProcess } from './service-process';

/** How a supervisor waits between restarts. */
export interface RestartPolicy {
  /** Wait before the first restart after a process that ran a while; default 250 ms. */
  initialDelayMs: number;
  /** Longest wait, however often it fails; default 10 s (Kubernetes: 5 min, for a cluster). */
  maxDelayMs: number;
  /** A process that served this long before exiting counts as healthy: the back-off starts over; default 10 s. */
  stableAfterMs: number;
}

/** The defaults of RestartPolicy. */
export const DEFAULT_RESTART_POLICY: RestartPolicy = Object.freeze({ initialDelayMs: 250, maxDelayMs: 10_000, stableAfterMs: 10_000 });

/** The wait before restart number `failures` in a row (1: the first): initial × 2^(failures−1), capped. */
export function restartDelayMs(policy: RestartPolicy, failures: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
}

/** A supervised service: the process it runs now, which a restart replaces. */
export interface SupervisedService {
  readonly name: string;
  /** The current process's pid. */
  readonly pid: number;
  /** The port the current process listens on. */
  readonly port: number;
  /** The current process's HTTP/REST port (the router's; undefined for the others). */
  readonly httpPort: number | undefined;
  /** Restarts so far. */
  readonly restarts: number;
  /** Stops supervising, then SIGTERM (graceful drain) and wait; SIGKILL after `timeoutMs` (default 30 s). */
  stop(timeoutMs?: number): Promise<number | null>;
  /** SIGKILL of the current process, as a crash: the supervisor restarts it. Resolves once it exited. */
  kill(): Promise<void>;
  /** Resolves with the next process once it listens (after a crash and its restart). */
  nextStart(): Promise<ServiceProcess>;
}

/** What a supervisor reports. */
export interface SupervisorEvents {
  /** One line for a person: an exit, a wait, a restart, a failed restart. */
  onLog(line: string): void;
}

/**
 * Runs `start` and restarts what it started whenever the process exits unasked. `start(attempt)`
 * starts a process and resolves once it listens (attempt 0 is the first start); a start that fails
 * counts as a quick failure and is tried again after the next back-off.
 */
export async function supervise(
  name: string,
  start: (attempt: number) => Promise<ServiceProcess>,
  events: SupervisorEvents,
  policy: RestartPolicy = DEFAULT_RESTART_POLICY,
): Promise<SupervisedService> {
  let current = await start(0);
  let stopped = false;
  let restarts = 0;
  let failures = 0;
  let startedAt = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  let waiters: ((p: ServiceProcess) => void)[] = [];
  /** A restart under way. */
  let pending: Promise<ServiceProcess> | undefined;

  const describe = (p: ServiceProcess) => (p.child.signalCode ? `signal ${p.child.signalCode}` : `code ${p.child.exitCode}`);
  const sleep = (ms: number) => new Promise<void>((resolve) => {
    wake = resolve;
    timer = setTimeout(resolve, ms);
  });

  const watch = (p: ServiceProcess): void => {
    void p.exited.then(async () => {
      if (stopped) return;
      failures = Date.now() - startedAt >= policy.stableAfterMs ? 1 : failures + 1;
      let delay = restartDelayMs(policy, failures);
      events.onLog(`${name} exited (${describe(p)}); restarting in ${delay} ms`);
      for (;;) {
        await sleep(delay);
        if (stopped) return;
        try {
          restarts++;
          pending = start(restarts);
          const next = await pending.finally(() => (pending = undefined));
          if (stopped) return; // stop() stops it
          current = next;
          startedAt = Date.now();
          events.onLog(`${name} restarted (pid ${next.pid}, port ${next.port}, restart ${restarts})`);
          for (const w of waiters) w(next);
          waiters = [];
          watch(next);
          return;
        } catch (err) {
          failures++;
          delay = restartDelayMs(policy, failures);
          events.onLog(`${name} failed to restart: ${(err as Error).message.split('\n')[0]}; trying again in ${delay} ms`);
        }
      }
    });
  };
  watch(current);

  return {
    name,
    get pid() {
      return current.pid;
    },
    get port() {
      return current.port;
    },
    get httpPort() {
      return current.httpPort;
    },
    get restarts() {
      return restarts;
    },
    async stop(timeoutMs) {
      stopped = true;
      clearTimeout(timer);
      wake?.();
      // A process a restart is starting right now is stopped too, once it is up (or has failed).
      const starting = await pending?.catch(() => undefined);
      if (starting) await starting.stop(timeoutMs);
      return current.stop(timeoutMs);
    },
    kill: () => current.kill(),
    nextStart: () => new Promise((resolve) => waiters.push(resolve)),
  };
}
