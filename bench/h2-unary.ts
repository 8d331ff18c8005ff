// A lean gRPC unary caller for the load generator, on the project's own HTTP/2 client (lib/h2, the
// router's path to its pods): the request is encoded once and sent as is, the response is checked
// for grpc-status 0 and not decoded. node:http2 spent about 59 µs of the client's CPU per call at
// concurrency 64 (more than the pod it measured), which on two shared cores capped what a suite
// could see; this client reads the socket into one reused buffer and makes no stream objects.
import tls from 'node:tls';
import { CONNECTION_LOST, type CloseCode, type H2Stream, type Header } from '../lib/h2/connection';
import { statusOf } from '../lib/h2/grpc';
import { H2Upstream } from '../lib/h2/upstream';

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

/** The bench's servers present certificates for localhost, reached at 127.0.0.1. */
const SERVER_NAME = 'localhost';

/**
 * One HTTP/2 connection to `address` (host:port) that makes unary gRPC calls. When the peer closes
 * it or sends GOAWAY (a proxy that ends connections after N requests), the next call opens a new one.
 */
export class H2UnaryConnection {
  private readonly upstream: H2Upstream;
  private readonly headers = new Map<string, Header[]>();
  private readonly authorization: string | undefined;
  private readonly scheme: string;

  constructor(private readonly address: string, credentials: CallerCredentials = {}) {
    const ca = credentials.caPem;
    const context = ca ? tls.createSecureContext({ ca }) : undefined;
    this.scheme = context ? 'https' : 'http';
    this.upstream = new H2Upstream(address, 1, {
      maxConnections: 1,
      ...(context
        ? {
            tls: {
              context: () => context,
              checkServerIdentity: (_host: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(SERVER_NAME, cert),
            },
          }
        : {}),
    });
    this.authorization = credentials.token ? `Bearer ${credentials.token}` : undefined;
  }

  private headersFor(path: string): Header[] {
    let h = this.headers.get(path);
    if (!h) {
      h = [
        [':method', 'POST'],
        [':scheme', this.scheme],
        [':path', path],
        [':authority', this.address],
        ['content-type', 'application/grpc'],
        ['te', 'trailers'],
      ];
      if (this.authorization) h.push(['authorization', this.authorization]);
      this.headers.set(path, h);
    }
    return h;
  }

  /** Calls `path` with an already framed request; resolves to the response length in bytes. */
  call(path: string, frame: Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      let stream: H2Stream;
      try {
        stream = this.upstream.request(this.headersFor(path));
      } catch (err) {
        reject(new CallError(-1, err instanceof Error ? err.message : String(err)));
        return;
      }
      let bytes = 0;
      let status: { code: number; message: string } | undefined;
      stream.onHeaders = (h: Header[]) => {
        status = statusOf(h) ?? status;
      };
      stream.onData = (chunk: Buffer) => (bytes += chunk.length);
      stream.onClose = (code: CloseCode) => {
        if (status === undefined) {
          reject(new CallError(-1, code === undefined ? 'stream closed without grpc-status' : code === CONNECTION_LOST ? 'connection lost' : `stream reset (http2 code ${code})`));
        } else if (status.code === 0) resolve(bytes);
        else reject(new CallError(status.code, status.message));
      };
      stream.end(undefined, frame);
    });
  }

  /** Closes the connection. */
  close(): void {
    this.upstream.close();
  }
}
