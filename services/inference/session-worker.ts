// A worker thread owning onnxruntime sessions: onnxruntime's run() blocks its thread, so sessions
// live here and the service's event loop stays free for health checks and other models. It holds
// the sessions its host loads on it, by id, and runs one request at a time (onnxruntime-node loads
// and runs synchronously on the calling thread), in the order they come.
import { parentPort } from 'node:worker_threads';
import { ort } from '../../lib/ort';
import type { HostTensor, OrtType } from '../../lib/tensor';
import type { ExecutionProvider } from '../../lib/config';
import { spinningConfig, type SessionInit, type WorkerReply, type WorkerRequest } from './worker-protocol';

const port = parentPort!;
const post = (msg: WorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);
const sessions = new Map<number, ort.InferenceSession>();

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
    const { session, provider, fallback } = await createSession(init);
    sessions.set(id, session);
    post({ type: 'loaded', session: id, provider, fallback, inputNames: [...session.inputNames], outputNames: [...session.outputNames] });
  } catch (err) {
    post({ type: 'load-failed', session: id, message: err instanceof Error ? err.message : String(err) });
  }
}

async function unload(id: number): Promise<void> {
  const session = sessions.get(id);
  sessions.delete(id);
  await session?.release().catch(() => undefined);
  post({ type: 'unloaded', session: id });
}

async function run(msg: Extract<WorkerRequest, { type: 'run' }>): Promise<void> {
  try {
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
    case 'load': return void load(msg.session, msg.init);
    case 'run': return void run(msg);
    case 'unload': return void unload(msg.session);
    case 'close': {
      const all = [...sessions.values()];
      sessions.clear();
      void Promise.allSettled(all.map((s) => s.release())).finally(() => {
        post({ type: 'closed' });
        port.close();
      });
    }
  }
});
