// Messages between the inference service and its session worker threads.
import type { ExecutionProvider, SpinningPolicy } from '../../lib/config';
import type { HostTensor } from '../../lib/tensor';

/** workerData of a session worker. */
export interface WorkerInit {
  modelPath: string;
  /** Providers to try in order; the first that creates a session wins. */
  providers: ExecutionProvider[];
  intraOpThreads: number;
  /** When onnxruntime's intra-op threads spin waiting for work (INFERMESH_INTRA_OP_SPINNING). */
  spinning: SpinningPolicy;
  /** The worker's V8 young generation, in MB (its resourceLimits, set by the pool). */
  youngGenerationMb: number;
}

/** Main thread → worker. */
export type WorkerRequest =
  | { type: 'run'; id: number; feeds: Record<string, HostTensor>; outputs: string[] }
  | { type: 'close' };

/** Worker → main thread. */
export type WorkerReply =
  | { type: 'ready'; provider: ExecutionProvider; fallback?: string; inputNames: string[]; outputNames: string[] }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: number; outputs: Record<string, HostTensor>; /** onnxruntime's run alone, in ns. */ runNs: number }
  | { type: 'error'; id: number; message: string }
  | { type: 'closed' };

/**
 * onnxruntime's session entries for a spinning policy (INFERMESH_INTRA_OP_SPINNING): `runs` stops
 * the spinning when the session's last run returns (force_spinning_stop); `off` lets no thread spin.
 */
export function spinningConfig(policy: SpinningPolicy): { intra_op: { allow_spinning: string }; inter_op: { allow_spinning: string }; force_spinning_stop: string } {
  return {
    intra_op: { allow_spinning: policy === 'off' ? '0' : '1' },
    inter_op: { allow_spinning: '0' },
    force_spinning_stop: policy === 'runs' ? '1' : '0',
  };
}
