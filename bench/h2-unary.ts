// A lean gRPC unary caller over node:http2 for the load generator: the request is encoded once and
// sent as is, the response is checked for grpc-status 0 and not decoded. It costs the client far
// less CPU per call than grpc-js, which matters when client and server share two cores.
import http2 from 'node:http2';

/** A failed call: its gRPC status code (or -1 for a transport error) and message. */
export class CallError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** Prefixes a serialized message with gRPC's 5-byte frame header (uncompressed). */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** How a load connection reaches a secured server: TLS trusting `caPem`, and a bearer token. */
export interface CallerCredentials {
  /** PEM of the CA that signs the server's certificate; TLS (ALPN h2) when set, h2c otherwise. */
  caPem?: string;
  /** Sent as `authorization: Bearer <token>` with every call. */
  token?: string;
}

/** One HTTP/2 connection to `address` (host:port) that makes unary gRPC calls. */
export class H2UnaryConnection {
  private readonly session: http2.ClientHttp2Session;
  private readonly authorization: string | undefined;
  private closed = false;

  constructor(address: string, credentials: CallerCredentials = {}) {
    this.session = credentials.caPem
      ? http2.connect(`https://${address}`, { ca: credentials.caPem, servername: 'localhost' })
      : http2.connect(`http://${address}`);
    this.authorization = credentials.token ? `Bearer ${credentials.token}` : undefined;
    // Errors surface on the streams; a session error with no stream open must not crash the client.
    this.session.on('error', () => undefined);
    this.session.on('close', () => (this.closed = true));
    this.session.on('goaway', () => (this.closed = true));
  }

  /** Whether the peer closed or sent GOAWAY (the caller opens a new connection). */
  get usable(): boolean {
    return !this.closed && !this.session.destroyed;
  }

  /** Calls `path` with an already framed request; resolves to the response length in bytes. */
  call(path: string, frame: Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      try {
        const headers: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' };
        if (this.authorization) headers.authorization = this.authorization;
        stream = this.session.request(headers);
      } catch (err) {
        this.closed = true;
        reject(new CallError(-1, err instanceof Error ? err.message : String(err)));
        return;
      }
      let bytes = 0;
      let status: string | undefined;
      let message = '';
      const take = (h: http2.IncomingHttpHeaders) => {
        if (h['grpc-status'] !== undefined) {
          status = String(h['grpc-status']);
          message = String(h['grpc-message'] ?? '');
        }
      };
      stream.on('response', take);
      stream.on('trailers', take);
      stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
      stream.on('error', (err) => reject(new CallError(-1, err.message)));
      stream.on('close', () => {
        if (status === '0') resolve(bytes);
        else if (status !== undefined) reject(new CallError(Number(status), decodeURIComponent(message)));
        else reject(new CallError(-1, `stream closed without grpc-status (http2 code ${stream.rstCode ?? 0})`));
      });
      stream.end(frame);
    });
  }

  /** Closes the connection. */
  close(): void {
    this.session.close();
  }
}
