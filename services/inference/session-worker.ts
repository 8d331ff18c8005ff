// A worker thread owning one onnxruntime session: onnxruntime's run() blocks its thread, so
// sessions live here and the service's event loop stays free for health checks and other models.
import { parentPort, workerData } from 'node:worker_threads';
import { ort } from '../../lib/ort';
import type { HostTensor, OrtType } from '../../lib/tensor';
import type { ExecutionProvider } from '../../lib/config';
import { spinningConfig, type WorkerInit, type WorkerReply, type WorkerRequest } from './worker-protocol';

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (msg: WorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);

async function createSession(): Promise<{ session: ort.InferenceSession; provider: ExecutionProvider; fallback?: string }> {
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

async function main(): Promise<void> {
  let session: ort.InferenceSession;
  try {
    const created = await createSession();
    session = created.session;
    post({ type: 'ready', provider: created.provider, fallback: created.fallback, inputNames: [...session.inputNames], outputNames: [...session.outputNames] });
  } catch (err) {
    post({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
    return;
  }
  port.on('message', (msg: WorkerRequest) => {
    if (msg.type === 'close') {
      void session.release().finally(() => {
        post({ type: 'closed' });
        port.close();
      });
      return;
    }
    void run(session, msg);
  });
}

async function run(session: ort.InferenceSession, msg: Extract<WorkerRequest, { type: 'run' }>): Promise<void> {
  try {
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

void main();
