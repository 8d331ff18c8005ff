// Real peers for the lib/h2 tests: node:http2 (nghttp2) and grpc-js on 127.0.0.1 port 0, our own
// H2Server/H2Connection, and a list of things to close after each test so jest exits cleanly.
import http2 from 'node:http2';
import net from 'node:net';
import { H2Connection, type CloseCode, type H2ConnectionOptions, type H2Stream, type Header } from '../../../../lib/h2/connection';
import { H2Server, type H2ServerOptions } from '../../../../lib/h2/server';

export const HOST = '127.0.0.1';

/** Keepalive off: the tests own every frame that goes out. */
export const QUIET: H2ConnectionOptions = { keepaliveIntervalMs: 0 };

/** Closes what a test opened, newest first (clients before servers). */
export class Closer {
  private readonly fns: (() => unknown)[] = [];

  /** Registers `fn` and returns `value`. */
  add<T>(value: T, fn: (v: T) => unknown): T {
    this.fns.push(() => fn(value));
    return value;
  }

  async closeAll(): Promise<void> {
    for (const fn of this.fns.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        // Closing what already closed.
      }
    }
  }
}

/** Our server on a free port, drained when the test ends. */
export async function startH2Server(
  closer: Closer,
  onStream: (stream: H2Stream, headers: Header[], endStream: boolean) => void,
  opts: H2ServerOptions = {},
): Promise<{ server: H2Server; port: number; address: string }> {
  const server = closer.add(new H2Server(onStream, { ...QUIET, ...opts }), (s) => s.drain(0));
  const port = await server.listen(HOST, 0);
  return { server, port, address: `${HOST}:${port}` };
}

/** A node:http2 server on a free port; its sessions are destroyed when the test ends. */
export async function startNodeServer(
  closer: Closer,
  onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, raw: Header[]) => void,
  options: http2.ServerOptions = {},
): Promise<{ server: http2.Http2Server; port: number; address: string; sessions: http2.ServerHttp2Session[] }> {
  const sessions: http2.ServerHttp2Session[] = [];
  const server = http2.createServer(options);
  server.on('session', (s) => {
    sessions.push(s);
    s.on('error', () => undefined);
  });
  // node passes the headers in wire order as a fourth argument.
  server.on('stream', (stream, headers, _flags, rawHeaders?: string[]) => {
    stream.on('error', () => undefined);
    onStream(stream, headers, pairs(rawHeaders ?? []));
  });
  closer.add(server, (s) => {
    for (const session of sessions) session.destroy();
    return new Promise((r) => s.close(r));
  });
  await new Promise<void>((r) => server.listen(0, HOST, r));
  const port = (server.address() as net.AddressInfo).port;
  return { server, port, address: `${HOST}:${port}`, sessions };
}

/** A connected node:http2 client session, destroyed when the test ends. */
export async function connectNode(closer: Closer, port: number, options: http2.ClientSessionOptions = {}): Promise<http2.ClientHttp2Session> {
  const session = closer.add(http2.connect(`http://${HOST}:${port}`, options), (s) => s.destroy());
  session.on('error', () => undefined);
  // Once the server's SETTINGS are in, nghttp2 keeps to its limits (a stream limit, say).
  await new Promise<void>((resolve, reject) => {
    session.once('remoteSettings', () => resolve());
    session.once('error', reject);
  });
  return session;
}

/** Our client connection to `port`, destroyed when the test ends; resolves once the peer answered a PING. */
export async function connectOurs(closer: Closer, port: number, opts: H2ConnectionOptions = {}): Promise<H2Connection> {
  const socket = net.connect(port, HOST);
  const conn = closer.add(new H2Connection(socket, 'client', undefined, { ...QUIET, ...opts }), (c) => c.destroy());
  await conn.ping(5_000);
  return conn;
}

export interface NodeResponse {
  headers: http2.IncomingHttpHeaders;
  /** The response headers in wire order, as name/value pairs. */
  raw: Header[];
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
  rstCode: number | undefined;
}

/** Sends a request on a node:http2 session and reads the whole answer. */
export function nodeRequest(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Buffer,
  trailers?: http2.OutgoingHttpHeaders,
): Promise<NodeResponse> {
  return new Promise((resolve) => {
    const req = session.request(headers, { endStream: body === undefined && !trailers, waitForTrailers: trailers !== undefined });
    let head: http2.IncomingHttpHeaders = {};
    let raw: Header[] = [];
    let tail: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    // node passes the headers in wire order as a third argument (its typings stop at two).
    const onResponse = (h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader, _flags: number, rawHeaders?: string[]) => {
      head = h;
      raw = pairs(rawHeaders ?? []);
    };
    req.on('response', onResponse as (h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader, flags: number) => void);
    req.on('trailers', (t) => (tail = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('wantTrailers', () => req.sendTrailers(trailers ?? {}));
    req.on('error', () => undefined);
    req.on('close', () => resolve({ headers: head, raw, body: Buffer.concat(chunks), trailers: tail, rstCode: req.rstCode }));
    if (body !== undefined) req.end(body);
    else if (trailers) req.end();
  });
}

function pairs(flat: string[]): Header[] {
  const out: Header[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

export interface Collected {
  headers: Header[] | undefined;
  body: Buffer;
  trailers: Header[] | undefined;
  code: CloseCode;
}

/** Reads one of our streams to its close. */
export function collect(stream: H2Stream): Promise<Collected> {
  return new Promise((resolve) => {
    let headers: Header[] | undefined;
    let trailers: Header[] | undefined;
    const chunks: Buffer[] = [];
    stream.onHeaders = (h) => {
      if (headers === undefined) headers = h;
      else trailers = h;
    };
    stream.onData = (c) => chunks.push(Buffer.from(c));
    stream.onClose = (code) => resolve({ headers, body: Buffer.concat(chunks), trailers, code });
  });
}

/** The value of `name` in a header list. */
export function valueOf(headers: readonly Header[] | undefined, name: string): string | undefined {
  return headers?.find((h) => h[0] === name)?.[1];
}

/** Bytes whose every position differs, so a reordered or lost chunk shows. */
export function pattern(bytes: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** One gRPC length-prefixed message (uncompressed). */
export function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** An HTTP/2 frame, built by hand for peers that misbehave. */
export function rawFrame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

export interface ParsedFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** Splits bytes (after any preface) into frames; a partial last frame is left out. */
export function parseFrames(bytes: Buffer): ParsedFrame[] {
  const frames: ParsedFrame[] = [];
  let p = 0;
  while (bytes.length - p >= 9) {
    const length = bytes.readUIntBE(p, 3);
    if (bytes.length - p < 9 + length) break;
    frames.push({ type: bytes[p + 3]!, flags: bytes[p + 4]!, streamId: bytes.readUInt32BE(p + 5) & 0x7fffffff, payload: bytes.subarray(p + 9, p + 9 + length) });
    p += 9 + length;
  }
  return frames;
}

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves once `check` holds, polling every 5 ms; rejects after `timeoutMs`. */
export async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
