// Starts an infermesh service (registry, router or inference) as a child process from dist/, the
// way a container runs it, and waits for it to listen. Used by `infermesh up` and the e2e tests.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

/** The repository (or image) root: dist/ and node_modules/ live here. */
export const ROOT = [path.resolve(__dirname, '../..'), path.resolve(__dirname, '../../..')].find((p) =>
  fs.existsSync(path.join(p, 'package.json')),
) ?? path.resolve(__dirname, '../..');

/** The services infermesh deploys. */
export type ServiceName = 'registry' | 'router' | 'inference';

/** A running service process. */
export interface ServiceProcess {
  name: string;
  pid: number;
  port: number;
  /** The router's HTTP/REST port or the registry's console port, once listening (undefined for pods, or with it off). */
  readonly httpPort?: number;
  child: ChildProcess;
  /** SIGTERM (graceful drain), then wait; SIGKILL after `timeoutMs` (default 30 s). */
  stop(timeoutMs?: number): Promise<number | null>;
  /** SIGKILL and wait: a crash. */
  kill(): Promise<void>;
  /** Resolves with the exit code when the process ends. */
  exited: Promise<number | null>;
}

/** Options of startService(). */
export interface StartOptions {
  /** Environment variables (INFERMESH_*), on top of the parent's. */
  env: Record<string, string>;
  /** A label for logs (default the service name). */
  label?: string;
  /** Append the service's log lines to this file. */
  logFile?: string;
  /** Called with each log line. */
  onLine?: (line: string) => void;
  timeoutMs?: number;
}

/**
 * The node flags and preload every service starts with (a container's ENTRYPOINT): V8's young
 * generation raised from its 16 MB default, then telemetry. Every call allocates a few kilobytes
 * that die within milliseconds; with the default, objects of calls in flight were copied and
 * promoted often enough that GC was a third of the router's CPU per call at concurrency 1
 * (docs/benchmarks.md).
 */
export function sharedNodeArgs(): string[] {
  return ['--max-semi-space-size=32', '--require', path.join(ROOT, 'dist/lib/telemetry-register.js')];
}

/**
 * What follows sharedNodeArgs for one service (a container's args): its own node flags, then its
 * main module. The router's old generation starts at 64 MB: its live heap is about 20 MB, and
 * V8's limit just above that let each full GC promote the objects of the calls in flight, whose
 * death set off the next one. Under TLS at concurrency 16 that cycle ran every 400 ms and took a
 * fifth of the router's CPU (docs/benchmarks.md); pods keep V8's default, their memory is what
 * placement budgets.
 */
export function serviceArgs(name: ServiceName): string[] {
  const own = name === 'router' ? ['--initial-old-space-size=64'] : [];
  return [...own, path.join(ROOT, `dist/services/${name}/main.js`)];
}

/** The command that runs a service; the Dockerfile's ENTRYPOINT and a manifest's args make the same (a test holds them together). */
export function serviceCommand(name: ServiceName): string[] {
  return [...sharedNodeArgs(), ...serviceArgs(name)];
}

export function startService(name: ServiceName, opts: StartOptions): Promise<ServiceProcess> {
  const label = opts.label ?? name;
  const child = spawn(process.execPath, serviceCommand(name), {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = opts.logFile ? fs.createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let port = -1;
    let httpPort: number | undefined;
    const recent: string[] = [];
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${label} did not start within ${opts.timeoutMs ?? 30_000} ms:\n${recent.join('\n')}`));
    }, opts.timeoutMs ?? 30_000);
    const onLine = (line: string) => {
      log?.write(line + '\n');
      opts.onLine?.(line);
      recent.push(line);
      if (recent.length > 30) recent.shift();
      if (port >= 0 || !line.startsWith('{')) return;
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number; httpPort?: number };
        if (entry.msg === 'listening' && typeof entry.port === 'number') {
          port = entry.port;
          if (typeof entry.httpPort === 'number') httpPort = entry.httpPort;
          clearTimeout(timer);
          resolve(handle);
        }
      } catch {
        // not a log line
      }
    };
    readline.createInterface({ input: child.stderr! }).on('line', onLine);
    readline.createInterface({ input: child.stdout! }).on('line', onLine);
    void exited.then((code) => {
      log?.end();
      if (port < 0) {
        clearTimeout(timer);
        reject(new Error(`${label} exited (${code}) before listening:\n${recent.join('\n')}`));
      }
    });
    const handle: ServiceProcess = {
      name: label,
      pid: child.pid!,
      get port() {
        return port;
      },
      get httpPort() {
        return httpPort;
      },
      child,
      exited,
      async stop(timeoutMs = 30_000) {
        if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        const code = await exited;
        clearTimeout(t);
        return code;
      },
      async kill() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      },
    };
  });
}
