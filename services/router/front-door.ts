// The router's front door, on the project's own HTTP/2 layer (lib/h2). ModelInfer, the one call on
// the hot path, never goes through grpc-js or node:http2: the router reads the whole request,
// peeks its model and version, picks a pod and relays the pod's answer byte for byte (retrying once
// on another pod when the first could not answer). Every other call (metadata, statistics,
// streams, health, a compressed ModelInfer) is piped as it is to the router's grpc-js server on a
// loopback port, where the typed handlers live.
import { status as Status } from '@grpc/grpc-js';
import { propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { toGrpcStatus } from '../../lib/errors';
import { ROUTED_VERSION_HEADER } from '../../lib/grpc/client';
import { atDeadline, deadlineOf, timeoutHeader, unaryFrame } from '../../lib/grpc/h2';
import { MODEL_INFER_PATH } from '../../lib/grpc/proto';
import { H2_CANCEL, H2_NO_ERROR, headerValue, type H2Stream, type Header } from '../../lib/h2/connection';
import { forwardedHeaders, listSetter, pipeCall, relayedHeaders, respondStatus, statusOf, traceContextOfList } from '../../lib/h2/grpc';
import { H2Server } from '../../lib/h2/server';
import { H2Upstream } from '../../lib/h2/upstream';
import type { Logger } from '../../lib/log';
import { VERSION } from '../../lib/version';
import type { PodConnections } from './pod-connections';
import { peekRequest } from './request-peek';
import type { Router } from './router';
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

/** One pod's answer, read whole before any of it is relayed (so a failed attempt can be retried). */
interface Answer {
  headers: Header[];
  body: Buffer[];
  trailers: Header[] | undefined;
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
  private readonly server: H2Server;
  /** The router's grpc-js server, for every call the door hands over. */
  private readonly fallback: H2Upstream;

  constructor(private readonly deps: FrontDoorDeps) {
    this.fallback = new H2Upstream(deps.fallbackAddress, 1);
    this.server = new H2Server((stream, headers, endStream) => this.onStream(stream, headers, endStream), { maxConnectionAgeMs: deps.maxConnectionAgeMs });
  }

  listen(host: string, port: number): Promise<number> {
    return this.server.listen(host, port);
  }

  /** Stops taking calls (GOAWAY) and waits up to `budgetMs` for those in flight. */
  async drain(budgetMs: number): Promise<boolean> {
    const clean = await this.server.drain(budgetMs);
    this.fallback.close();
    return clean;
  }

  private onStream(stream: H2Stream, headers: Header[], endStream: boolean): void {
    if (headerValue(headers, ':path') !== MODEL_INFER_PATH || headerValue(headers, ':method') !== 'POST') {
      pipeCall(this.fallback, stream, headers, undefined, endStream);
      return;
    }
    if (!(headerValue(headers, 'content-type') ?? '').startsWith('application/grpc')) {
      stream.sendHeaders([[':status', '415']], true);
      return;
    }
    // The deadline counts from when the headers arrived.
    const deadline = deadlineOf(headerValue(headers, 'grpc-timeout'));
    const limit = this.deps.maxMessageBytes + 5;
    const chunks: Buffer[] = [];
    let length = 0;
    const onBody = () => void this.route(stream, headers, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length), deadline);
    if (endStream) return onBody();
    stream.onData = (chunk, end) => {
      if (length < 0) return;
      length += chunk.length;
      if (length > limit) {
        length = -1;
        respondStatus(stream, Status.RESOURCE_EXHAUSTED, `request is larger than the router's limit of ${this.deps.maxMessageBytes} bytes`);
        // The answer is complete: stop the rest of the upload (RST_STREAM NO_ERROR, as HTTP/2 allows).
        stream.reset(H2_NO_ERROR);
        return;
      }
      chunks.push(chunk);
      if (end) onBody();
    };
    stream.onHeaders = (_trailers, end) => {
      if (end && length >= 0) onBody();
    };
  }

  /** `deadline`: epoch ms the client's grpc-timeout ends (undefined: none). */
  private async route(stream: H2Stream, headers: Header[], body: Buffer, deadline: number | undefined): Promise<void> {
    const { router, stats, log } = this.deps;
    const frame = unaryFrame(body);
    if ('error' in frame) {
      respondStatus(stream, Status.INVALID_ARGUMENT, frame.error);
      return;
    }
    if (frame.compressed) {
      // A compressed request: the grpc-js server decompresses it and routes it with the typed handler.
      pipeCall(this.fallback, stream, headers, body);
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
    const parent = traceContextOfList(headers);
    const span = tracer.startSpan('router ModelInfer', { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'infermesh.model': model } }, parent);
    const started = process.hrtime.bigint();
    let chosen: number | undefined;
    let cancelled = false;
    let current: H2Stream | undefined;
    stream.onClose = (code) => {
      if (code === undefined) return;
      cancelled = !stream.headersSent;
      current?.reset(H2_CANCEL);
    };
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
    let expired = false;
    if (deadline !== undefined) {
      timer = atDeadline(deadline, () => {
        expired = true;
        current?.reset(H2_CANCEL);
        respondStatus(stream, Status.DEADLINE_EXCEEDED, 'deadline exceeded');
      });
    }
    const stopped = () => cancelled || expired || stream.closed;
    const stoppedStatus = () => (expired ? Status.DEADLINE_EXCEEDED : Status.CANCELLED);
    const outcome = (ok: boolean) => {
      if (chosen !== undefined) stats.record(model, chosen, ok, Number(process.hrtime.bigint() - started) / 1e6);
    };
    const forwarded = forwardedHeaders(headers);
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
        const out: Header[] = [METHOD_POST, SCHEME_HTTP, PATH_MODEL_INFER, authority(route.pod.address), CONTENT_TYPE_GRPC, TE_TRAILERS, ...forwarded];
        if (!requested) out.push([ROUTED_VERSION_HEADER, version]);
        if (deadline !== undefined) out.push(['grpc-timeout', timeoutHeader(deadline)]);
        if (span.isRecording()) propagation.inject(trace.setSpan(parent, span), out, listSetter);
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
  private attempt(address: string, headers: Header[], body: Buffer, onStream: (s: H2Stream) => void): Promise<Answer> {
    return new Promise((resolve, reject) => {
      let up: H2Stream;
      try {
        up = this.deps.conns.h2(address).request(headers);
      } catch (err) {
        reject(new AttemptFailed(Status.UNAVAILABLE, `pod ${address}: ${err instanceof Error ? err.message : String(err)}`));
        return;
      }
      onStream(up);
      let resHeaders: Header[] | undefined;
      let trailers: Header[] | undefined;
      const chunks: Buffer[] = [];
      up.onHeaders = (h) => {
        if (!resHeaders) resHeaders = h;
        else trailers = h;
      };
      up.onData = (c) => chunks.push(c);
      up.onClose = (code) => {
        const status = statusOf(trailers ?? resHeaders);
        if (!resHeaders || !status) {
          reject(new AttemptFailed(Status.UNAVAILABLE, `pod ${address} closed the call without an answer (${code === undefined ? 'no status' : code < 0 ? 'connection lost' : `HTTP/2 code ${code}`})`));
          return;
        }
        resolve({ headers: resHeaders, body: chunks, trailers, code: status.code, message: status.message });
      };
      up.end(undefined, body);
    });
  }

  private relay(stream: H2Stream, answer: Answer): void {
    if (stream.closed || stream.headersSent) return;
    if (!answer.trailers) {
      // A trailers-only answer (an error status): its headers carry the status.
      stream.sendHeaders(relayedHeaders(answer.headers), true);
      return;
    }
    stream.sendHeaders(relayedHeaders(answer.headers));
    for (const c of answer.body) stream.write(c);
    stream.end(relayedHeaders(answer.trailers));
  }
}
