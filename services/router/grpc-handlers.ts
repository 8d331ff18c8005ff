// The router's typed Open Inference Protocol handlers, on its grpc-js server behind the front door
// (front-door.ts routes every ModelInfer itself): answered from membership, fanned out to pods, or,
// for each request of a ModelStreamInfer stream, routed by the same policy as the front door's
// (routed-call.ts), its bytes sent and its answer taken whole (whole-answer-call.ts, as the REST
// door's).
import * as grpc from '@grpc/grpc-js';
import { ErrorCode, errors, MeshError, statusMessage, toGrpcStatus } from '../../lib/errors';
import { unary } from '../../lib/grpc/client';
import { unaryHandler } from '../../lib/grpc/handlers';
import { notReadyTrailer } from '../../lib/grpc/ready-reason';
import { streamError } from '../../lib/grpc/stream-answer';
import { serveInferStream, type BytesAnswerHandlers, type StreamLimits } from '../../lib/grpc/stream-infer';
import type { ModelMetadataResponseOut } from '../../lib/grpc/types';
import type { ForwardedRequest } from './forwarded-service';
import type { ModelConfigResponse } from '../../lib/grpc/generated/inference/ModelConfigResponse';
import type { ModelStatistics__Output as ModelStatisticsOut } from '../../lib/grpc/generated/inference/ModelStatistics';
import type { Logger } from '../../lib/log';
import type { Membership } from './membership';
import type { PodConnections } from './pod-connections';
import type { Router } from './router';
import { WholeAnswerCall, type WholeAnswerDeps } from './whole-answer-call';
import { authorizationOfMetadata } from '../../lib/auth';
import type { RouterAccess } from './access';
import type { VersionStats } from './version-stats';

/** The router's handlers: ModelInfer and ModelStreamInfer forward requests and answers as bytes. */
export type RouterHandlers = BytesAnswerHandlers<ForwardedRequest>;

/** Router identity for ServerMetadata. */
export interface RouterInfo {
  name: string;
  version: string;
  extensions: string[];
}

/**
 * The router's OIP handlers. `access` (INFERMESH_AUTH on): each request of a ModelStreamInfer
 * stream is checked for `infer` on its model (access.ts guards the other methods).
 */
export function routerHandlers(router: Router, membership: Membership, conns: PodConnections, stats: VersionStats, info: RouterInfo, limits: { maxMessageBytes: number; streams: StreamLimits }, log: Logger, access?: RouterAccess): RouterHandlers {
  const { maxMessageBytes, streams } = limits;
  const deadlineOf = (call: { getDeadline(): grpc.Deadline }): grpc.Deadline | undefined => {
    const d = call.getDeadline();
    return d === Infinity ? undefined : d;
  };

  const deps: WholeAnswerDeps = { router, stats, log, conns, maxMessageBytes };

  /**
   * Routes a request by the routing policy, as its bytes (WholeAnswerCall, as the REST door's): the
   * bytes of its answer. `calls`, when given, holds it while in flight (so that the client's cancel
   * reaches it); a cancelled call rejects CANCELLED, answered to no one, and one whose client
   * cancelled already (while its token was checked) is never sent.
   */
  function forward(req: ForwardedRequest, deadline: grpc.Deadline | undefined, calls?: ClientCalls): Promise<Buffer> {
    if (req.refused) return Promise.reject(req.refused);
    if (calls?.cancelled) return Promise.reject(new MeshError(ErrorCode.Cancelled, 'cancelled by the client'));
    const ms = deadline === undefined ? undefined : deadline instanceof Date ? deadline.getTime() : Number(deadline);
    return new Promise((resolve, reject) => {
      const fail = (code: number, message: string) => {
        const details = statusMessage(message);
        reject(Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() }));
      };
      const call: WholeAnswerCall = new WholeAnswerCall(deps, req.bytes, ms !== undefined && Number.isFinite(ms) ? ms : undefined, req.model_name, req.model_version, {
        answer: resolve,
        status: fail,
        // Settles a call that ended without an answer (its client's cancel); later settles are no-ops.
        finished: (code, message) => {
          calls?.delete(call);
          fail(code, message);
        },
      });
      calls?.add(call);
      call.begin();
    });
  }

  /** A pod that has `model` (any version, or `version`) ready. */
  function podWith(model: string, version: string) {
    const versions = version ? [Number(version)] : [...membership.readyVersions(model)].sort((a, b) => b - a);
    for (const v of versions) {
      const pod = membership.candidates(model, v)[0];
      if (pod) return { pod, version: v };
    }
    return undefined;
  }

  return {
    ServerLive: (_call, cb) => cb(null, { live: true }),
    ServerReady: (_call, cb) => cb(null, { ready: true }),
    ServerMetadata: (_call, cb) => cb(null, info),
    ModelReady: (call, cb) => {
      const { name, version } = call.request;
      if (podWith(name, version) !== undefined) return cb(null, { ready: true });
      // Not ready: say why, from what the pods reported of it (a failed load, a load under way).
      const states = membership.versionStates(name).filter((v) => !version || String(v.version) === version);
      const why = states.length === 0
        ? `no pod has ${version ? `version ${version} of ` : ''}model '${name}'`
        : states.map((v) => `version ${v.version} ${v.state}${v.reasons.length ? `: ${v.reasons.join('; ')}` : ''}`).join('; ');
      cb(null, { ready: false }, notReadyTrailer(why));
    },
    ModelMetadata: unaryHandler(log, async (call) => {
      const { name, version } = call.request;
      const found = podWith(name, version);
      if (!found) throw version ? errors.versionNotFound(name, version) : errors.modelNotFound(name);
      const res = await unary<ModelMetadataResponseOut>((cb) => conns.typed(found.pod.address).ModelMetadata({ name, version: String(found.version) }, { deadline: Date.now() + 10_000 }, cb));
      return { ...res, versions: [...membership.readyVersions(name)].sort((a, b) => a - b).map(String) };
    }),
    ModelConfig: unaryHandler(log, async (call) => {
      const { name, version } = call.request;
      const found = podWith(name, version);
      if (!found) throw version ? errors.versionNotFound(name, version) : errors.modelNotFound(name);
      return unary<ModelConfigResponse>((cb) => conns.typed(found.pod.address).ModelConfig({ name, version: String(found.version) }, { deadline: Date.now() + 10_000 }, cb));
    }),
    // The front door (front-door.ts) routes every ModelInfer without this server; this path
    // serves only calls made to this server's loopback port directly, by the same policy.
    ModelInfer: unaryHandler(log, async (call) => {
      const calls = new ClientCalls();
      call.on('cancelled', () => calls.cancel());
      return forward(call.request, deadlineOf(call), calls);
    }),
    ModelStreamInfer: (call) => {
      // The client's cancel ends the requests in flight, blaming no pod, and those still waiting
      // for their token check are not sent.
      const calls = new ClientCalls();
      call.on('cancelled', () => calls.cancel());
      // Each answer is marked final as a pod marks its own (the pod's came by a unary call, unmarked).
      serveInferStream(call, streams, {
        sizeOf: (req) => req.bytes.length,
        // The token is checked once per request, as a ModelInfer's: a refused one is this request's error.
        infer: async (req) => {
          if (access) await access.check(authorizationOfMetadata(call.metadata), 'ModelStreamInfer', req.model_name);
          return forward(req, deadlineOf(call), calls);
        },
        failed: (req, err) => streamError(req, toGrpcStatus(err, log).details),
      });
    },
    ModelStatistics: unaryHandler(log, async (call) => {
      const pods = membership.all();
      const answers = await Promise.allSettled(pods.map((p) =>
        unary<{ model_stats: ModelStatisticsOut[] }>((cb) => conns.typed(p.address).ModelStatistics(call.request, { deadline: Date.now() + 5_000 }, cb))));
      const sums = new Map<string, ModelStatisticsOut>();
      for (const a of answers) {
        if (a.status !== 'fulfilled') continue;
        for (const s of a.value.model_stats) {
          const key = `${s.name}\u0000${s.version}`;
          const cur = sums.get(key);
          sums.set(key, cur ? sumStats(cur, s) : s);
        }
      }
      if (call.request.name && sums.size === 0 && !membership.readyVersions(call.request.name).size) throw errors.modelNotFound(call.request.name);
      return { model_stats: [...sums.values()] };
    }),
    // Every version a pod reported, in the best state any pod has it in, with the pods' reasons.
    RepositoryIndex: (call, cb) => {
      const states = membership.versionStates().filter((v) => !call.request.ready || v.state === 'READY');
      cb(null, { models: states.map((v) => ({ name: v.name, version: String(v.version), state: v.state, reason: v.reasons.join('; ') })) });
    },
  };
}

