// Messages between the inference service and its session worker threads. A worker holds any number
// of onnxruntime sessions, each under the id its host gave it: one, for a version with workers of
// its own; one per version placed there, on the pod's shared workers (session-host.ts).
import type { ExecutionProvider, SpinningPolicy } from '../../lib/config';
import type { HostTensor } from '../../lib/tensor';

/** What a session is made from. */
export interface SessionInit {
  modelPath: string;
  /** Providers to try in order; the first that creates a session wins. */
  providers: ExecutionProvider[];
  intraOpThreads: number;
  /** When onnxruntime's intra-op threads spin waiting for work (INFERMESH_INTRA_OP_SPINNING). */
  spinning: SpinningPolicy;
}

/**
 * Main thread → worker. The messages of one session are handled in the order they come, each once
 * the one before has finished: an `unload` sent while its session loads is answered after the load's
 * `loaded` (or `load-failed`), the session released in between. `close` releases every session the
 * same way, after what each is doing; loads and runs that come after it are refused.
 */
export type WorkerRequest =
  | { type: 'load'; session: number; init: SessionInit }
  | { type: 'run'; id: number; session: number; feeds: Record<string, HostTensor>; outputs: string[] }
  | { type: 'unload'; session: number }
  /** Release every session and end the thread. */
  | { type: 'close' };

/** Worker → main thread. */
export type WorkerReply =
  | { type: 'loaded'; session: number; provider: ExecutionProvider; fallback?: string; inputNames: string[]; outputNames: string[]; /** onnxruntime's making of the session alone, in ns. */ loadNs: number }
  | { type: 'load-failed'; session: number; message: string }
  | { type: 'result'; id: number; outputs: Record<string, HostTensor>; /** onnxruntime's run alone, in ns. */ runNs: number }
  | { type: 'error'; id: number; message: string }
  | { type: 'unloaded'; session: number }
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
