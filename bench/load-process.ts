// The load generator's process (started by bench/load.ts): closed-loop callers over a few HTTP/2
// connections; latency is the time from sending a request to its last byte and status.
import { performance } from 'node:perf_hooks';
import { H1Connection, h1Request } from './h1-unary';
import { CallError, H2UnaryConnection } from './h2-unary';
import type { LoadCommand, LoadReply, LoadResult, LoadSpec } from './load';
import { totalCpuMs } from './proc-cpu';
import { Samples, summarize } from './stats';

let methodPath = '';
let frames: Buffer[] = [];

const send = (reply: LoadReply) => process.send!(reply);

/** CPU of the watched processes and of this one, with how many calls had completed then. */
interface Snapshot {
  completed: number;
  cpuMs: Record<string, number>;
  clientMs: number;
}

async function run(spec: LoadSpec): Promise<LoadResult> {
  // REST: each request encoded once, and one keep-alive connection per caller (as a browser or
  // an HTTP/1.1 client pool would: a connection carries one request at a time).
  const rest = spec.rest && {
    requests: spec.rest.bodies.map((b, i) => h1Request(spec.address, spec.rest!.path, spec.rest!.headers[i % spec.rest!.headers.length]!, Buffer.from(b.buffer, b.byteOffset, b.byteLength))),
    conns: Array.from({ length: spec.concurrency }, () => new H1Connection(spec.address)),
  };
  const conns = rest ? [] : Array.from({ length: Math.max(1, spec.connections) }, () => new H2UnaryConnection(spec.address, spec.credentials));
  const started = performance.now();
  const windowStart = started + spec.warmupMs;
  const windowEnd = windowStart + spec.durationMs;
  const latencies = new Samples();
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  const snapshot = (): Snapshot => {
    const u = process.cpuUsage();
    const cpu: Record<string, number> = {};
    for (const [name, pids] of Object.entries(spec.cpuWatch)) cpu[name] = totalCpuMs(pids);
    return { completed, cpuMs: cpu, clientMs: (u.user + u.system) / 1000 };
  };
  // Taken by the first caller to see the window start or end, so no timer can miss the end.
  let atStart: Snapshot | undefined;
  let atEnd: Snapshot | undefined;
  const mark = (now: number) => {
    if (!atStart && now >= windowStart) atStart = snapshot();
    if (!atEnd && now >= windowEnd) atEnd = snapshot();
  };

  const caller = async (index: number) => {
    const slot = index % conns.length;
    for (;;) {
      const sentAt = performance.now();
      mark(sentAt);
      if (sentAt >= windowEnd) return;
      const n = next++;
      let failure: string | undefined;
      try {
        if (rest) await rest.conns[index]!.call(rest.requests[n % rest.requests.length]!);
        else await conns[slot]!.call(methodPath, frames[n % frames.length]!);
      } catch (err) {
        failure = err instanceof CallError ? `status ${err.code}: ${err.message}` : String(err);
      }
      const doneAt = performance.now();
      completed++;
      mark(doneAt);
      if (doneAt >= windowStart && doneAt <= windowEnd) {
        if (failure === undefined) latencies.push((doneAt - sentAt) * 1000);
        else {
          errors++;
          firstError ??= failure;
        }
      }
      // Failures come back fast; yield so a failing target cannot starve the event loop.
      if (failure !== undefined) await new Promise((r) => setImmediate(r));
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, (_, i) => caller(i)));
  for (const c of conns) c.close();
  for (const c of rest?.conns ?? []) c.close();

  const sorted = Float64Array.from(latencies.values()).sort();
  const summary = summarize(sorted);
  const [a, b] = [atStart, atEnd];
  const calls = a && b ? b.completed - a.completed : 0;
  const perCall = (before: number | undefined, after: number | undefined) =>
    before !== undefined && after !== undefined && calls > 0 ? (after - before) / calls : Number.NaN;
  const cpuMsPerCall: Record<string, number> = {};
  for (const name of Object.keys(spec.cpuWatch)) cpuMsPerCall[name] = perCall(a?.cpuMs[name], b?.cpuMs[name]);
  return {
    ok: summary.count,
    errors,
    firstError,
    perSecond: summary.count / (spec.durationMs / 1000),
    p50Ms: summary.p50Ms,
    p99Ms: summary.p99Ms,
    latenciesUs: sorted,
    cpuMsPerCall,
    clientCpuMsPerCall: perCall(a?.clientMs, b?.clientMs),
  };
}

process.on('message', (cmd: LoadCommand) => {
  if (cmd.type === 'init') {
    methodPath = cmd.path;
    frames = cmd.frames.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength));
    send({ type: 'ready' });
    return;
  }
  run(cmd.spec).then(
    (result) => send({ type: 'result', result }),
    (err: unknown) => send({ type: 'failed', message: err instanceof Error ? err.stack ?? err.message : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
