// The router's typed Open Inference Protocol handlers, on its grpc-js server behind the front door
// (front-door.ts routes every ModelInfer itself): answered from membership, fanned out to pods, or,
// for each request of a ModelStreamInfer stream, routed by the same policy as the front door's
// (routed-call.ts) with the typed client as its transport.
import * as grpc from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';
import { errors, statusMessage, toGrpcStatus } from '../../lib/errors';
import { unary } from '../../lib/grpc/client';
import { unaryHandler } from '../../lib/grpc/handlers';
import { notReadyTrailer } from '../../lib/grpc/ready-reason';
import { streamError } from '../../lib/grpc/stream-answer';
import { serveInferStream, type BytesAnswerHandlers, type StreamLimits } from '../../lib/grpc/stream-infer';
import type { ModelMetadataResponseOut } from '../../lib/grpc/types';
import { H2_CANCEL, type H2Stream } from '../../lib/h2/connection';
import { atDeadline, statusOf, unaryFrame } from '../../lib/h2/grpc';
import { closedUnanswered, openPodStream, podInferHeaders, RequestRefused, type PodAnswerHeaders } from './front-door';
import type { ForwardedRequest } from './forwarded-service';
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

/** The router's handlers: ModelInfer and ModelStreamInfer forward requests and answers as bytes. */
export type RouterHandlers = BytesAnswerHandlers<ForwardedRequest>;

/** Router identity for ServerMetadata. */
export interface RouterInfo {
  name: string;
  version: string;
  extensions: string[];
}

/**
 * One request routed for this grpc-js server (each request of a ModelStreamInfer stream, and a
 * ModelInfer made to this server directly): sent as the front door sends one, the client's bytes
 * to a pod over the router's HTTP/2 connections (podInferHeaders, openPodStream), the transport of
 * the same routing policy (RoutedCall). The pod's answer is taken whole, as bytes: never decoded
 * and encoded again.
 */
class ForwardedCall extends RoutedCall {
  private current: H2Stream | undefined;
  private reply: PodAnswerHeaders = {};
  private chunks: Buffer[] = [];
  private received = 0;
  private settled = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    deps: RoutingDeps,
    private readonly conns: PodConnections,
    private readonly maxMessageBytes: number,
    private readonly req: ForwardedRequest,
    private readonly deadline: number | undefined,
    private readonly settle: (err: Error | null, answer?: Buffer) => void,
  ) {
    super(deps, req.model_name, req.model_version);
  }

  begin(): void {
    if (this.deadline !== undefined) this.timer = atDeadline(this.deadline, () => this.deadlineExpired());
    this.start();
  }

  protected send(pod: Pod, version: number): void {
    const address = pod.address;
    this.reply = {};
    this.chunks = [];
    this.received = 0;
    const up = openPodStream(this.conns, address, podInferHeaders(address, [], version, this.deadline), this.reply);
    if (up instanceof RequestRefused) return this.refusedForRequest(Status.RESOURCE_EXHAUSTED, up.message);
    if (typeof up === 'string') return this.unanswered(up);
    this.current = up;
    up.onData = (chunk) => {
      if (this.current !== up) return;
      this.received += chunk.length;
      // The pod's limit is the router's: a larger answer is refused, as the pod would refuse it.
      if (this.received > 5 + this.maxMessageBytes) {
        this.abort();
        return this.refusedForRequest(Status.RESOURCE_EXHAUSTED, `the answer is larger than the limit of ${this.maxMessageBytes} bytes`);
      }
      this.chunks.push(chunk);
    };
    up.onClose = (code) => {
      if (this.current !== up) return; // aborted: the call ended without it
      this.current = undefined;
      const status = statusOf(this.reply.trailers ?? this.reply.headers);
      if (!this.reply.headers || !status) {
        const why = this.reply.headers ? `pod ${address} closed the call without a status` : closedUnanswered(address, code, up);
        if (why instanceof RequestRefused) this.refusedForRequest(Status.RESOURCE_EXHAUSTED, why.message);
        else this.unanswered(why);
      } else this.answered(status.code, status.message);
    };
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(this.req.bytes.length, 1);
    up.write(prefix);
    up.end(undefined, this.req.bytes);
  }

  protected abort(): void {
    const up = this.current;
    this.current = undefined;
    up?.reset(H2_CANCEL);
  }

  protected respond(code: number, message: string): void {
    this.settled = true;
    const details = statusMessage(message);
    this.settle(Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() }));
  }

  protected deliver(): void {
    const status = statusOf(this.reply.trailers ?? this.reply.headers)!;
    if (status.code !== Status.OK) return this.respond(status.code, status.message);
    const frame = unaryFrame(Buffer.concat(this.chunks));
    if ('error' in frame || frame.compressed) return this.respond(Status.INTERNAL, `pod ${this.pod?.address ?? ''} answered with no single plain message`);
    this.settled = true;
    this.settle(null, frame.message);
  }

  /** A call its client cancelled is answered to no one, but its promise still ends. */
  protected override finished(code: number, message: string): void {
    clearTimeout(this.timer);
    if (!this.settled) this.respond(code, message);
  }
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

  const deps: RoutingDeps = { router, stats, log };

  /**
   * Routes a request by the routing policy, as its bytes (ForwardedCall): the bytes of its answer.
   * `calls`, when given, holds it while in flight (so that the client's cancel reaches it).
   */
  function forward(req: ForwardedRequest, deadline: grpc.Deadline | undefined, calls?: Set<ForwardedCall>): Promise<Buffer> {
    if (req.refused) return Promise.reject(req.refused);
    const ms = deadline === undefined ? undefined : deadline instanceof Date ? deadline.getTime() : Number(deadline);
    return new Promise((resolve, reject) => {
      const call: ForwardedCall = new ForwardedCall(deps, conns, maxMessageBytes, req, ms !== undefined && Number.isFinite(ms) ? ms : undefined, (err, answer) => {
        calls?.delete(call);
        if (err) reject(err);
        else resolve(answer!);
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
      const calls = new Set<ForwardedCall>();
      call.on('cancelled', () => calls.forEach((c) => c.clientCancelled()));
      return forward(call.request, deadlineOf(call), calls);
    }),
    ModelStreamInfer: (call) => {
      // The client's cancel ends the requests in flight, blaming no pod.
      const calls = new Set<ForwardedCall>();
      call.on('cancelled', () => calls.forEach((c) => c.clientCancelled()));
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
