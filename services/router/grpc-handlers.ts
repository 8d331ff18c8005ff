// The router's typed Open Inference Protocol handlers, on its grpc-js server behind the front door
// (front-door.ts relays ModelInfer itself): answered from membership, or fanned out to pods.
import * as grpc from '@grpc/grpc-js';
import { errors, isServiceError, toGrpcStatus } from '../../lib/errors';
import { unary } from '../../lib/grpc/client';
import { unaryHandler } from '../../lib/grpc/handlers';
import type { InferenceHandlers, ModelInferRequestOut, ModelInferResponseOut, ModelMetadataResponseOut } from '../../lib/grpc/types';
import type { ModelConfigResponse } from '../../lib/grpc/generated/inference/ModelConfigResponse';
import type { ModelStatistics__Output as ModelStatisticsOut } from '../../lib/grpc/generated/inference/ModelStatistics';
import type { Logger } from '../../lib/log';
import type { Membership } from './membership';
import type { PodConnections } from './pod-connections';
import type { Router } from './router';
import type { VersionStats } from './version-stats';

/**
 * Whether a failure counts against the pod: it could not be reached or would not serve. A model's
 * own errors (INTERNAL from onnxruntime) are not the pod's fault; every pod would return them.
 */
const podFault = (err: unknown) => isServiceError(err) && err.code === grpc.status.UNAVAILABLE;

/** Router identity for ServerMetadata. */
export interface RouterInfo {
  name: string;
  version: string;
  extensions: string[];
}

/** Statuses that are the client's doing; they say nothing about a version's health. */
const CLIENT_ERRORS: ReadonlySet<number> = new Set([
  grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.CANCELLED, grpc.status.OUT_OF_RANGE, grpc.status.ALREADY_EXISTS,
]);
const countsAgainstVersion = (err: unknown) => !(isServiceError(err) && CLIENT_ERRORS.has(err.code));

export function routerHandlers(router: Router, membership: Membership, conns: PodConnections, stats: VersionStats, info: RouterInfo, log: Logger): InferenceHandlers {
  const deadlineOf = (call: { getDeadline(): grpc.Deadline }): grpc.Deadline | undefined => {
    const d = call.getDeadline();
    return d === Infinity ? undefined : d;
  };

  /** Routes a decoded request (streams, and ModelInfer sent to this server directly) through the typed client. */
  async function forwardTyped(req: ModelInferRequestOut, deadline: grpc.Deadline | undefined): Promise<ModelInferResponseOut> {
    router.admit();
    try {
      // As the front door does: a pod that fails before answering (UNAVAILABLE) gets the request
      // retried once on another pod serving the same version, within the retry budget.
      const tried = new Set<string>();
      let version = req.model_version;
      for (let attempt = 1; ; attempt++) {
        const route = router.route(req.model_name, version, tried);
        version = String(route.version);
        router.started(route.pod);
        const started = process.hrtime.bigint();
        const elapsedMs = () => Number(process.hrtime.bigint() - started) / 1e6;
        try {
          const res = await unary<ModelInferResponseOut>((cb) => conns.typed(route.pod.address).ModelInfer({ ...req, model_version: version }, deadline ? { deadline } : {}, cb));
          router.ended(route.pod, false);
          stats.record(req.model_name, route.version, true, elapsedMs());
          return res;
        } catch (err) {
          router.ended(route.pod, podFault(err));
          if (podFault(err) && attempt < 2 && router.mayRetry()) {
            tried.add(route.pod.id);
            continue;
          }
          if (countsAgainstVersion(err)) stats.record(req.model_name, route.version, false, elapsedMs());
          throw err;
        }
      }
    } finally {
      router.finish();
    }
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
    ModelReady: (call, cb) => cb(null, { ready: podWith(call.request.name, call.request.version) !== undefined }),
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
    // The front door (front-door.ts) relays ModelInfer's bytes without this server; this typed
    // path serves only calls made to this server's loopback port directly.
    ModelInfer: unaryHandler(log, async (call) => forwardTyped(call.request, deadlineOf(call))),
    ModelStreamInfer: (call) => {
      let pending = 0;
      let ended = false;
      const finish = () => {
        if (ended && pending === 0) call.end();
      };
      call.on('data', (req: ModelInferRequestOut) => {
        pending++;
        forwardTyped(req, deadlineOf(call)).then(
          (res) => call.write({ infer_response: res }),
          (err: unknown) => call.write({ error_message: toGrpcStatus(err, log).details, infer_response: { id: req.id, model_name: req.model_name, model_version: req.model_version } }),
        ).finally(() => {
          pending--;
          finish();
        });
      });
      call.on('end', () => {
        ended = true;
        finish();
      });
      call.on('error', () => undefined);
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
    RepositoryIndex: (call, cb) => {
      const seen = new Map<string, { name: string; version: string; state: string; reason: string }>();
      for (const pod of membership.all()) {
        for (const [name, versions] of pod.ready) {
          for (const v of versions) seen.set(`${name}\u0000${v}`, { name, version: String(v), state: 'READY', reason: '' });
        }
      }
      cb(null, { models: [...seen.values()].sort((a, b) => a.name.localeCompare(b.name) || Number(a.version) - Number(b.version)) });
    },
  };
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
