// A loaded version as Triton's ModelConfig (the ModelConfig extension): what tritonclient's
// get_model_config and perf_analyzer read to learn inputs, outputs and batching. Triton's rule:
// with max_batch_size > 0 the dims leave out the batch dimension; with 0 they are the whole shape.
import type { ModelConfig } from '../../lib/grpc/generated/inference/ModelConfig';
import type { DataType } from '../../lib/grpc/generated/inference/DataType';
import type { Datatype } from '../../lib/tensor';
import type { LoadedVersion } from './loaded-version';

/** The protocol's datatype names → Triton's DataType enum (BYTES is Triton's STRING). */
export function tritonDataType(dt: Datatype): keyof typeof DataType {
  return dt === 'BYTES' ? 'TYPE_STRING' : `TYPE_${dt}`;
}

/** Triton's configuration of `v`, with `platform`, as this pod serves it now. */
export function modelConfigOf(v: LoadedVersion, platform: string): ModelConfig {
  const b = v.batching;
  const dims = (shape: readonly number[]) => (b.enabled ? shape.slice(1) : [...shape]).map(String);
  return {
    name: v.name,
    platform,
    backend: 'onnxruntime',
    max_batch_size: b.enabled ? b.maxBatchSize : 0,
    input: v.signature.inputs.map((t) => ({ name: t.name, data_type: tritonDataType(t.datatype), dims: dims(t.shape) })),
    output: v.signature.outputs.map((t) => ({ name: t.name, data_type: tritonDataType(t.datatype), dims: dims(t.shape) })),
    instance_group: [{ name: `${v.name}_0`, count: v.pool.size, kind: v.provider === 'cuda' || v.provider === 'webgpu' ? 'KIND_GPU' : 'KIND_CPU' }],
    // intra_op_thread_count as Triton's onnxruntime backend names it (0: onnxruntime chose);
    // inline_max_rows: the most rows a run on the pod's own thread may have, as timed so far
    // (0: every run goes to a worker; INFERMESH_INLINE_RUN_US).
    parameters: {
      intra_op_thread_count: { string_value: String(v.pool.intraOpThreads) },
      intra_op_spinning: { string_value: v.pool.spinning },
      inline_max_rows: { string_value: String(v.pool.inlineRows) },
    },
    ...(b.enabled
      ? {
          dynamic_batching: {
            preferred_batch_size: b.preferredBatchSizes,
            max_queue_delay_microseconds: String(b.maxQueueDelayUs),
            default_queue_policy: { max_queue_size: b.maxQueueSize },
          },
        }
      : {}),
  };
}
