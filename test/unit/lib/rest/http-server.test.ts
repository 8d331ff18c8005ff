// The node:http server of every HTTP door (createHttpDoorServer), on a real port with raw TCP
// clients: requests it cannot parse answered after the answers to the requests before them on
// the connection, never in their place.
import http from 'node:http';
import net from 'node:net';
import { createHttpDoorServer } from '../../../../lib/rest/http-server';

const LIMITS = { maxHeaderBytes: 4096, maxHeaders: 10, headersTimeoutMs: 60_000, requestTimeoutMs: 300_000, keepAliveTimeoutMs: 5_000, lingeringTimeMs: 30_000, lingeringTimeoutMs: 5_000, maxConnections: 16 };

let server: http.Server;
let port: number;
/** Answers the handler holds until a test sends them. */
let held: { req: http.IncomingMessage; res: http.ServerResponse }[] = [];
/** Client errors the server has seen. */
let clientErrors = 0;
const sockets: net.Socket[] = [];

beforeAll(async () => {
  server = createHttpDoorServer(LIMITS, (req, res) => {
    req.resume();
    req.on('end', () => held.push({ req, res }));
  }).server;
  server.on('clientError', () => clientErrors++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});

afterEach(() => {
  held = [];
  clientErrors = 0;
  for (const s of sockets.splice(0)) s.destroy();
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** Resolves once `check` holds, checking as the event loop turns. */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setImmediate(r));
}

/** A raw client that sends `text` and gives everything it read once the server closes the connection. */
function exchange(text: string): { answer: Promise<string> } {
  const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
  sockets.push(socket);
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  return { answer: new Promise((resolve, reject) => {
    socket.on('close', () => resolve(got));
    socket.on('error', reject);
  }) };
}

/** The statuses of the answers in `answer`, in order (bodies here hold no status line). */
const statuses = (answer: string) => [...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
const request = (path: string) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}`;
const answer = (res: http.ServerResponse, text: string) => {
  res.setHeader('content-length', text.length);
  res.end(text);
};

describe('a request the server cannot parse, pipelined behind others', () => {
  it.each<[string, string, number]>([
    ['a malformed header line', 'GET /c HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n', 400],
    ['headers over the limit', `GET /c HTTP/1.1\r\nHost: x\r\nX-Big: ${'x'.repeat(5_000)}\r\n\r\n`, 431],
  ])('is answered (%s) after the answers still being made for the requests before it', async (_what, broken, status) => {
    const { answer: got } = exchange(request('/a') + request('/b') + broken);
    // The error is seen while both answers are still to be made.
    await until(() => clientErrors === 1 && held.length === 2);
    answer(held[0]!.res, 'first');
    answer(held[1]!.res, 'second');
    const text = await got;
    expect(statuses(text)).toEqual([200, 200, status]);
    expect(text.indexOf('first')).toBeLessThan(text.indexOf('second'));
    expect(text).toMatch(/connection: close\r\n\r\n\{"error":"[^"]+"\}$/i);
  });

  it('lets an answer already under way finish before it', async () => {
    const { answer: got } = exchange(request('/a') + 'GET /c HTTP/1.1\r\nBad Header\r\n\r\n');
    await until(() => held.length === 1);
    const { res } = held[0]!;
    res.setHeader('content-length', 10);
    res.write('01234');
    await until(() => clientErrors === 1);
    res.end('56789');
    const text = await got;
    expect(statuses(text)).toEqual([200, 400]);
    expect(text).toContain('\r\n\r\n0123456789HTTP/1.1 400');
  });

  it('answers a request broken in its own body at once, its answer not yet begun', async () => {
    const { answer: got } = exchange('POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    expect(statuses(await got)).toEqual([400]);
  });
});

describe('a body in a transfer coding', () => {
  const chunked = (coding: string) => `POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${coding}\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n`;

  it.each(['foo, chunked', 'gzip, chunked', 'x-custom , CHUNKED'])('%s is refused 501, never handed to the door, and the connection closed', async (coding) => {
    const text = await exchange(chunked(coding).replace('Connection: close\r\n', '')).answer;
    expect(statuses(text)).toEqual([501]);
    expect(text).toMatch(/\{"error":"the body has a Transfer-Encoding other than chunked: [^"]+"\}$/);
    expect(held).toEqual([]);
  });

  it.each(['chunked', 'Chunked', ' chunked '])('%s is taken', async (coding) => {
    const { answer: got } = exchange(chunked(coding));
    await until(() => held.length === 1);
    answer(held[0]!.res, 'taken');
    expect(statuses(await got)).toEqual([200]);
  });
});

describe('header fields past INFERMESH_HTTP_MAX_HEADERS', () => {
  const withFields = (n: number) => `GET /a HTTP/1.1\r\nHost: x\r\n${'X:\r\n'.repeat(n - 1)}Connection: close\r\n\r\n`;
  /** What the server answers to `text`, a request the handler gets being answered 200. */
  const answered = async (text: string) => {
    const { answer: got } = exchange(text);
    await Promise.race([got, until(() => held.length === 1)]);
    if (held.length === 1) answer(held[0]!.res, 'taken');
    return got;
  };

  it('are refused 431, never handed to the door, and the connection closed', async () => {
    // 11 fields of 10 (Connection is the 11th): node:http alone would have served it.
    const text = await answered(withFields(10));
    expect(statuses(text)).toEqual([431]);
    expect(text).toMatch(/\{"error":"the request has more than 10 header fields"\}$/);
    expect(held).toEqual([]);
  });

  it('as many as the limit are taken, all of them', async () => {
    const text = await answered(withFields(9));
    expect(statuses(text)).toEqual([200]);
    expect(held[0]!.req.rawHeaders.length).toBe(20);
  });
});

describe('an Expect the server does not meet', () => {
  it('is refused 417 in the door\'s JSON, never handed to the door, its body unread', async () => {
    const text = await exchange('POST /a HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nContent-Length: 2\r\nConnection: close\r\n\r\n').answer;
    expect(statuses(text)).toEqual([417]);
    expect(text).toMatch(/\{"error":"the request has an Expect other than 100-continue, which this server does not meet"\}$/);
    expect(held).toEqual([]);
  });
});

describe('a connection lingering after a refusal', () => {
  it('counts against the connection limit while it lingers, and is destroyed at once when the door stops', async () => {
    // One connection at most; lingering far longer than the test.
    const door = createHttpDoorServer({ ...LIMITS, maxConnections: 1, lingeringTimeMs: 600_000, lingeringTimeoutMs: 600_000 }, (req, res) => res.end());
    await new Promise<void>((resolve) => door.server.listen(0, '127.0.0.1', resolve));
    const doorPort = (door.server.address() as net.AddressInfo).port;
    const client = () => {
      const s = net.connect({ port: doorPort, host: '127.0.0.1', allowHalfOpen: true });
      sockets.push(s);
      const seen = { got: '', ended: false, closed: false };
      s.on('data', (d: Buffer) => (seen.got += d.toString('latin1')));
      s.on('end', () => (seen.ended = true));
      s.on('error', () => undefined);
      s.on('close', () => (seen.closed = true));
      return { s, seen };
    };
    try {
      // Refused with its body unsent: answered, half-closed, and held while its client may send on.
      const refused = client();
      refused.s.write('POST /a HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nContent-Length: 1000000\r\n\r\n');
      await until(() => refused.seen.ended);
      refused.s.write('x'.repeat(1000));
      expect({ status: statuses(refused.seen.got), closed: refused.seen.closed }).toEqual({ status: [417], closed: false });
      // The limit is spent on it: the next connection is closed as it comes, unanswered.
      const next = client();
      next.s.write('GET /b HTTP/1.1\r\nHost: x\r\n\r\n');
      await until(() => next.seen.ended || next.seen.closed);
      expect(next.seen.got).toBe('');
      // The door stops: the lingering connection goes now, not after its lingering time.
      door.lingering.stop();
      // Its FIN came before: a byte written now meets the closed connection (a reset).
      while (!refused.seen.closed) {
        refused.s.write('x');
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise((resolve) => door.server.close(resolve));
    } finally {
      door.server.close();
    }
  }, 10_000);
});
