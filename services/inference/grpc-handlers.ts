// The Open Inference Protocol on an inference pod: decode, ask the repository, encode.
import { toGrpcStatus, errors } from '../../lib/errors';
import { unaryHandler } from '../../lib/grpc/handlers';
import { ROUTED_VERSION_HEADER } from '../../lib/grpc/client';
import type { ModelInferRequestOut, ModelMetadataResponse } from '../../lib/grpc/types';
import type { ModelStatistics } from '../../lib/grpc/generated/inference/ModelStatistics';
import type { Logger } from '../../lib/log';
import type { ModelRepository } from './model-repository';
import type * as grpc from '@grpc/grpc-js';
import type { CallContext, LoadedVersion } from './loaded-version';
import type { Duration } from './model-stats';
import { modelConfigOf } from './model-config';
import { notReadyTrailer } from '../../lib/grpc/ready-reason';
import { refusalOf, requestSizeOf } from '../../lib/grpc/scanned-service';
import { streamError } from '../../lib/grpc/stream-answer';
import { serveInferStream, type BytesAnswerHandlers, type StreamLimits } from '../../lib/grpc/stream-infer';

/** Server identity and readiness, as the handlers need them. */
export interface ServerInfo {
  name: string;
  version: string;
  /** Protocol extensions served. */
  extensions: string[];
  /** Taking new requests: started, synced with the registry and not draining. */
  ready(): boolean;
}

/** The platform string of ONNX models, as Triton reports it. */
export const PLATFORM = 'onnxruntime_onnx';

const duration = (d: Duration) => ({ count: String(d.count), ns: d.ns.toString() });

function statisticsOf(v: LoadedVersion): ModelStatistics {
  const s = v.stats;
  return {
    name: v.name,
    version: String(v.version),
    last_inference: String(s.lastInference),
    inference_count: String(s.inferenceCount),
    execution_count: String(s.executionCount),
    inference_stats: {
      success: duration(s.success),
      fail: duration(s.fail),
      queue: duration(s.queue),
      compute_input: duration(s.computeInput),
      compute_infer: duration(s.computeInfer),
      compute_output: duration(s.computeOutput),
      cache_hit: { count: '0', ns: '0' },
      cache_miss: { count: '0', ns: '0' },
    },
    batch_stats: [...s.batches.entries()].sort(([a], [b]) => a - b).map(([size, b]) => ({
      batch_size: String(size),
      compute_input: duration(b.input),
      compute_infer: duration(b.infer),
      compute_output: duration(b.output),
    })),
  };
}

/** The inference handlers over `repo`; a ModelStreamInfer stream is held to `streams`. */
export function inferenceHandlers(repo: ModelRepository, server: ServerInfo, streams: StreamLimits, log: Logger): BytesAnswerHandlers<ModelInferRequestOut> {
  const infer = async (req: ModelInferRequestOut, ctx: CallContext, routed = ''): Promise<Buffer> => {
    const refusal = refusalOf(req);
    if (refusal) throw refusal;
    return repo.serving(req.model_name, req.model_version, routed).infer(req, ctx);
  };
  /** Deadline and cancellation of a call, for the queue. */
  const contextOf = (call: { getDeadline(): grpc.Deadline; on(e: 'cancelled', fn: () => void): unknown }): CallContext => {
    const d = call.getDeadline();
    const deadlineMs = d instanceof Date ? d.getTime() : Number.isFinite(d) ? Number(d) : 0;
    return { deadlineMs, cancel: { onCancel: (fn) => call.on('cancelled', fn) } };
  };
  /** The version metadata and config describe: the one named, else the newest ready (else newest loaded). */
  const described = (name: string, version: string): LoadedVersion => {
    const all = repo.versionsOf(name);
    if (all.length === 0) throw errors.modelNotFound(name);
    const v = version ? all.find((x) => String(x.version) === version) : (all.find((x) => x.state === 'READY') ?? all[0]);
    if (!v) throw errors.versionNotFound(name, version);
    return v;
  };

  return {
    ServerLive: (_call, cb) => cb(null, { live: true }),
    ServerReady: (_call, cb) => cb(null, { ready: server.ready() }),
    ServerMetadata: (_call, cb) => cb(null, { name: server.name, version: server.version, extensions: server.extensions }),
    ModelReady: (call, cb) => {
      try {
        repo.find(call.request.name, call.request.version);
        cb(null, { ready: true });
      } catch (err) {
        cb(null, { ready: false }, notReadyTrailer(err));
      }
    },
    ModelMetadata: unaryHandler(log, async (call): Promise<ModelMetadataResponse> => {
      const { name, version } = call.request;
      const all = repo.versionsOf(name);
      const v = described(name, version);
      return {
        name,
        versions: all.filter((x) => x.state === 'READY').map((x) => String(x.version)),
        platform: PLATFORM,
        inputs: v.signature.inputs,
        outputs: v.signature.outputs,
        properties: {
          execution_provider: v.state === 'READY' ? v.provider : '',
          max_batch_size: String(v.batching.enabled ? v.batching.maxBatchSize : 0),
        },
      };
    }),
    ModelConfig: unaryHandler(log, async (call) => ({ config: modelConfigOf(described(call.request.name, call.request.version), PLATFORM) })),
    ModelInfer: unaryHandler(log, (call) => infer(call.request, contextOf(call), String(call.metadata.get(ROUTED_VERSION_HEADER)[0] ?? ''))),
    // Each answer is marked final (stream-answer.ts), as Triton marks a non-decoupled model's.
    ModelStreamInfer: (call) => serveInferStream<ModelInferRequestOut>(call, streams, {
      sizeOf: requestSizeOf,
      infer: (req) => infer(req, { deadlineMs: contextOf(call).deadlineMs }),
      failed: (req, err) => streamError(req, toGrpcStatus(err, log).details),
    }),
    ModelStatistics: unaryHandler(log, async (call) => {
      const { name, version } = call.request;
      let versions = name ? repo.versionsOf(name) : repo.all();
      if (name && versions.length === 0) throw errors.modelNotFound(name);
      if (version) versions = versions.filter((v) => String(v.version) === version);
      if (name && version && versions.length === 0) throw errors.versionNotFound(name, version);
      return { model_stats: versions.filter((v) => v.state === 'READY' || v.state === 'UNLOADING').map(statisticsOf) };
    }),
    RepositoryIndex: unaryHandler(log, async (call) => ({
      models: repo.index()
        .filter((v) => !call.request.ready || v.state === 'READY')
        .map((v) => ({ name: v.name, version: String(v.version), state: v.state, reason: v.reason })),
    })),
  };
}
