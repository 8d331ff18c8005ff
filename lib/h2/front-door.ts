// A service's gRPC port on lib/h2: one hot unary method read whole and handed to the service,
// every other call piped as it is (flow control included) to the service's grpc-js server on a
// loopback port, where its typed handlers live. The router and the pods each have one.
import { H2_NO_ERROR, type H2Stream, type Header } from './connection';
import { deadlineOf, pipeCall, respondStatus } from './grpc';
import { H2Server } from './server';
import { H2Upstream } from './upstream';

/** gRPC status RESOURCE_EXHAUSTED (this module does not load grpc-js). */
const RESOURCE_EXHAUSTED = 8;

/** Options of an H2FrontDoor. */
export interface H2FrontDoorOptions {
  /** The unary method the door reads itself, e.g. /inference.GRPCInferenceService/ModelInfer. */
  path: string;
  /**
   * Called with each request to `path`, read whole (its 5-byte frame header included); `deadline`
   * is the epoch ms its grpc-timeout ends, counted from when its headers arrived (undefined: none).
   */
  onUnary: (stream: H2Stream, headers: Header[], body: Buffer, deadline: number | undefined) => void;
  /** Largest request message; a larger one is answered RESOURCE_EXHAUSTED naming `who`. */
  maxMessageBytes: number;
  /** Named in that message ("the router"). */
  who: string;
  /** host:port of the service's own grpc-js server (loopback), which answers every other call. */
  fallbackAddress: string;
  /** Client connections are closed (gracefully) after about this long; 0 (the default): never. */
  maxConnectionAgeMs?: number;
}

export class H2FrontDoor {
  /** The service's grpc-js server, for every call the door hands over. */
  readonly fallback: H2Upstream;
  private readonly server: H2Server;

  constructor(private readonly opts: H2FrontDoorOptions) {
    this.fallback = new H2Upstream(opts.fallbackAddress, 1);
    this.server = new H2Server((stream, headers, endStream) => this.onStream(stream, headers, endStream), { maxConnectionAgeMs: opts.maxConnectionAgeMs });
  }

  /** Listens on `host:port` (0: any free port) and resolves to the bound port. */
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
    let path: string | undefined;
    let method: string | undefined;
    let contentType = '';
    let timeout: string | undefined;
    for (const [name, value] of headers) {
      if (name === ':path') path = value;
      else if (name === ':method') method = value;
      else if (name === 'content-type') contentType = value;
      else if (name === 'grpc-timeout') timeout = value;
    }
    if (path !== this.opts.path || method !== 'POST') {
      pipeCall(this.fallback, stream, headers, undefined, endStream);
      return;
    }
    if (!contentType.startsWith('application/grpc')) {
      stream.sendHeaders([[':status', '415']], true);
      return;
    }
    // The deadline counts from when the headers arrived.
    const deadline = deadlineOf(timeout);
    const limit = this.opts.maxMessageBytes + 5;
    const chunks: Buffer[] = [];
    let length = 0;
    const onBody = () => this.opts.onUnary(stream, headers, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length), deadline);
    if (endStream) return onBody();
    stream.onData = (chunk, end) => {
      if (length < 0) return;
      length += chunk.length;
      if (length > limit) {
        length = -1;
        respondStatus(stream, RESOURCE_EXHAUSTED, `request is larger than ${this.opts.who}'s limit of ${this.opts.maxMessageBytes} bytes`);
        // The answer is complete: stop the rest of the upload (RST_STREAM NO_ERROR, as HTTP/2 allows).
        stream.reset(H2_NO_ERROR);
        return;
      }
      chunks.push(chunk);
      if (end) onBody();
    };
    // Trailers from the client end the request too.
    stream.onHeaders = (_trailers, end) => {
      if (end && length >= 0) onBody();
    };
  }
}
