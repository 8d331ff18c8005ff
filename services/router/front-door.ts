// The router's front door on node:http2. ModelInfer, the one call on the hot path, never goes
// through grpc-js: the router reads the whole request, peeks its model and version, picks a pod and
// relays the pod's answer byte for byte (retrying once on another pod when the first could not
// answer). Every other call (metadata, statistics, streams, health) is piped as it is to the
// router's grpc-js server on a loopback port, where the typed handlers live.
import http2 from 'node:http2';
import { status as Status } from '@grpc/grpc-js';
import { propagation, SpanKind, SpanStatusCode, trace, type TextMapSetter } from '@opentelemetry/api';
import { toGrpcStatus } from '../../lib/errors';
import { ROUTED_VERSION_HEADER } from '../../lib/grpc/client';
import { atDeadline, forwardedHeaders, H2FrontDoor, pipeCall, relayedHeaders, relayedTrailers, respondStatus, timeoutHeader, traceContextOf, unaryFrame } from '../../lib/grpc/h2';
import { MODEL_INFER_PATH } from '../../lib/grpc/proto';
import type { Logger } from '../../lib/log';
import { VERSION } from '../../lib/version';
import type { PodConnections } from './pod-connections';
import { peekRequest } from './request-peek';
import type { Router } from './router';
import type { VersionStats } from './version-stats';

/** Attempts per request: the first, and one retry on another pod. */
const MAX_ATTEMPTS = 2;

/** Statuses that are the client's doing; they say nothing about a version's health. */
const CLIENT_ERRORS: ReadonlySet<number> = new Set([Status.INVALID_ARGUMENT, Status.NOT_FOUND, Status.CANCELLED, Status.OUT_OF_RANGE, Status.ALREADY_EXISTS]);

const headerSetter: TextMapSetter<http2.OutgoingHttpHeaders> = { set: (h, k, v) => (h[k] = v) };
const tracer = trace.getTracer('infermesh-router', VERSION);

/** One pod's answer, read whole before any of it is relayed (so a failed attempt can be retried). */
interface Answer {
  headers: http2.IncomingHttpHeaders;
  body: Buffer[];
  trailers: http2.IncomingHttpHeaders | undefined;
  /** The gRPC status, from the trailers (or the headers of a trailers-only answer). */
  code: number;
  message: string;
}

/** What a failed attempt means for retries and ejection. */
class AttemptFailed extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

export interface FrontDoorDeps {
  router: Router;
  stats: VersionStats;
  conns: PodConnections;
  /** host:port of the router's own grpc-js server, which answers every other call. */
  fallbackAddress: string;
  maxMessageBytes: number;
  /** Client connections are closed (gracefully) after about this long; 0: never. */
  maxConnectionAgeMs: number;
  log: Logger;
}

export class FrontDoor {
  private readonly door: H2FrontDoor;

  constructor(private readonly deps: FrontDoorDeps) {
    this.door = new H2FrontDoor({
      path: MODEL_INFER_PATH,
      onUnary: (stream, headers, body, deadline) => void this.route(stream, headers, body, deadline),
      maxMessageBytes: deps.maxMessageBytes,
      who: 'the router',
      fallbackAddress: deps.fallbackAddress,
      maxConnectionAgeMs: deps.maxConnectionAgeMs,
    });
  }

  listen(host: string, port: number): Promise<number> {
    return this.door.listen(host, port);
  }

  /** Stops taking calls and waits up to `budgetMs` for those in flight. */
  drain(budgetMs: number): Promise<boolean> {
    return this.door.drain(budgetMs);
  }

