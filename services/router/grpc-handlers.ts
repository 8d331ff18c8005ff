// The router's typed Open Inference Protocol handlers, on its grpc-js server behind the front door
// (front-door.ts routes every ModelInfer itself): answered from membership, fanned out to pods, or,
// for each request of a ModelStreamInfer stream, routed by the same policy as the front door's
// (routed-call.ts) with the typed client as its transport.
import * as grpc from '@grpc/grpc-js';
import { errors, statusMessage, toGrpcStatus } from '../../lib/errors';
import { ROUTED_VERSION_HEADER, unary } from '../../lib/grpc/client';
import { unaryHandler } from '../../lib/grpc/handlers';
import { notReadyTrailer } from '../../lib/grpc/ready-reason';
import { refusalOf } from '../../lib/grpc/scanned-service';
import { streamAnswer, streamError } from '../../lib/grpc/stream-answer';
import type { InferenceHandlers, ModelInferRequestOut, ModelInferResponseOut, ModelMetadataResponseOut } from '../../lib/grpc/types';
import type { ModelConfigResponse } from '../../lib/grpc/generated/inference/ModelConfigResponse';
import type { ModelStatistics__Output as ModelStatisticsOut } from '../../lib/grpc/generated/inference/ModelStatistics';
import type { Logger } from '../../lib/log';
import type { Membership, Pod } from './membership';
import type { PodConnections } from './pod-connections';
import type { Router } from './router';
import { RoutedCall, type RoutingDeps } from './routed-call';
import { authorizationOfMetadata } from '../../lib/auth';
import type { RouterAccess } from './access';
import type { VersionStats } from './version-stats';

/** Router identity for ServerMetadata. */
export interface RouterInfo {
  name: string;
  version: string;
  extensions: string[];
}

/**
 * One request routed through the typed grpc-js client (each request of a ModelStreamInfer stream,
 * and a ModelInfer made to this server directly): the transport of the same routing policy the
 * front door uses (RoutedCall), which decides everything else.
 */
class TypedCall extends RoutedCall {
  private call: grpc.ClientUnaryCall | undefined;
  private answer: { res?: ModelInferResponseOut; err?: grpc.ServiceError } = {};
  private settled = false;

  constructor(
    deps: RoutingDeps,
    private readonly conns: PodConnections,
    private readonly req: ModelInferRequestOut,
    private readonly deadline: grpc.Deadline | undefined,
    private readonly settle: (err: Error | null, res?: ModelInferResponseOut) => void,
  ) {
    super(deps, req.model_name, req.model_version);
  }

  protected send(pod: Pod, version: number): void {
    // As the front door does: the version routed to (named or chosen) is in ROUTED_VERSION_HEADER,
    // which tells the pod that one it does not hold is the router's stale view (UNAVAILABLE, retried).
    const metadata = new grpc.Metadata();
    metadata.set(ROUTED_VERSION_HEADER, String(version));
    const call = this.conns.typed(pod.address).ModelInfer({ ...this.req, model_version: String(version) }, metadata, this.deadline ? { deadline: this.deadline } : {}, (err, res) => {
      if (this.call !== call) return; // aborted: the call ended without it
      this.call = undefined;
      this.answer = err ? { err } : { res: res! };
      // grpc-js reports a pod it could not reach as UNAVAILABLE too: the policy reads both alike.
      this.answered(err ? err.code : grpc.status.OK, err ? err.details : '');
    });
    this.call = call;
  }

  protected abort(): void {
    const call = this.call;
    this.call = undefined;
    call?.cancel();
  }

  protected respond(code: number, message: string): void {
    this.settled = true;
    const details = statusMessage(message);
    this.settle(Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() }));
  }

  protected deliver(): void {
    this.settled = true;
    if (this.answer.err) this.settle(this.answer.err);
    else this.settle(null, this.answer.res);
  }

  /** A call its client cancelled is answered to no one, but its promise still ends. */
  protected override finished(code: number, message: string): void {
    if (!this.settled) this.respond(code, message);
  }
}

/**
 * The router's OIP handlers. `access` (INFERMESH_AUTH on): each request of a ModelStreamInfer
 * stream is checked for `infer` on its model (access.ts guards the other methods).
 */
export function routerHandlers(router: Router, membership: Membership, conns: PodConnections, stats: VersionStats, info: RouterInfo, log: Logger, access?: RouterAccess): InferenceHandlers {
  const deadlineOf = (call: { getDeadline(): grpc.Deadline }): grpc.Deadline | undefined => {
    const d = call.getDeadline();
    return d === Infinity ? undefined : d;
  };

  const deps: RoutingDeps = { router, stats, log };

  /**
   * Routes a decoded request through the typed client by the routing policy; `calls`, when given,
   * holds it while in flight (so that the client's cancel reaches it).
   */
  function forwardTyped(req: ModelInferRequestOut, deadline: grpc.Deadline | undefined, calls?: Set<TypedCall>): Promise<ModelInferResponseOut> {
    // A request the scan refused before decoding (scanned-service.ts) goes to no pod.
    const refusal = refusalOf(req);
    if (refusal) return Promise.reject(refusal);
    return new Promise((resolve, reject) => {
      const call: TypedCall = new TypedCall(deps, conns, req, deadline, (err, res) => {
        calls?.delete(call);
        if (err) reject(err);
        else resolve(res!);
      });
      calls?.add(call);
      call.start();
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
    // The front door (front-door.ts) routes every ModelInfer without this server; this typed
    // path serves only calls made to this server's loopback port directly, by the same policy.
    ModelInfer: unaryHandler(log, async (call) => {
      const calls = new Set<TypedCall>();
      call.on('cancelled', () => calls.forEach((c) => c.clientCancelled()));
      return forwardTyped(call.request, deadlineOf(call), calls);
    }),
    ModelStreamInfer: (call) => {
      let pending = 0;
      let ended = false;
      // The client's cancel ends the requests in flight, blaming no pod.
      const calls = new Set<TypedCall>();
      call.on('cancelled', () => calls.forEach((c) => c.clientCancelled()));
      const finish = () => {
        if (ended && pending === 0) call.end();
      };
      call.on('data', (req: ModelInferRequestOut) => {
        pending++;
        // The token is checked once per request, as a ModelInfer's: a refused one is this request's error.
        const allowed = access ? Promise.resolve().then(() => access.check(authorizationOfMetadata(call.metadata), 'ModelStreamInfer', req.model_name)) : Promise.resolve();
        allowed.then(() => forwardTyped(req, deadlineOf(call), calls)).then(
          // Marked final as a pod marks its own (the pod's answer came by a unary call, unmarked).
          (res) => call.write(streamAnswer(res)),
          (err: unknown) => call.write(streamError(req, toGrpcStatus(err, log).details)),
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
    // Every version a pod reported, in the best state any pod has it in, with the pods' reasons.
    RepositoryIndex: (call, cb) => {
      const states = membership.versionStates().filter((v) => !call.request.ready || v.state === 'READY');
      cb(null, { models: states.map((v) => ({ name: v.name, version: String(v.version), state: v.state, reason: v.reasons.join('; ') })) });
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
