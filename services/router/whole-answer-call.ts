// One ModelInfer routed for a door that needs the pod's whole answer before it answers its own
// client: the REST door (which turns it into JSON) and the router's grpc-js server (each request
// of a ModelStreamInfer stream, wrapped as a stream answer). The request goes as the front door
// sends one, over the same connections with the same headers (podInferHeaders, openPodStream), by
// the one routing policy (RoutedCall); the answer is gathered as bytes, within the message limit,
// and never decoded here.
import { status as Status } from '@grpc/grpc-js';
import { H2_CANCEL, type H2Stream } from '../../lib/h2/connection';
import { atDeadline, statusOf, unaryFrame } from '../../lib/h2/grpc';
import { closedUnanswered, openPodStream, podInferHeaders, RequestRefused, type PodAnswerHeaders } from './front-door';
import type { Pod } from './membership';
import type { PodConnections } from './pod-connections';
import { RoutedCall, type RoutingDeps } from './routed-call';

export interface WholeAnswerDeps extends RoutingDeps {
  conns: PodConnections;
  /** Largest answer a pod may send (INFERMESH_MAX_MESSAGE_BYTES). */
  maxMessageBytes: number;
}

/** What the door does with the call's end. */
export interface WholeAnswerHandlers {
  /** The pod answered OK: its ModelInferResponse's bytes. */
  answer(message: Buffer): void;
  /** The call ends with a status of the pod's or the router's own. */
  status(code: number, message: string): void;
  /** Called once when the call is over, however it ended (a client's cancel answers no one). */
  finished?(code: number, message: string): void;
}

export class WholeAnswerCall extends RoutedCall {
  private current: H2Stream | undefined;
  /** The pod's answer's header blocks, of the attempt in flight (or the last one). */
  private reply: PodAnswerHeaders = {};
  /** The pod's status of the attempt that answered (or the router's, for an answer it refused). */
  private answerStatus = { code: Status.UNKNOWN as number, message: '' };
  private chunks: Buffer[] = [];
  private length = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly prefix: Buffer;

  /** `message`: the ModelInferRequest's bytes, sent as they are; `deadline`: epoch ms, or none. */
  constructor(
    private readonly door: WholeAnswerDeps,
    private readonly message: Buffer,
    private readonly deadline: number | undefined,
    model: string,
    requested: string,
    private readonly on: WholeAnswerHandlers,
  ) {
    super(door, model, requested);
    this.prefix = Buffer.allocUnsafe(5);
    this.prefix[0] = 0;
    this.prefix.writeUInt32BE(message.length, 1);
  }

  begin(): void {
    if (this.deadline !== undefined) this.timer = atDeadline(this.deadline, () => this.deadlineExpired());
    this.start();
  }

  protected send(pod: Pod, version: number): void {
    const address = pod.address;
    this.reply = {};
    this.chunks = [];
    this.length = 0;
    const up = openPodStream(this.door.conns, address, podInferHeaders(address, [], version, this.deadline), this.reply);
    if (up instanceof RequestRefused) return this.refusedForRequest(Status.RESOURCE_EXHAUSTED, up.message);
    if (typeof up === 'string') return this.unanswered(up);
    this.current = up;
    up.onData = (chunk) => {
      if (this.current !== up) return;
      this.length += chunk.length;
      if (this.length > this.door.maxMessageBytes + 5) {
        this.current = undefined;
        up.reset(H2_CANCEL);
        this.chunks = [];
        this.answerStatus = { code: Status.INTERNAL, message: `pod ${address} answered more than the limit of ${this.door.maxMessageBytes} bytes` };
        return this.answered(this.answerStatus.code, this.answerStatus.message);
      }
      this.chunks.push(chunk);
    };
    up.onClose = (code) => {
      if (this.current !== up) return; // aborted: the call ended without it
      this.current = undefined;
      const status = statusOf(this.reply.trailers ?? this.reply.headers);
      if (!this.reply.headers || !status) {
        const why = this.reply.headers ? `pod ${address} closed the call without a status` : closedUnanswered(address, code, up);
        return why instanceof RequestRefused ? this.refusedForRequest(Status.RESOURCE_EXHAUSTED, why.message) : this.unanswered(why);
      }
      this.answerStatus = status;
      this.answered(status.code, status.message);
    };
    up.write(this.prefix);
    up.end(undefined, this.message);
  }

  protected abort(): void {
    const up = this.current;
    this.current = undefined;
    up?.reset(H2_CANCEL);
  }

  protected respond(code: number, message: string): void {
    this.on.status(code, message);
  }

  protected deliver(): void {
    const status = this.answerStatus;
    if (status.code !== Status.OK) return this.on.status(status.code, status.message);
    const frame = unaryFrame(this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.length));
    if ('error' in frame || frame.compressed) {
      return this.on.status(Status.INTERNAL, `the pod's answer is not one uncompressed gRPC message${'error' in frame ? `: ${frame.error}` : ''}`);
    }
    this.on.answer(frame.message);
  }

  protected override finished(code: number, message: string): void {
    clearTimeout(this.timer);
    this.on.finished?.(code, message);
  }
}
