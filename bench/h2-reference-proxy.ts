// A reference for the router suite, not a product: about the least a Node gRPC pass-through can do
// on node:http2 without grpc-js. It reads the whole unary request, peeks the model name with the
// router's own request-peek, forwards the bytes on one of a few upstream connections and relays
// the response headers, data and trailers. No routing, retries or limits: it bounds from below what
// a router built on node:http2 would cost (the router uses lib/h2 instead). Run as
// `node h2-reference-proxy.js PORT UPSTREAM [CONNECTIONS]`.
import { spawn, type ChildProcess } from 'node:child_process';
import http2 from 'node:http2';
import readline from 'node:readline';
import { peekRequest } from '../services/router/request-peek';

/** Request headers that are not forwarded as they are (HTTP/2 pseudo-headers are rebuilt). */
const NOT_FORWARDED = new Set(['content-type', 'te', 'user-agent', 'content-length']);

/** A running reference proxy. */
export interface ReferenceProxy {
  address: string;
  pid: number;
  stop(): Promise<void>;
}

function trailersOnly(stream: http2.ServerHttp2Stream, code: number, message: string): void {
  if (stream.headersSent || stream.destroyed) return stream.close();
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeURIComponent(message) }, { endStream: true });
}

/** Serves on 127.0.0.1:`port`, forwarding to `upstream` over `connections` HTTP/2 connections. */
export function serveReferenceProxy(port: number, upstream: string, connections: number): http2.Http2Server {
  const sessions: http2.ClientHttp2Session[] = [];
  let next = 0;
  const session = () => {
    const i = next++ % connections;
    let s = sessions[i];
    if (!s || s.closed || s.destroyed) {
      s = sessions[i] = http2.connect(`http://${upstream}`);
      s.on('error', () => undefined);
    }
    return s;
  };
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => undefined);
    stream.on('end', () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      try {
        if (body.length < 5 || body[0] !== 0) throw new Error('expected one uncompressed gRPC message');
        peekRequest(body.subarray(5, 5 + body.readUInt32BE(1)));
      } catch (err) {
        return trailersOnly(stream, 3, err instanceof Error ? err.message : String(err));
      }
      const out: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': headers[':path'], 'content-type': 'application/grpc', te: 'trailers' };
      for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':') && !NOT_FORWARDED.has(k)) out[k] = v;
      let up: http2.ClientHttp2Stream;
      try {
        up = session().request(out);
      } catch (err) {
        return trailersOnly(stream, 14, `upstream: ${err instanceof Error ? err.message : String(err)}`);
      }
      let trailers: http2.IncomingHttpHeaders | undefined;
      let trailersOnlyResponse = false;
      up.on('response', (h) => {
        trailersOnlyResponse = h['grpc-status'] !== undefined;
        stream.respond(h, trailersOnlyResponse ? { endStream: true } : { waitForTrailers: true });
      });
      up.on('data', (c: Buffer) => stream.write(c));
      up.on('trailers', (t) => (trailers = t));
      stream.on('wantTrailers', () => stream.sendTrailers(trailers ?? { 'grpc-status': '14', 'grpc-message': 'upstream sent no status' }));
      up.on('end', () => {
        if (!trailersOnlyResponse && !stream.destroyed && stream.headersSent) stream.end();
      });
      up.on('error', (err) => trailersOnly(stream, 14, `upstream: ${err.message}`));
      stream.on('close', () => {
        if (!up.closed) up.close(http2.constants.NGHTTP2_CANCEL);
      });
      up.end(body);
    });
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ msg: 'listening', port })}\n`));
  return server;
}

/** Starts the reference proxy as its own process and resolves once it listens. */
export function startReferenceProxy(port: number, upstream: string, connections = 2): Promise<ReferenceProxy> {
  const child: ChildProcess = spawn(process.execPath, [__filename, String(port), upstream, String(connections)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('reference proxy did not listen within 10 s')), 10_000);
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.includes('"listening"')) return;
      clearTimeout(timer);
      resolve({
        address: `127.0.0.1:${port}`,
        pid: child.pid!,
        async stop() {
          child.kill('SIGTERM');
          await exited;
        },
      });
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error('reference proxy exited before listening'));
    });
  });
}

if (require.main === module) {
  const [port, upstream, connections] = process.argv.slice(2);
  if (!port || !upstream) {
    process.stderr.write('usage: node h2-reference-proxy.js PORT UPSTREAM [CONNECTIONS]\n');
    process.exit(2);
  }
  serveReferenceProxy(Number(port), upstream, Number(connections ?? 2));
}