  /** `deadline`: epoch ms the client's grpc-timeout ends (undefined: none). */
  private async route(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, body: Buffer, deadline: number | undefined): Promise<void> {
    const { router, stats, log } = this.deps;
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
    const parent = traceContextOf(headers);
    const span = tracer.startSpan('router ModelInfer', { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'infermesh.model': model } }, parent);
    const started = process.hrtime.bigint();
    let chosen: number | undefined;
    let cancelled = false;
    stream.once('close', () => (cancelled = !stream.headersSent));
    let timer: NodeJS.Timeout | undefined;
    const finish = (code: number, message: string) => {
      clearTimeout(timer);
      if (code === Status.OK) span.setStatus({ code: SpanStatusCode.OK });
      else span.setStatus({ code: SpanStatusCode.ERROR, message });
      span.setAttribute('rpc.grpc.status_code', code);
      span.end();
    };
    try {
      router.admit();
    } catch (err) {
      const { code, details } = toGrpcStatus(err, log);
      respondStatus(stream, code, details);
      finish(code, details);
      return;
    }
    let current: http2.ClientHttp2Stream | undefined;
    let expired = false;
    if (deadline !== undefined) {
      timer = atDeadline(deadline, () => {
        expired = true;
        current?.close(http2.constants.NGHTTP2_CANCEL);
        respondStatus(stream, Status.DEADLINE_EXCEEDED, 'deadline exceeded');
      });
    }
    const stopped = () => cancelled || expired || stream.destroyed;
    const stoppedStatus = () => (expired ? Status.DEADLINE_EXCEEDED : Status.CANCELLED);
    const outcome = (ok: boolean) => {
      if (chosen !== undefined) stats.record(model, chosen, ok, Number(process.hrtime.bigint() - started) / 1e6);
    };
    try {
      const tried = new Set<string>();
      let version = requested;
      for (let attempt = 1; ; attempt++) {
        if (stopped()) return finish(stoppedStatus(), 'stopped before routing');
        let route;
        try {
          route = router.route(model, version, tried);
        } catch (err) {
          const { code, details } = toGrpcStatus(err, log);
          respondStatus(stream, code, details);
          if (!CLIENT_ERRORS.has(code)) outcome(false);
          return finish(code, details);
        }
        chosen = route.version;
        version = String(route.version);
        const out: http2.OutgoingHttpHeaders = {
          ...forwardedHeaders(headers),
          ':method': 'POST',
          ':path': MODEL_INFER_PATH,
          ':authority': route.pod.address,
          'content-type': 'application/grpc',
          te: 'trailers',
        };
        if (!requested) out[ROUTED_VERSION_HEADER] = version;
        if (deadline !== undefined) out['grpc-timeout'] = timeoutHeader(deadline);
        propagation.inject(trace.setSpan(parent, span), out, headerSetter);
        router.started(route.pod);
        let answer: Answer;
        try {
          answer = await this.attempt(route.pod.address, out, body, (s) => (current = s));
        } catch (err) {
          // The pod could not be reached, or went away before it answered.
          const failure = err instanceof AttemptFailed ? err : new AttemptFailed(Status.UNAVAILABLE, String(err));
          router.ended(route.pod, true);
          tried.add(route.pod.id);
          if (stopped()) return finish(stoppedStatus(), failure.message);
          if (attempt < MAX_ATTEMPTS && router.mayRetry()) {
            log.debug('retrying on another pod', { pod: route.pod.id, err: failure.message });
            continue;
          }
          outcome(false);
          respondStatus(stream, failure.code, failure.message);
          return finish(failure.code, failure.message);
        }
        const podFault = answer.code === Status.UNAVAILABLE;
        router.ended(route.pod, podFault);
        if (podFault) {
          // A draining pod or one whose model is unloading: it did not run the request.
          tried.add(route.pod.id);
          if (attempt < MAX_ATTEMPTS && !stopped() && router.mayRetry()) {
            log.debug('retrying on another pod', { pod: route.pod.id, err: answer.message });
            continue;
          }
        }
        if (answer.code === Status.OK) outcome(true);
        else if (!CLIENT_ERRORS.has(answer.code)) outcome(false);
        this.relay(stream, answer);
        return finish(answer.code, answer.message);
      }
    } finally {
      router.finish();
    }
  }

  /** Sends the request to `address` and reads the whole answer. */
  private attempt(address: string, headers: http2.OutgoingHttpHeaders, body: Buffer, onStream: (s: http2.ClientHttp2Stream) => void): Promise<Answer> {
    return new Promise((resolve, reject) => {
      let up: http2.ClientHttp2Stream;
      try {
        up = this.deps.conns.h2(address).request(headers);
      } catch (err) {
        reject(new AttemptFailed(Status.UNAVAILABLE, `pod ${address}: ${err instanceof Error ? err.message : String(err)}`));
        return;
      }
      onStream(up);
      let resHeaders: http2.IncomingHttpHeaders | undefined;
      let trailers: http2.IncomingHttpHeaders | undefined;
      const chunks: Buffer[] = [];
      up.on('response', (h) => (resHeaders = h));
      up.on('data', (c: Buffer) => chunks.push(c));
      up.on('trailers', (t) => (trailers = t));
      up.on('error', () => undefined);
      up.on('close', () => {
        const status = (trailers ?? resHeaders)?.['grpc-status'];
        if (!resHeaders || status === undefined) {
          reject(new AttemptFailed(Status.UNAVAILABLE, `pod ${address} closed the call without an answer (HTTP/2 code ${up.rstCode})`));
          return;
        }
        const src = trailers ?? resHeaders;
        resolve({ headers: resHeaders, body: chunks, trailers, code: Number(status), message: decodeMessage(src['grpc-message']) });
      });
      up.end(body);
    });
  }

  private relay(stream: http2.ServerHttp2Stream, answer: Answer): void {
    if (stream.destroyed || stream.closed || stream.headersSent) return;
    if (!answer.trailers) {
      // A trailers-only answer (an error status): its headers carry the status.
      stream.respond(relayedHeaders(answer.headers), { endStream: true });
      return;
    }
    stream.respond(relayedHeaders(answer.headers), { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers(relayedTrailers(answer.trailers)));
    for (const c of answer.body) stream.write(c);
    stream.end();
  }
}

function decodeMessage(m: string | string[] | undefined): string {
  if (typeof m !== 'string') return '';
  try {
    return decodeURIComponent(m);
  } catch {
    return m;
  }
}
