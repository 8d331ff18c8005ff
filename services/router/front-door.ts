// The router's front door, on the project's own HTTP/2 layer (lib/h2). ModelInfer, the one call on
// the hot path, never goes through grpc-js or node:http2: the router reads the whole request,
// peeks its model and version, picks a pod and relays the pod's answer byte for byte (retrying once
// on another pod when the first could not answer). Every other call (metadata, statistics,
// streams, health, a compressed ModelInfer) is piped as it is to the router's grpc-js server on a
// loopback port, where the typed handlers live.
import { status as Status } from '@grpc/grpc-js';
import { propagation, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import { toGrpcStatus } from '../../lib/errors';
import { ROUTED_VERSION_HEADER } from '../../lib/grpc/client';
import { MODEL_INFER_PATH } from '../../lib/grpc/proto';
import { H2_CANCEL, type H2Stream, type Header } from '../../lib/h2/connection';
import { H2FrontDoor } from '../../lib/h2/front-door';
import { atDeadline, forwardedHeaders, listSetter, pipeCall, relayedHeaders, respondStatus, statusOf, timeoutHeader, traceContextOfList, unaryFrame } from '../../lib/h2/grpc';
import type { Logger } from '../../lib/log';
import { VERSION } from '../../lib/version';
import type { PodConnections } from './pod-connections';
import { peekRequest } from './request-peek';
import type { Router } from './router';
import type { Pod } from './membership';
import type { VersionStats } from './version-stats';

// Headers of every request to a pod, made once.
const METHOD_POST: Header = [':method', 'POST'];
const SCHEME_HTTP: Header = [':scheme', 'http'];
const PATH_MODEL_INFER: Header = [':path', MODEL_INFER_PATH];
const CONTENT_TYPE_GRPC: Header = ['content-type', 'application/grpc'];
const TE_TRAILERS: Header = ['te', 'trailers'];
const authorities = new Map<string, Header>();
function authority(address: string): Header {
  let h = authorities.get(address);
  if (!h) {
    if (authorities.size >= 1024) authorities.clear();
    authorities.set(address, (h = [':authority', address]));
  }
  return h;
}

/** Attempts per request: the first, and one retry on another pod. */
const MAX_ATTEMPTS = 2;

/** Statuses that are the client's doing; they say nothing about a version's health. */
const CLIENT_ERRORS: ReadonlySet<number> = new Set([Status.INVALID_ARGUMENT, Status.NOT_FOUND, Status.CANCELLED, Status.OUT_OF_RANGE, Status.ALREADY_EXISTS]);

const tracer = trace.getTracer('infermesh-router', VERSION);

export interface FrontDoorDeps {
  router: Router;
  stats: VersionStats;
  conns: PodConnections;
  /** host:port of the router's own grpc-js server, which answers every other call. */
  fallbackAddress: string;
  maxMessageBytes: number;
  /** Client connections are closed (gracefully) after about this long; 0: never. */
  maxConnectionAgeMs: number;
  /** Whether to make a span per call (lib/telemetry's tracingActive()). */
  tracing: boolean;
  log: Logger;
}

export class FrontDoor {
  private readonly door: H2FrontDoor;

  constructor(private readonly deps: FrontDoorDeps) {
    this.door = new H2FrontDoor({
      path: MODEL_INFER_PATH,
      onUnary: (stream, headers, body, deadline) => this.route(stream, headers, body, deadline),
      maxMessageBytes: deps.maxMessageBytes,
      who: 'the router',
      fallbackAddress: deps.fallbackAddress,
      maxConnectionAgeMs: deps.maxConnectionAgeMs,
    });
  }

  listen(host: string, port: number): Promise<number> {
    return this.door.listen(host, port);
  }

  /** Stops taking calls (GOAWAY) and waits up to `budgetMs` for those in flight. */
  drain(budgetMs: number): Promise<boolean> {
    return this.door.drain(budgetMs);
  }

  /** `deadline`: epoch ms the client's grpc-timeout ends (undefined: none). */
  private route(stream: H2Stream, headers: Header[], body: Buffer, deadline: number | undefined): void {
    const frame = unaryFrame(body);
    if ('error' in frame) {
      respondStatus(stream, Status.INVALID_ARGUMENT, frame.error);
      return;
    }
    if (frame.compressed) {
      // A compressed request: the grpc-js server decompresses it and routes it with the typed handler.
      pipeCall(this.door.fallback, stream, headers, body);
      return;
    }
    let model: string;
    let requested: string;
    try {
      ({ model, version: requested } = peekRequest(frame.message));
    } catch (err) {
      respondStatus(stream, Status.INVALID_ARGUMENT, err instanceof Error ? err.message : String(err));
      return;
    }
    new InferCall(this.deps, stream, headers, body, deadline, model, requested).start();
  }
}

/**
 * One ModelInfer through the router: admitted, routed to a pod, sent, retried once on another pod
 * when the first could not answer, and the answer relayed byte for byte. Callbacks rather than
 * promises: this is the router's per-request path.
 */
class InferCall {
  private readonly startedAt = process.hrtime.bigint();
  /** The client's trace context and this call's span, when the process traces. */
  private readonly parent: Context | undefined;
  private readonly span: Span | undefined;
  private readonly forwarded: Header[];
  private version: string;
  private attempts = 0;
  private tried: Set<string> | undefined;
  private pod: Pod | undefined;
  /** The version the current attempt serves (for the version's stats). */
  private chosen: number | undefined;
  private current: H2Stream | undefined;
  private resHeaders: Header[] | undefined;
  private trailers: Header[] | undefined;
  private chunks: Buffer[] = [];
  private timer: NodeJS.Timeout | undefined;
  private admitted = false;
  private cancelled = false;
  private expired = false;
  private ended = false;

  constructor(
    private readonly deps: FrontDoorDeps,
    private readonly stream: H2Stream,
    headers: Header[],
    private readonly body: Buffer,
    private readonly deadline: number | undefined,
    private readonly model: string,
    private readonly requested: string,
  ) {
    this.version = requested;
    this.forwarded = forwardedHeaders(headers);
    if (deps.tracing) {
      this.parent = traceContextOfList(headers);
      this.span = tracer.startSpan('router ModelInfer', { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'infermesh.model': model } }, this.parent);
    }
  }

  start(): void {
    try {
      this.deps.router.admit();
    } catch (err) {
      const { code, details } = toGrpcStatus(err, this.deps.log);
      respondStatus(this.stream, code, details);
      return this.end(code, details);
    }
    this.admitted = true;
    this.stream.onClose = (code) => {
      if (code === undefined) return;
      this.cancelled = !this.stream.headersSent;
      this.current?.reset(H2_CANCEL);
    };
    if (this.deadline !== undefined) {
      this.timer = atDeadline(this.deadline, () => {
        this.expired = true;
        respondStatus(this.stream, Status.DEADLINE_EXCEEDED, 'deadline exceeded');
        this.current?.reset(H2_CANCEL);
      });
    }
    this.next();
  }

  private stopped(): boolean {
    return this.cancelled || this.expired || this.stream.closed;
  }

  private stoppedStatus(): number {
    return this.expired ? Status.DEADLINE_EXCEEDED : Status.CANCELLED;
  }

  private outcome(ok: boolean): void {
    if (this.chosen !== undefined) this.deps.stats.record(this.model, this.chosen, ok, Number(process.hrtime.bigint() - this.startedAt) / 1e6);
  }

  /** Routes and sends one attempt. */
  private next(): void {
    const { router, conns, log } = this.deps;
    this.attempts++;
    if (this.stopped()) return this.end(this.stoppedStatus(), 'stopped before routing');
    let route;
    try {
      route = router.route(this.model, this.version, this.tried);
    } catch (err) {
      const { code, details } = toGrpcStatus(err, log);
      respondStatus(this.stream, code, details);
      if (!CLIENT_ERRORS.has(code)) this.outcome(false);
      return this.end(code, details);
    }
    this.chosen = route.version;
    this.version = String(route.version);
    this.pod = route.pod;
    const address = route.pod.address;
    const out: Header[] = [METHOD_POST, SCHEME_HTTP, PATH_MODEL_INFER, authority(address), CONTENT_TYPE_GRPC, TE_TRAILERS, ...this.forwarded];
    if (!this.requested) out.push([ROUTED_VERSION_HEADER, this.version]);
    if (this.deadline !== undefined) out.push(['grpc-timeout', timeoutHeader(this.deadline)]);
    if (this.span?.isRecording()) propagation.inject(trace.setSpan(this.parent!, this.span), out, listSetter);
    router.started(route.pod);
    this.resHeaders = undefined;
    this.trailers = undefined;
    this.chunks = [];
    let up: H2Stream;
    try {
      up = conns.h2(address).request(out);
    } catch (err) {
      return this.failed(Status.UNAVAILABLE, `pod ${address}: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.current = up;
    up.onHeaders = (h) => {
      if (!this.resHeaders) this.resHeaders = h;
      else this.trailers = h;
    };
    up.onData = (c) => this.chunks.push(c);
    up.onClose = (code) => {
      this.current = undefined;
      const status = statusOf(this.trailers ?? this.resHeaders);
      if (!this.resHeaders || !status) {
        this.failed(Status.UNAVAILABLE, `pod ${address} closed the call without an answer (${code === undefined ? 'no status' : code < 0 ? 'connection lost' : `HTTP/2 code ${code}`})`);
      } else this.answered(status.code, status.message);
    };
    up.end(undefined, this.body);
  }

  /** The pod could not be reached, or went away before it answered. */
  private failed(code: number, message: string): void {
    const { router, log } = this.deps;
    router.ended(this.pod!, true);
    (this.tried ??= new Set()).add(this.pod!.id);
    if (this.stopped()) return this.end(this.stoppedStatus(), message);
    if (this.attempts < MAX_ATTEMPTS && router.mayRetry()) {
      log.debug('retrying on another pod', { pod: this.pod!.id, err: message });
      return this.next();
    }
    this.outcome(false);
    respondStatus(this.stream, code, message);
    this.end(code, message);
  }

  private answered(code: number, message: string): void {
    const { router, log } = this.deps;
    const podFault = code === Status.UNAVAILABLE;
    router.ended(this.pod!, podFault);
    if (podFault) {
      // A draining pod or one whose model is unloading: it did not run the request.
      (this.tried ??= new Set()).add(this.pod!.id);
      if (this.attempts < MAX_ATTEMPTS && !this.stopped() && router.mayRetry()) {
        log.debug('retrying on another pod', { pod: this.pod!.id, err: message });
        return this.next();
      }
    }
    if (code === Status.OK) this.outcome(true);
    else if (!CLIENT_ERRORS.has(code)) this.outcome(false);
    this.relay();
    this.end(code, message);
  }

  private relay(): void {
    const stream = this.stream;
    if (stream.closed || stream.headersSent) return;
    if (!this.trailers) {
      // A trailers-only answer (an error status): its headers carry the status.
      stream.sendHeaders(relayedHeaders(this.resHeaders!), true);
      return;
    }
    stream.sendHeaders(relayedHeaders(this.resHeaders!));
    for (const c of this.chunks) stream.write(c);
    stream.end(relayedHeaders(this.trailers));
  }

  private end(code: number, message: string): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    if (this.admitted) this.deps.router.finish();
    const span = this.span;
    if (!span) return;
    if (code === Status.OK) span.setStatus({ code: SpanStatusCode.OK });
    else span.setStatus({ code: SpanStatusCode.ERROR, message });
    span.setAttribute('rpc.grpc.status_code', code);
    span.end();
  }
}
