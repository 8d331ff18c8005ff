// The router's front door, on the project's own HTTP/2 layer (lib/h2). ModelInfer, the one call on
// the hot path, never goes through grpc-js or node:http2: the router reads the whole request
// (decompressed by the door if the client compressed it), peeks its model and version, and routes
// it by the one routing policy (routed-call.ts), relaying the pod's answer byte for byte as it
// comes. Every other call (metadata, statistics, streams, health) is piped as it is to the
// router's grpc-js server on a loopback port, where the typed handlers live.
import { status as Status } from '@grpc/grpc-js';
import { propagation, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import { ROUTED_VERSION_HEADER } from '../../lib/grpc/client';
import { MODEL_INFER_PATH } from '../../lib/grpc/proto';
import { H2_CANCEL, H2_ENHANCE_YOUR_CALM, H2_INTERNAL_ERROR, HeaderListTooLarge, type CloseCode, type H2Stream, type Header } from '../../lib/h2/connection';
import type { DoorBudgets } from '../../lib/h2/budget';
import { H2FrontDoor } from '../../lib/h2/front-door';
import { atDeadline, forwardedHeaders, listSetter, relayedHeaders, respondStatus, statusOf, timeoutHeader, traceContextOfList, unaryFrame, unreadAnswers } from '../../lib/h2/grpc';
import type { H2Limits } from '../../lib/h2/limits';
import type { H2ServerTls } from '../../lib/h2/server';
import type { UpstreamAddress } from '../../lib/h2/upstream';
import { VERSION } from '../../lib/version';
import { upstreamOptions, type PodConnections } from './pod-connections';
import { peekRequest } from './request-peek';
import type { Pod } from './membership';
import { RoutedCall, type RoutingDeps } from './routed-call';
import { AUTHORIZATION_HEADER, authorizationOfHeaders } from '../../lib/auth';
import { afterCheck, type RouterAccess } from './access';
import { toGrpcStatus } from '../../lib/errors';

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

const tracer = trace.getTracer('infermesh-router', VERSION);

/**
 * The headers of a ModelInfer to the pod at `address` for `version`, whichever door the call came
 * in by: the client's `forwarded` headers, the version routed to (named or chosen: a pod that does
 * not hold it answers UNAVAILABLE, a stale view, not NOT_FOUND), and what is left of its deadline.
 */
export function podInferHeaders(address: string, forwarded: readonly Header[], version: number, deadline: number | undefined): Header[] {
  const out: Header[] = [METHOD_POST, SCHEME_HTTP, PATH_MODEL_INFER, authority(address), CONTENT_TYPE_GRPC, TE_TRAILERS, ...forwarded];
  out.push([ROUTED_VERSION_HEADER, String(version)]);
  if (deadline !== undefined) out.push(['grpc-timeout', timeoutHeader(deadline)]);
  return out;
}

export interface FrontDoorDeps extends RoutingDeps {
  conns: PodConnections;
  /** The router's own grpc-js server, which answers every other call (its socket, listenBehindDoor). */
  fallbackAddress: UpstreamAddress;
  maxMessageBytes: number;
  /** Client connections are closed (gracefully) after about this long; 0: never. */
  maxConnectionAgeMs: number;
  /** Whether to make a span per call (lib/telemetry's tracingActive()). */
  tracing: boolean;
  /**
   * Requests per connection to a pod or to the router's own grpc-js server before it is replaced
   * (0: until its stream ids run out, about 2^30).
   */
  maxRequestsPerConnection: number;
  /** The limits, timeouts and budgets of the door's client connections (INFERMESH_H2_*; lib/h2 defaults for those not given). */
  h2?: Partial<H2Limits>;
  /** TLS of the door (lib/tls.ts); unset: plain h2c. */
  tls?: H2ServerTls;
  /**
   * The door-wide budgets (doorBudgetsOf), shared with the router's ModelStreamInfer behind the
   * door, so that a stream's requests and answers count beside unary calls; unset: the door's own.
   */
  budgets?: DoorBudgets;
  /** Token checks (INFERMESH_AUTH on); undefined: every call is let through. */
  access?: RouterAccess;
}

/**
 * A call a pod would refuse, or did, for what the request itself holds (its metadata, with the
 * router's own headers, more than the pod takes): the client's doing, so its answer is
 * RESOURCE_EXHAUSTED, no pod is blamed and no other is tried (each would refuse it alike).
 */
export class RequestRefused {
  constructor(readonly message: string) {}
}

/**
 * Why a pod's stream closed before its answer: a reset ENHANCE_YOUR_CALM before any answer, on a
 * stream sent before the pod's SETTINGS said how large a header list it takes, is a pod's door
 * refusing the request's headers as more than that (lib/h2), the request's doing. Anything else
 * (another reset, a lost connection, or ENHANCE_YOUR_CALM for a list within the limit it gave)
 * is the pod's: a pod that refused every call so would otherwise never be ejected.
 */
export function closedUnanswered(address: string, code: CloseCode, stream: H2Stream): string | RequestRefused {
  if (code === H2_ENHANCE_YOUR_CALM && stream.headerListUnchecked) return new RequestRefused(`pod ${address} refused the request's metadata as more than it takes`);
  return `pod ${address} closed the call without an answer (${code === undefined ? 'no status' : code < 0 ? 'connection lost' : `HTTP/2 code ${code}`})`;
}

/** The header blocks of a pod's answer to one attempt: its headers, then its trailers. */
export interface PodAnswerHeaders {
  headers?: Header[];
  trailers?: Header[];
}

/**
 * Opens an attempt's stream to the pod at `address` with `headers`, keeping the header blocks it
 * answers in `answer`; or the message that says why it could not.
 */
export function openPodStream(conns: PodConnections, address: string, headers: Header[], answer: PodAnswerHeaders): H2Stream | string | RequestRefused {
  let up: H2Stream;
  try {
    up = conns.h2(address).request(headers);
  } catch (err) {
    if (err instanceof HeaderListTooLarge) {
      return new RequestRefused(`request metadata of ${err.bytes} bytes with the router's own headers, more than the ${err.limit} pod ${address} takes`);
    }
    return `pod ${address}: ${err instanceof Error ? err.message : String(err)}`;
  }
  up.onHeaders = (h) => {
    if (!answer.headers) answer.headers = h;
    else answer.trailers = h;
  };
  return up;
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
      fallbackOptions: upstreamOptions(deps.maxRequestsPerConnection),
      maxConnectionAgeMs: deps.maxConnectionAgeMs,
      limits: deps.h2,
      tls: deps.tls,
      budgets: deps.budgets,
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
    // The door has decompressed a compressed request: every ModelInfer is plain here.
    const frame = unaryFrame(body);
    if ('error' in frame) {
      respondStatus(stream, Status.INVALID_ARGUMENT, frame.error);
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
    const access = this.deps.access;
    if (!access) return new InferCall(this.deps, stream, headers, body, deadline, model, requested).begin();
    // The same check as the typed path's (access.ts); a cached token answers synchronously.
    afterCheck(
      () => access.check(authorizationOfHeaders(headers), 'ModelInfer', model),
      () => {
        if (!stream.closed) new InferCall(this.deps, stream, headers, body, deadline, model, requested).begin();
      },
      (err) => {
        const s = toGrpcStatus(err, this.deps.log);
        respondStatus(stream, s.code, s.details);
      },
    );
  }
}

/**
 * One ModelInfer through the router on bare HTTP/2: the transport of the routing policy
 * (RoutedCall), which decides everything else. Each attempt sends the client's bytes to a pod. The
 * pod's answer is relayed as it comes once its first message arrives and fits the answers the
 * router may hold for this client (the door's budgets, lib/h2): from that first byte to the client
 * the call is committed and no longer retried; before it, a pod that fails is retried elsewhere. An
 * answer that does not fit (the client leaves its earlier answers unread) is refused
 * RESOURCE_EXHAUSTED and blames nobody: the router holds no more than its budgets, however slowly
 * its clients read.
 */
class InferCall extends RoutedCall {
  /** The client's trace context and this call's span, when the process traces. */
  private readonly parent: Context | undefined;
  private readonly span: Span | undefined;
  private readonly forwarded: Header[];
  private current: H2Stream | undefined;
  /** The pod's answer's header blocks, of the attempt in flight (or the last one). */
  private reply: PodAnswerHeaders = {};
  /** The answer's first byte went to the client: the attempt can no longer be retried. */
  private committed = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly door: FrontDoorDeps,
    private readonly stream: H2Stream,
    headers: Header[],
    private readonly body: Buffer,
    private readonly deadline: number | undefined,
    model: string,
    requested: string,
  ) {
    super(door, model, requested);
    // The version header is the router's alone to set: a pod reads the first one, so a client's own
    // would override the traffic split. The client's token is for the router: the pod is reached
    // with the router's own identity, and a pod (which runs uploaded code) never sees a credential.
    this.forwarded = forwardedHeaders(headers).filter((h) => h[0] !== ROUTED_VERSION_HEADER && h[0] !== AUTHORIZATION_HEADER);
    if (door.tracing) {
      this.parent = traceContextOfList(headers);
      this.span = tracer.startSpan('router ModelInfer', { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'infermesh.model': model } }, this.parent);
    }
  }

  begin(): void {
    // The client's reset or lost connection, and its deadline: the call ends, blaming no one.
    this.stream.onClose = (code) => {
      if (code !== undefined) this.clientCancelled();
    };
    if (this.deadline !== undefined) this.timer = atDeadline(this.deadline, () => this.deadlineExpired());
    this.start();
  }

  protected send(pod: Pod, version: number): void {
    const address = pod.address;
    const out = podInferHeaders(address, this.forwarded, version, this.deadline);
    if (this.span?.isRecording()) propagation.inject(trace.setSpan(this.parent!, this.span), out, listSetter);
    this.reply = {};
    const up = openPodStream(this.door.conns, address, out, this.reply);
    if (up instanceof RequestRefused) return this.refusedForRequest(Status.RESOURCE_EXHAUSTED, up.message);
    if (typeof up === 'string') return this.unanswered(up);
    this.current = up;
    up.onData = (chunk) => {
      if (this.current !== up) return;
      if (!this.committed && !this.commit(chunk)) return;
      this.stream.write(chunk);
    };
    up.onClose = (code) => {
      if (this.current !== up) return; // aborted: the call ended without it
      this.current = undefined;
      const status = statusOf(this.reply.trailers ?? this.reply.headers);
      if (this.committed) {
        // Part of the answer is with the client: whatever happens now, no retry. (UNAVAILABLE
        // would be retried by the policy; after the first byte it is reported as INTERNAL.)
        if (!status) return this.answered(Status.INTERNAL, `pod ${address} ended its answer midway (${code === undefined ? 'no status' : code < 0 ? 'connection lost' : `HTTP/2 code ${code}`})`);
        return this.answered(status.code === Status.UNAVAILABLE ? Status.INTERNAL : status.code, status.message);
      }
      if (!this.reply.headers || !status) {
        const why = this.reply.headers ? `pod ${address} closed the call without a status` : closedUnanswered(address, code, up);
        if (why instanceof RequestRefused) this.refusedForRequest(Status.RESOURCE_EXHAUSTED, why.message);
        else this.unanswered(why);
      } else this.answered(status.code, status.message);
    };
    up.end(undefined, this.body);
  }

  /**
   * The pod's first answer bytes: admitted by the size its first message declares, or refused
   * when the answers this client has not read fill the router's budgets. True when committed.
   */
  private commit(chunk: Buffer): boolean {
    const stream = this.stream;
    const declared = chunk.length >= 5 ? 5 + chunk.readUInt32BE(1) : chunk.length;
    if (stream.closed || stream.headersSent || !this.reply.headers) return false;
    if (!stream.mayQueue(declared)) {
      respondStatus(stream, Status.RESOURCE_EXHAUSTED, unreadAnswers(declared));
      // The client's doing, not the pod's: the attempt is dropped and nobody blamed.
      this.clientCancelled();
      return false;
    }
    this.committed = true;
    stream.sendHeaders(relayedHeaders(this.reply.headers));
    return true;
  }

  protected abort(): void {
    const up = this.current;
    this.current = undefined;
    up?.reset(H2_CANCEL);
  }

  protected respond(code: number, message: string): void {
    respondStatus(this.stream, code, message);
  }

  protected deliver(): void {
    const stream = this.stream;
    if (stream.closed) return;
    if (this.committed) {
      // The answer went out as it came: its trailers end it, or it broke off.
      if (this.reply.trailers) stream.end(relayedHeaders(this.reply.trailers));
      else stream.reset(H2_INTERNAL_ERROR);
      return;
    }
    if (stream.headersSent) return;
    if (!this.reply.trailers) {
      // A trailers-only answer (an error status): its headers carry the status.
      stream.sendHeaders(relayedHeaders(this.reply.headers!), true);
      return;
    }
    stream.sendHeaders(relayedHeaders(this.reply.headers!));
    stream.end(relayedHeaders(this.reply.trailers));
  }

  protected override finished(code: number, message: string): void {
    clearTimeout(this.timer);
    const span = this.span;
    if (!span) return;
    if (code === Status.OK) span.setStatus({ code: SpanStatusCode.OK });
    else span.setStatus({ code: SpanStatusCode.ERROR, message });
    span.setAttribute('rpc.grpc.status_code', code);
    span.end();
  }
}
