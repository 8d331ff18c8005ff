// A pod's port on the project's HTTP/2 layer (lib/h2), like the router's. ModelInfer, the one call on the hot path, is decoded, run and answered
// here without grpc-js, whose per-call work on the server side is a good part of what a batch-1
// request costs the pod (a compressed one arrives decompressed by the door); every other call
// (metadata, statistics, streams, health) is piped as it is to the pod's grpc-js server on a
// loopback port, where the typed handlers live. Both paths scan a request before decoding it (request-scan.ts) and run the
// same ModelRepository.serving(...).infer(...).
import { status as Status } from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { toGrpcStatus } from '../../lib/errors';
import { ROUTED_VERSION_HEADER } from '../../lib/grpc/client';
import { headerValue, type H2Stream, type Header } from '../../lib/h2/connection';
import type { DoorBudgets } from '../../lib/h2/budget';
import { H2FrontDoor } from '../../lib/h2/front-door';
import type { H2Limits } from '../../lib/h2/limits';
import type { H2ServerTls } from '../../lib/h2/server';
import type { UpstreamAddress } from '../../lib/h2/upstream';
import { atDeadline, respondMessage, respondStatus, traceContextOfList, unaryFrame } from '../../lib/h2/grpc';
import { MODEL_INFER_PATH, protos } from '../../lib/grpc/proto';
import type { ModelInferRequestOut } from '../../lib/grpc/types';
import { BusyPoll } from '../../lib/busy-poll';
import type { Logger } from '../../lib/log';
import { VERSION } from '../../lib/version';
import type { CallContext, LoadedVersion } from './loaded-version';
import type { ModelRepository } from './model-repository';
import { scanAndDecode, type RequestScanLimits } from '../../lib/grpc/request-scan';


const tracer = trace.getTracer('infermesh-inference', VERSION);

export interface PodFrontDoorDeps {
  repo: ModelRepository;
  /**
   * Polling after the last answer (lib/busy-poll.ts), `windowUs` long: touched when an answer leaves
   * no ModelInfer in flight, and stopped as soon as one is (the thread then has a run to wait for, and
   * its answer or the next request wakes it). Only after an answer of a version that runs on the
   * pod's own thread (SessionPool.inlined), whose next request then needs no other thread woken;
   * one on a worker has its worker to wake anyway, and there polling cost CPU and requests per
   * second (docs/benchmarks.md). And only when the polling thread and the answered version's
   * onnxruntime threads still spinning leave one of the pod's `cpus` free: the client, or the
   * thread the next request needs, must not wait behind two spinners for a time slice.
   */
  busyPoll?: { windowUs: number; cpus: number };
  /** The pod's own grpc-js server, which answers every other call (its socket, listenBehindDoor). */
  fallbackAddress: UpstreamAddress;
  maxMessageBytes: number;
  /** What one request may hold, counted before it is decoded. */
  scanLimits: RequestScanLimits;
  log: Logger;
  /** The limits, timeouts and budgets of the door's client connections (INFERMESH_H2_*; lib/h2 defaults for those not given). */
  h2?: Partial<H2Limits>;
  /** TLS of the door (lib/tls.ts); unset: plain h2c. */
  tls?: H2ServerTls;
  /** The door-wide budgets, shared with the pod's streams (podDoorBudgetsOf); unset: the door's own. */
  budgets?: DoorBudgets;
}

export class PodFrontDoor {
  private readonly door: H2FrontDoor;
  private readonly method = protos().inference.GRPCInferenceService.service.ModelInfer;
  /** ModelInfer calls taken and not yet answered. */
  private inflight = 0;
  private readonly busyPoll: BusyPoll;

  constructor(private readonly deps: PodFrontDoorDeps) {
    this.busyPoll = new BusyPoll(deps.busyPoll?.windowUs ?? 0, () => this.inflight === 0);
    this.door = new H2FrontDoor({
      path: MODEL_INFER_PATH,
      onUnary: (stream, headers, body, deadline) => void this.modelInfer(stream, headers, body, deadline ?? 0),
      maxMessageBytes: deps.maxMessageBytes,
      who: 'the pod',
      fallbackAddress: deps.fallbackAddress,
      limits: deps.h2,
      tls: deps.tls,
      budgets: deps.budgets,
    });
  }

  listen(host: string, port: number): Promise<number> {
    return this.door.listen(host, port);
  }

  /** Stops taking calls (GOAWAY) and waits up to `budgetMs` for those in flight. */
  async drain(budgetMs: number): Promise<boolean> {
    const drained = await this.door.drain(budgetMs);
    this.busyPoll.stop();
    return drained;
  }

  /** `deadlineMs`: epoch ms, 0 for none. */
  private async modelInfer(stream: H2Stream, headers: Header[], body: Buffer, deadlineMs: number): Promise<void> {
    const frame = unaryFrame(body);
    if ('error' in frame) return respondStatus(stream, Status.INVALID_ARGUMENT, frame.error);
    let req: ModelInferRequestOut;
    try {
      req = scanAndDecode(frame.message, this.deps.scanLimits, this.method.requestDeserialize);
    } catch (err) {
      const { code, details } = toGrpcStatus(err, this.deps.log);
      return respondStatus(stream, code, details);
    }
    const span = tracer.startSpan('inference ModelInfer', {
      kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'infermesh.model': req.model_name },
    }, traceContextOfList(headers));

    // The queue drops a request whose client went away or whose deadline passed.
    const onCancel: (() => void)[] = [];
    let answered = false;
    stream.onClose = (rstCode) => {
      if (rstCode !== undefined && !answered) for (const fn of onCancel) fn();
    };
    let code: number = Status.OK;
    let details = '';
    const timer = deadlineMs
      ? atDeadline(deadlineMs, () => {
          answered = true;
          code = Status.DEADLINE_EXCEEDED;
          details = 'deadline exceeded';
          respondStatus(stream, code, details);
          for (const fn of onCancel) fn();
        })
      : undefined;
    const ctx: CallContext = { deadlineMs, cancel: { onCancel: (fn) => onCancel.push(fn) } };
    let version: LoadedVersion | undefined;
    // Counted here, where the finally counts it out: a request refused above (a bad frame or
    // message) would otherwise stay in flight for good and keep the pod from polling.
    this.inflight++;
    try {
      version = this.deps.repo.serving(req.model_name, req.model_version, headerValue(headers, ROUTED_VERSION_HEADER) ?? '');
      const res = await version.infer(req, ctx);
      if (!answered) respondMessage(stream, res, this.deps.maxMessageBytes);
    } catch (err) {
      if (!answered) {
        ({ code, details } = toGrpcStatus(err, this.deps.log));
        respondStatus(stream, code, details);
      }
    } finally {
      answered = true;
      clearTimeout(timer);
      if (--this.inflight === 0 && version?.pool.inlined && version.pool.threadsSpinningAfterRun + 1 < (this.deps.busyPoll?.cpus ?? 0)) this.busyPoll.touch();
      span.setAttribute('rpc.grpc.status_code', code);
      span.setStatus(code === Status.OK ? { code: SpanStatusCode.OK } : { code: SpanStatusCode.ERROR, message: details });
      span.end();
    }
  }
}
