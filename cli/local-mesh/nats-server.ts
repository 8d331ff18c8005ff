// Runs a nats-server child process with JetStream and its own store folder: the embedded NATS of
// `infermesh up`, and the real NATS server every test starts.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { freePort } from './free-port';

/** A running nats-server. */
export interface NatsServerProcess {
  url: string;
  port: number;
  storeDir: string;
  /** SIGTERM and wait (up to 10 s, then SIGKILL). */
  stop(): Promise<void>;
  /** SIGKILL and wait: a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same port and store folder. */
  restart(): Promise<void>;
  /** The current nats-server process (a restart replaces it). */
  readonly child: ChildProcess;
}

/** Options for startNatsServer; by default any free port. */
export interface NatsServerOptions {
  storeDir: string;
  port?: number;
  /** The nats-server binary (default: `nats-server` on PATH). */
  binary?: string;
  /** Where its log goes (default: discarded). */
  logFile?: string;
  /** A config file (`-c`): the users and permissions of cli/local-mesh/nats-auth.ts; default none (anyone may connect). */
  configFile?: string;
  /** Extra command-line arguments, e.g. `-DV` to trace every message in the log. */
  extraArgs?: string[];
}

function waitReady(child: ChildProcess, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => fail(new Error(`nats-server on port ${port} not ready after ${timeoutMs} ms:\n${log}`)), timeoutMs);
    const onData = (d: Buffer) => {
      log += d.toString();
      if (log.includes('Server is ready')) done();
    };
    const onExit = (code: number | null) => fail(new Error(`nats-server exited (${code}) before it was ready:\n${log}`));
    function cleanup() {
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
    }
    function done() { cleanup(); resolve(); }
    function fail(e: Error) { cleanup(); reject(e); }
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Starts nats-server with JetStream on 127.0.0.1 and waits until it accepts clients. */
export async function startNatsServer(opts: NatsServerOptions): Promise<NatsServerProcess> {
  const port = opts.port ?? (await freePort());
  fs.mkdirSync(opts.storeDir, { recursive: true });
  let child: ChildProcess;
  const start = async () => {
    const args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', opts.storeDir, '-n', `infermesh-${port}`];
    if (opts.configFile) args.push('-c', opts.configFile);
    if (opts.extraArgs) args.push(...opts.extraArgs);
    child = spawn(opts.binary ?? 'nats-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (opts.logFile) child.stderr?.pipe(fs.createWriteStream(opts.logFile, { flags: 'a' }));
    await waitReady(child, port, 15_000);
    // Keep draining stderr so the pipe never fills.
    child.stderr?.resume();
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir: opts.storeDir,
    async stop() {
      child.kill('SIGTERM');
      await waitExit(child, 10_000);
    },
    async kill() {
      child.kill('SIGKILL');
      await waitExit(child, 10_000);
    },
    restart: start,
    get child() {
      return child;
    },
  };
}
