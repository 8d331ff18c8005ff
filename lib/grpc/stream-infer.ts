// ModelStreamInfer as every server of the mesh serves it (pods and the router): each request of a
// stream handled as it comes and answered by the bytes of its ModelInferResponse, wrapped as a
// stream answer (streamAnswerBytes), or by its error. A stream is held to what the door holds a
// client's unary calls to. At most `maxInFlight` requests, and `maxRequestBytes` of them, are in
// flight, and none is read while the client leaves answers unread (grpc-js's buffer full, or
// `maxAnswerBytes` of answers waiting): the stream's requests wait in HTTP/2's flow control, at
// the client, where before every request was taken at once, however many and however large. An
// answer that would take the waiting answers past `maxAnswerBytes` (one of any size when none
// waits) is refused RESOURCE_EXHAUSTED, as a unary one is: the router once held every answer of a
// stream whose client read none (5 MB more per request, to out of memory). Given its door's own
// budgets (a pod's), a stream's requests and unread answers count against them beside the door's
// unary calls, and one that does not fit is refused as the door refuses a unary one: a pod's
// streams once had budgets of their own, apart from the total its door holds to.
import type * as grpc from '@grpc/grpc-js';
import type { Config } from '../config';
import { ErrorCode, MeshError } from '../errors';
import type { DoorBudgets } from '../h2/budget';
import { requestsFull, unreadAnswers } from '../h2/grpc';
import type { H2Limits } from '../h2/limits';
import { streamAnswerBytes } from './infer-answer';
import type { ModelStreamInferResponse } from './generated/inference/ModelStreamInferResponse';
import type { InferenceHandlers } from './types';

/** The inference handlers but ModelInfer and ModelStreamInfer: what a server says of itself and its models. */
export type InfoHandlers = Pick<InferenceHandlers, 'ServerLive' | 'ServerReady' | 'ServerMetadata' | 'ModelReady' | 'ModelMetadata' | 'ModelConfig' | 'ModelStatistics' | 'RepositoryIndex'>;

/**
 * The inference handlers of a server whose ModelInfer and ModelStreamInfer answers are bytes
 * (scanned-service.ts bytesOrSerialized), for requests of type `Req`.
 */
export type BytesAnswerHandlers<Req> = InfoHandlers & {
  ModelInfer: grpc.handleUnaryCall<Req, Buffer>;
  ModelStreamInfer: grpc.handleBidiStreamingCall<Req, Buffer | ModelStreamInferResponse>;
};

export interface StreamLimits {
  /** Requests of one stream in flight (INFERMESH_STREAM_MAX_IN_FLIGHT). */
  maxInFlight: number;
  /** Bytes of one stream's requests in flight (the door's budget of one connection). */
  maxRequestBytes: number;
  /** Bytes of one stream's answers its client has not read (the door's budget of one connection). */
  maxAnswerBytes: number;
  /** Largest message sent (INFERMESH_MAX_MESSAGE_BYTES): a larger stream answer is refused for its request alone. */
  maxMessageBytes: number;
  /**
   * The door's own budgets, when its streams count against them with its unary calls: a request
   * that does not fit is refused RESOURCE_EXHAUSTED, as the door refuses a unary one, and an
   * answer as the door refuses one (lib/h2 mayQueue). Unset: the stream's own bounds only.
   */
  door?: SharedBudgets;
}

/** A door's budgets as its streams share them, and whose they are ("the pod"), for the refusals. */
export interface SharedBudgets {
  budgets: DoorBudgets;
  who: string;
}

/**
 * A stream's limits: its own count (INFERMESH_STREAM_MAX_IN_FLIGHT) and the budgets of one
 * connection of the door it comes through (`door`: its limits, and its budgets when given).
 */
export function streamLimitsOf(config: Pick<Config, 'streamMaxInFlight' | 'maxMessageBytes'>, door: Pick<H2Limits, 'maxRequestBytesPerConnection' | 'maxResponseBytesPerConnection'>, shared?: SharedBudgets): StreamLimits {
  return { maxInFlight: config.streamMaxInFlight, maxRequestBytes: door.maxRequestBytesPerConnection, maxAnswerBytes: door.maxResponseBytesPerConnection, maxMessageBytes: config.maxMessageBytes, door: shared };
}

export interface StreamHandlers<Req> {
  /** The request's size in bytes, as it came. */
  sizeOf(req: Req): number;
  /** Runs or forwards one request: the bytes of its ModelInferResponse. */
  infer(req: Req): Promise<Uint8Array>;
  /** The stream answer that says `req` failed with `err`. */
  failed(req: Req, err: unknown): ModelStreamInferResponse;
}

