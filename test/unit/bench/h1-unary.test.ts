// The benchmark's REST load client (bench/h1-unary.ts) against node:http servers: it decides the
// REST rows' error column, so only a whole 200 answer is an OK, and a connection the server ends is
// opened again for the next call.
import http from 'node:http';
import net from 'node:net';
import { H1Connection, h1Request } from '../../../bench/h1-unary';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

async function listen(server: http.Server | net.Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  stops.push(() => new Promise<void>((r) => {
    if ('closeAllConnections' in server) server.closeAllConnections();
    server.close(() => r());
  }));
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/** Answers each POST with its body reversed, the status in `x-status` (200 by default), and counts connections. */
async function startEcho(extra: (res: http.ServerResponse) => void = () => undefined): Promise<{ address: string; connections: () => number; seen: string[] }> {
  let connections = 0;
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push(`${req.method} ${req.url} ${req.headers['content-type']} ${body.length}`);
      extra(res);
      // With its length, as the router's REST door answers.
      res.writeHead(Number(req.headers['x-status'] ?? 200), { 'content-type': 'text/plain', 'content-length': body.length });
      res.end(Buffer.from(body).reverse());
    });
  });
  server.on('connection', () => connections++);
  return { address: await listen(server), connections: () => connections, seen };
}

test('calls on one keep-alive connection resolve on whole 200 answers, in any number of reads', async () => {
  const echo = await startEcho();
  const c = new H1Connection(echo.address);
  for (const size of [0, 1, 100_000, 10]) await c.call(h1Request(echo.address, '/v2/models/m/infer', { 'content-type': 'application/octet-stream' }, Buffer.alloc(size, 7)));
  c.close();
  expect(echo.seen).toEqual([0, 1, 100_000, 10].map((n) => `POST /v2/models/m/infer application/octet-stream ${n}`));
  expect(echo.connections()).toBe(1);
});

test('an answer other than 200 rejects with its status and body', async () => {
  const echo = await startEcho();
  const c = new H1Connection(echo.address);
  await expect(c.call(h1Request(echo.address, '/x', { 'x-status': '400' }, Buffer.from('dab')))).rejects.toThrow('HTTP 400: bad');
  // The connection stays usable after a failed answer that was read whole.
  await c.call(h1Request(echo.address, '/x', {}, Buffer.from('ok')));
  c.close();
  expect(echo.connections()).toBe(1);
});

test('a server that closes after each answer (connection: close) is called again on a new connection', async () => {
  const echo = await startEcho((res) => res.setHeader('connection', 'close'));
  const c = new H1Connection(echo.address);
  for (let i = 0; i < 4; i++) await c.call(h1Request(echo.address, '/x', {}, Buffer.from('hi')));
  c.close();
  expect(echo.connections()).toBe(4);
});

test('interim answers are skipped, and a head split over reads is read as one', async () => {
  // Each answer is written in pieces with a pause between, so that the client reads it in several.
  const pieces: Record<string, string[]> = {
    '/continue': ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'],
    '/hints': ['HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r', '\nHTTP/1.1 200 OK\r\nContent-Length:\t2\r\n\r\nok'],
    '/split': ['HTTP/1.1 200\r\ncontent-le', 'ngth: 5\r\n', '\r\nhel', 'lo'],
    '/teapot': ['HTTP/1.1 418 I', "'m a teapot\r\ncontent-length: 5\r\nconnection: keep-alive, close\r\n\r\nshort"],
  };
  let connections = 0;
  const raw = net.createServer((socket) => {
    connections++;
    socket.on('data', async (req) => {
      const path = req.toString('latin1').split(' ')[1]!;
      for (const p of pieces[path]!) {
        socket.write(p);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
  });
  const address = await listen(raw);
  const c = new H1Connection(address);
  for (const path of ['/continue', '/hints', '/split']) await c.call(h1Request(address, path, {}, Buffer.alloc(1)));
  expect(connections).toBe(1);
  await expect(c.call(h1Request(address, '/teapot', {}, Buffer.alloc(1)))).rejects.toThrow("HTTP 418: short");
  // connection: close among other tokens: the next call opens a new connection.
  await c.call(h1Request(address, '/split', {}, Buffer.alloc(1)));
  expect(connections).toBe(2);
  c.close();
});

test('a cut answer, one over the body bound, one without content-length, and a refused connection all reject', async () => {
  const raw = net.createServer((socket) => socket.once('data', (req) => {
    if (req.includes('/cut')) socket.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
    else if (req.includes('/huge')) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 99999999999\r\n\r\nabc');
    else socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
  }));
  const address = await listen(raw);
  await expect(new H1Connection(address).call(h1Request(address, '/cut', {}, Buffer.alloc(1)))).rejects.toThrow('connection closed before the answer');
  await expect(new H1Connection(address).call(h1Request(address, '/huge', {}, Buffer.alloc(1)))).rejects.toThrow('answer body of 99999999999 bytes is over');
  const chunked = new H1Connection(address);
  await expect(chunked.call(h1Request(address, '/chunked', {}, Buffer.alloc(1)))).rejects.toThrow('answer without content-length');
  chunked.close();
  const closed = net.createServer();
  const gone = await listen(closed);
  await stops.pop()!();
  await expect(new H1Connection(gone).call(h1Request(gone, '/x', {}, Buffer.alloc(1)))).rejects.toThrow(/ECONNREFUSED/);
});