/**
 * The routed calls of one client call, while in flight. Its cancel ends them, and any begun later:
 * a stream's request awaiting its token check when the stream was cancelled would otherwise reach
 * a pod and run for no one.
 */
class ClientCalls extends Set<WholeAnswerCall> {
  cancelled = false;

  cancel(): void {
    this.cancelled = true;
    for (const c of this) c.clientCancelled();
  }
}

const add = (a: string, b: string) => (BigInt(a) + BigInt(b)).toString();
type Dur = { count: string; ns: string } | null;
const addDur = (a: Dur, b: Dur) => ({ count: add(a?.count ?? '0', b?.count ?? '0'), ns: add(a?.ns ?? '0', b?.ns ?? '0') });

/** Sums two pods' statistics of the same model version. */
function sumStats(a: ModelStatisticsOut, b: ModelStatisticsOut): ModelStatisticsOut {
  const ia = a.inference_stats;
  const ib = b.inference_stats;
  const batches = new Map<string, ModelStatisticsOut['batch_stats'][number]>();
  for (const s of [...a.batch_stats, ...b.batch_stats]) {
    const cur = batches.get(s.batch_size);
    batches.set(s.batch_size, cur ? {
      batch_size: s.batch_size,
      compute_input: addDur(cur.compute_input, s.compute_input),
      compute_infer: addDur(cur.compute_infer, s.compute_infer),
      compute_output: addDur(cur.compute_output, s.compute_output),
    } : s);
  }
  return {
    ...a,
    last_inference: String(Math.max(Number(a.last_inference), Number(b.last_inference))),
    inference_count: add(a.inference_count, b.inference_count),
    execution_count: add(a.execution_count, b.execution_count),
    inference_stats: {
      success: addDur(ia?.success ?? null, ib?.success ?? null),
      fail: addDur(ia?.fail ?? null, ib?.fail ?? null),
      queue: addDur(ia?.queue ?? null, ib?.queue ?? null),
      compute_input: addDur(ia?.compute_input ?? null, ib?.compute_input ?? null),
      compute_infer: addDur(ia?.compute_infer ?? null, ib?.compute_infer ?? null),
      compute_output: addDur(ia?.compute_output ?? null, ib?.compute_output ?? null),
      cache_hit: addDur(ia?.cache_hit ?? null, ib?.cache_hit ?? null),
      cache_miss: addDur(ia?.cache_miss ?? null, ib?.cache_miss ?? null),
    },
    batch_stats: [...batches.values()].sort((x, y) => Number(x.batch_size) - Number(y.batch_size)),
  };
}
