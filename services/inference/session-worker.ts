// A worker thread owning onnxruntime sessions: onnxruntime's run() blocks its thread, so sessions
// live here and the service's event loop stays free for health checks and other models. It holds
// the sessions its host loads on it, by id, and runs one request at a time (onnxruntime-node loads
// and runs synchronously on the calling thread), in the order they come.
//
// onnxruntime-node creates and runs a session in a later turn (setImmediate), so the messages that
// follow are taken before it has: an `unload` taken as it came overtook the `load` before it, found
// nothing to release, and the session loaded next was held by no one (and counted by no one). So the
// messages of one session are handled one after the other, each once the one before has finished:
// an unload (or the close) that comes while its session loads releases it once loaded.
import { parentPort } from 'node:worker_threads';
import { ort } from '../../lib/ort';
import type { HostTensor, OrtType } from '../../lib/tensor';
import type { ExecutionProvider } from '../../lib/config';
import { spinningConfig, type SessionInit, type WorkerReply, type WorkerRequest } from './worker-protocol';

const port = parentPort!;
const post = (msg: WorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);
const sessions = new Map<number, ort.InferenceSession>();
/** The last task of each session not yet finished, by id: the next of its messages waits for it. */
const pending = new Map<number, Promise<void>>();
/** Set by `close`: loads and runs are refused from then on. */
let closing = false;

/**
 * Handles a message of session `id` once the ones before it have finished. Tasks answer their own
 * failures; one that rejected all the same would end the worker, as any unhandled rejection does.
 */
function inTurn(id: number, task: () => Promise<void>): Promise<void> {
  const next = (pending.get(id) ?? Promise.resolve()).then(task);
  pending.set(id, next);
  void next.then(() => {
    if (pending.get(id) === next) pending.delete(id);
  });
  return next;
}

async function createSession(init: SessionInit): Promise<{ session: ort.InferenceSession; provider: ExecutionProvider; fallback?: string }> {
  const failures: string[] = [];
  for (const provider of init.providers) {
    try {
      const session = await ort.InferenceSession.create(init.modelPath, {
        executionProviders: [provider],
        // 0: onnxruntime's own default; the key must then be absent (onnxruntime-node refuses undefined).
        ...(init.intraOpThreads > 0 && { intraOpNumThreads: init.intraOpThreads }),
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        extra: { session: spinningConfig(init.spinning) },
        // Run failures reach the client as statuses; onnxruntime's own log would repeat each one.
        logSeverityLevel: 4,
      });
      return { session, provider, fallback: failures.length ? failures.join('; ') : undefined };
    } catch (err) {
      failures.push(`${provider}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(`no execution provider could load the model (${failures.join('; ')})`);
}

function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(t.type as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.dims);
}

function fromOrt(t: ort.Tensor): HostTensor {
  return { type: t.type as OrtType, dims: [...t.dims], data: t.data as HostTensor['data'] };
}

async function load(id: number, init: SessionInit): Promise<void> {
  try {
    if (closing) throw new Error('session worker is closing');
    // A second session under one id would leave the first held by no one; the host never asks it.
    if (sessions.has(id)) throw new Error(`session ${id} is loaded on this worker already`);
    const started = process.hrtime.bigint();
    const { session, provider, fallback } = await createSession(init);
    const loadNs = Number(process.hrtime.bigint() - started);
    sessions.set(id, session);
    post({ type: 'loaded', session: id, provider, fallback, inputNames: [...session.inputNames], outputNames: [...session.outputNames], loadNs });
  } catch (err) {
    post({ type: 'load-failed', session: id, message: err instanceof Error ? err.message : String(err) });
  }
}

/** Releases session `id`, when this worker holds it: no run reaches it after. */
async function release(id: number): Promise<void> {
  const session = sessions.get(id);
  sessions.delete(id);
  await session?.release().catch(() => undefined);
}

async function unload(id: number): Promise<void> {
  await release(id);
  post({ type: 'unloaded', session: id });
}

/** Releases every session, each after what it is doing (a load, a run) has finished, then ends the thread. */
function close(): void {
  if (closing) return;
  closing = true;
  const ids = new Set([...sessions.keys(), ...pending.keys()]);
  void Promise.all([...ids].map((id) => inTurn(id, () => release(id)))).then(() => {
    post({ type: 'closed' });
    port.close();
  });
}

async function run(msg: Extract<WorkerRequest, { type: 'run' }>): Promise<void> {
  try {
    if (closing) throw new Error('session worker is closing');
    const session = sessions.get(msg.session);
    if (!session) throw new Error(`no session ${msg.session} on this worker`);
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = toOrt(t);
    const started = process.hrtime.bigint();
    const result = await session.run(feeds, msg.outputs);
    const runNs = Number(process.hrtime.bigint() - started);
    const outputs: Record<string, HostTensor> = {};
    const transfer: ArrayBuffer[] = [];
    for (const [name, t] of Object.entries(result)) {
      const h = fromOrt(t);
      outputs[name] = h;
      if (!Array.isArray(h.data) && h.data.buffer instanceof ArrayBuffer && !transfer.includes(h.data.buffer)) transfer.push(h.data.buffer);
    }
    post({ type: 'result', id: msg.id, outputs, runNs }, transfer);
  } catch (err) {
    post({ type: 'error', id: msg.id, message: err instanceof Error ? err.message : String(err) });
  }
}

port.on('message', (msg: WorkerRequest) => {
  switch (msg.type) {
    case 'load': return void inTurn(msg.session, () => load(msg.session, msg.init));
    case 'run': return void inTurn(msg.session, () => run(msg));
    case 'unload': return void inTurn(msg.session, () => unload(msg.session));
    case 'close': return close();
  }
});
