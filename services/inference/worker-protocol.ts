// Messages between the inference service and its session worker threads.
import type { ExecutionProvider } from '../../lib/config';
import type { HostTensor } from '../../lib/tensor';

/** workerData of a session worker. */
export interface WorkerInit {
  modelPath: string;
  /** Providers to try in order; the first that creates a session wins. */
  providers: ExecutionProvider[];
  intraOpThreads: number;
  /** Whether onnxruntime's threads spin waiting for work. */
  spinning: boolean;
}

/** Main thread → worker. */
export type WorkerRequest =
  | { type: 'run'; id: number; feeds: Record<string, HostTensor>; outputs: string[] }
  | { type: 'close' };

/** Worker → main thread. */
export type WorkerReply =
  | { type: 'ready'; provider: ExecutionProvider; fallback?: string; inputNames: string[]; outputNames: string[] }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: number; outputs: Record<string, HostTensor> }
  | { type: 'error'; id: number; message: string }
  | { type: 'closed' };
