// A lean HTTP/1.1 keep-alive caller for the load generator's REST runs, the counterpart of
// bench/h2-unary.ts: each request is encoded once (head and body in one buffer) and sent as is, and
// the answer is read only as far as its status and content-length. node:http's client spent about
// 100 µs of the client's CPU per call at concurrency 16 against 28 for the gRPC client, so on two
// shared cores suite `rest` measured the clients as much as the doors.
import net from 'node:net';

/** One REST request, encoded once: request line, headers, content-length and body. */
export function h1Request(address: string, path: string, headers: Record<string, string>, body: Buffer): Buffer {
  let head = `POST ${path} HTTP/1.1\r\nhost: ${address}\r\ncontent-length: ${body.length}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), body]);
}

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/** An answer's head larger than this is refused (node's default --max-http-header-size, 16 KiB). */
const MAX_HEAD_BYTES = 16 << 10;
/** An answer's body larger than this is refused: the suites' answers are a few KiB. */
const MAX_BODY_BYTES = 64 << 20;

interface Pending {
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * One keep-alive HTTP/1.1 connection to `address` (host:port), one call at a time. A call resolves
 * once its answer has arrived whole with status 200, and rejects with the status and the start of
 * the body otherwise. The connection is opened again on the next call after the server closed it.
 */
export class H1Connection {
  private socket: net.Socket | undefined;
  private pending: Pending | undefined;
  private chunks: Buffer[] = [];
  private received = 0;
  /** Head length (with its blank line) and body length of the answer being read, once known. */
  private headBytes = -1;
  private bodyBytes = 0;
  private status = 0;
  private closeAfter = false;

  constructor(private readonly address: string) {}

  private connect(): net.Socket {
    const colon = this.address.lastIndexOf(':');
    const socket = net.connect({ host: this.address.slice(0, colon), port: Number(this.address.slice(colon + 1)) });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // Only the connection in use fails a call: one dropped earlier may report its close later.
    const lost = (err?: Error) => {
      if (this.socket === socket) this.fail(err ?? new Error('connection closed before the answer'));
    };
    socket.on('error', lost);
    socket.on('close', () => lost());
    return socket;
  }

  /** Sends an encoded request (h1Request) and waits for its answer. */
  call(request: Buffer): Promise<void> {
    if (this.pending) return Promise.reject(new Error('a call is already in flight on this connection'));
    this.socket ??= this.connect();
    const socket = this.socket;
    return new Promise<void>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.chunks = [];
      this.received = 0;
      this.headBytes = -1;
      socket.write(request);
    });
  }

  private onData(chunk: Buffer): void {
    if (!this.pending) return this.fail(new Error('bytes arrived with no call in flight'));
    this.chunks.push(chunk);
    this.received += chunk.length;
    if (this.headBytes < 0) {
      const all = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks);
      this.chunks = [all];
      const end = all.indexOf(HEAD_END);
      if (end < 0) {
        if (all.length > MAX_HEAD_BYTES) this.fail(new Error(`answer head over ${MAX_HEAD_BYTES} bytes`));
        return;
      }
      const head = all.toString('latin1', 0, end);
      const status = /^HTTP\/1\.[01] (\d{3})(?: |\r|$)/.exec(head);
      // An interim answer (100 Continue, 103 Early Hints) comes before the real one: skip it.
      if (status && status[1]![0] === '1') {
        const rest = all.subarray(end + HEAD_END.length);
        this.chunks = [];
        this.received = 0;
        if (rest.length > 0) this.onData(rest);
        return;
      }
      const length = /\r\ncontent-length:[ \t]*(\d+)[ \t]*(?:\r|$)/i.exec(head);
      if (!status || !length) return this.fail(new Error(`answer without ${status ? 'content-length' : 'a status line'}: ${head.slice(0, 100)}`));
      if (Number(length[1]) > MAX_BODY_BYTES) return this.fail(new Error(`answer body of ${length[1]} bytes is over ${MAX_BODY_BYTES}`));
      this.status = Number(status[1]);
      this.bodyBytes = Number(length[1]);
      this.headBytes = end + HEAD_END.length;
      this.closeAfter = /\r\nconnection:[^\r]*\bclose\b/i.test(head);
    }
    const total = this.headBytes + this.bodyBytes;
    if (this.received < total) return;
    if (this.received > total) return this.fail(new Error('bytes past the answer with one call in flight'));
    const pending = this.pending;
    this.pending = undefined;
    if (this.closeAfter) this.drop();
    if (this.status === 200) pending.resolve();
    else {
      const body = Buffer.concat(this.chunks).toString('utf8', this.headBytes, Math.min(total, this.headBytes + 200));
      pending.reject(new Error(`HTTP ${this.status}: ${body}`));
    }
  }

  private fail(err: Error): void {
    const pending = this.pending;
    this.pending = undefined;
    this.drop();
    pending?.reject(err);
  }

  private drop(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
  }

  /** Closes the connection. */
  close(): void {
    this.fail(new Error('connection closed by the caller'));
  }
}