/** Serves one ModelStreamInfer call within `limits`; ends it once the client ended and every answer is written. */
export function serveInferStream<Req>(call: grpc.ServerDuplexStream<Req, Buffer | ModelStreamInferResponse>, limits: StreamLimits, h: StreamHandlers<Req>): void {
  const door = limits.door?.budgets;
  let inFlight = 0;
  let requestBytes = 0;
  let answerBytes = 0;
  let paused = false;
  let ended = false;
  // grpc-js said its buffer is full (write() returned false) and has not drained since.
  let blocked = false;
  call.on('drain', () => {
    blocked = false;
    settle();
  });
  // pause() stops 'data' events only: grpc-js's stream goes on reading, decoding and holding
  // messages up to its high-water mark (16 in object mode; 17 MB of requests were seen held past
  // a bound of 1). Reads are held where they start instead: Node calls _read again only once it
  // pushed, so a read held here is started when the stream takes requests again.
  const readable = call as unknown as { _read(size: number): void };
  const startRead = readable._read.bind(call);
  let readHeld = false;
  readable._read = (size) => {
    if (paused) readHeld = true;
    else startRead(size);
  };
  const settle = () => {
    // One request of any size is taken when none is in flight, as the door takes one message; none
    // while the client leaves answers unread.
    const full = inFlight >= limits.maxInFlight || (requestBytes > 0 && requestBytes >= limits.maxRequestBytes)
      || blocked || (answerBytes > 0 && answerBytes >= limits.maxAnswerBytes);
    if (full !== paused) {
      paused = full;
      if (full) call.pause();
      else {
        call.resume();
        if (readHeld) {
          readHeld = false;
          startRead(1);
        }
      }
    }
    if (ended && inFlight === 0) call.end();
  };
  const write = (req: Req, answer: Uint8Array) => {
    // A run that ends after its stream did (a cancel does not stop it) has no one to answer: counted
    // now, its bytes would never be given back (giveBack() has run, and grpc-js calls back nothing).
    if (over) return;
    const out = streamAnswerBytes(answer);
    // Wrapped, an answer within the message limit can pass it: grpc-js would end the whole stream.
    if (out.length > limits.maxMessageBytes) {
      if (!call.write(h.failed(req, new MeshError(ErrorCode.Overloaded, `response of ${out.length} bytes is larger than the limit of ${limits.maxMessageBytes} bytes`)))) blocked = true;
      return;
    }
    // As the door takes an answer (lib/h2 mayQueue): one of any size when none waits.
    if ((answerBytes > 0 && answerBytes + out.length > limits.maxAnswerBytes) || (door && door.answers.used > 0 && !door.answers.fits(out.length))) {
      if (!call.write(h.failed(req, new MeshError(ErrorCode.Overloaded, unreadAnswers(out.length))))) blocked = true;
      return;
    }
    answerBytes += out.length;
    if (door) door.answers.used += out.length;
    // Called once grpc-js has handed the answer on: it no longer waits for the client.
    const more = call.write(out, () => {
      answerBytes -= out.length;
      if (door && !over) door.answers.used -= out.length;
      settle();
    });
    if (!more) blocked = true;
  };
  call.on('data', (req: Req) => {
    const bytes = h.sizeOf(req);
    // As the door refuses a unary request that its budget cannot hold.
    if (door && !door.requests.fits(bytes)) {
      const err = new MeshError(ErrorCode.Overloaded, requestsFull(bytes, limits.door!.who, door.requests));
      if (!call.write(h.failed(req, err))) blocked = true;
      settle();
      return;
    }
    inFlight++;
    requestBytes += bytes;
    if (door) door.requests.used += bytes;
    settle();
    Promise.resolve().then(() => h.infer(req)).then(
      (answer) => write(req, answer),
      (err: unknown) => {
        if (!call.write(h.failed(req, err))) blocked = true;
      },
    ).finally(() => {
      inFlight--;
      requestBytes -= bytes;
      if (door) door.requests.used -= bytes;
      settle();
    });
  });
  call.on('end', () => {
    ended = true;
    settle();
  });
  call.on('error', () => undefined);
  // grpc-js calls no callback for a message it is handed after a cancel: what the stream's answers
  // still hold in the door's budget when it is over is given back here, never kept for good.
  let over = false;
  const giveBack = () => {
    if (over) return;
    over = true;
    if (door) door.answers.used -= answerBytes;
  };
  call.on('cancelled', giveBack);
  call.on('close', giveBack);
}
