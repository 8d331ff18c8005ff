// The closed-loop load generator, run in a child process (bench/load-process.ts) so that its event
// loop and CPU are never shared with what a suite measures in its own process.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { CallerCredentials } from './h2-unary';

/** One measured run: `concurrency` callers, each sending one request and waiting for its answer. */
export interface LoadSpec {
  /** host:port of the server under test. */
  address: string;
  /** Callers, each with one request in flight at a time. */
  concurrency: number;
  /** HTTP/2 connections the callers share (caller i uses connection i mod this). */
  connections: number;
  /** Load before the measured window starts (results discarded). */
  warmupMs: number;
  /** Length of the measured window. */
  durationMs: number;
  /** Named groups of processes whose CPU time is read at the window's start and end. */
  cpuWatch: Record<string, number[]>;
  /** TLS and token for a secured server (default: h2c, no token). */
  credentials?: CallerCredentials;
  /**
   * Call the HTTP/REST door instead (HTTP/1.1, one keep-alive connection per caller): POST each
   * body in turn to `path` with its headers; an answer other than 200 counts as an error.
   */
  rest?: { path: string; bodies: Uint8Array[]; headers: Record<string, string>[] };
}

/** What one run measured; latencies in ms, CPU in ms per completed call. */
export interface LoadResult {
  /** Calls answered OK inside the window. */
  ok: number;
  /** Calls that failed inside the window, and the first failure's message. */
  errors: number;
  firstError?: string;
  /** OK calls per second of the window. */
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Every OK call's latency in µs, ascending (to pool several runs' percentiles). */
  latenciesUs: Float64Array;
  /** CPU time of each `cpuWatch` group (summed over its processes) per completed call. */
  cpuMsPerCall: Record<string, number>;
  /** The load generator's own CPU time per completed call. */
  clientCpuMsPerCall: number;
}

/** Messages to the load process. */
export type LoadCommand = { type: 'init'; path: string; frames: Uint8Array[] } | { type: 'run'; spec: LoadSpec };
/** Messages from the load process. */
export type LoadReply = { type: 'ready' } | { type: 'result'; result: LoadResult } | { type: 'failed'; message: string };

/** A load process, reused for every run of a suite. */
export class LoadGenerator {
  private constructor(private readonly child: ChildProcess) {}

  /** Starts the process with the gRPC method `path` and the framed requests it cycles through. */
  static async start(methodPath: string, frames: Uint8Array[]): Promise<LoadGenerator> {
    const child = fork(path.join(__dirname, 'load-process.js'), [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const gen = new LoadGenerator(child);
    await gen.ask({ type: 'init', path: methodPath, frames });
    return gen;
  }

  private ask(cmd: LoadCommand): Promise<LoadReply> {
    return new Promise((resolve, reject) => {
      const onMessage = (reply: LoadReply) => {
        cleanup();
        if (reply.type === 'failed') reject(new Error(`load generator: ${reply.message}`));
        else resolve(reply);
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`load generator exited (${code})`));
      };
      const cleanup = () => {
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
      };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
      this.child.send(cmd);
    });
  }

  /** Runs one measured load and resolves with what it measured. */
  async run(spec: LoadSpec): Promise<LoadResult> {
    const reply = await this.ask({ type: 'run', spec });
    if (reply.type !== 'result') throw new Error(`load generator answered ${reply.type}`);
    return reply.result;
  }

  /** Ends the load process. */
  close(): void {
    this.child.disconnect();
  }
}
