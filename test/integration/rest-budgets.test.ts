// The REST door's byte budgets against clients that leave: pipelined requests whose answers are
// never read, and slow clients answered 408, give back every byte they held once their connection
// is gone, and a connection the door gives up on is closed, not left half-open to keep reading.
// Raw TCP sockets (node:net) play the clients; the budgets are small, so a leak of a few MiB shows
// as a 429 for a request that should fit.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { startTestMesh, inferenceClient, waitReady, type TestMesh } from '../helpers/mesh';
import { startTestRouter } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import type { RouterService } from '../../services/router/router-service';

jest.setTimeout(120_000);

const MiB = 1 << 20;
const MODEL = 'identity_fp32';

let mesh: TestMesh;
/** Sockets a test opened, destroyed after it. */
const opened: net.Socket[] = [];

beforeAll(async () => {
  mesh = await startTestMesh();
  await mesh.push(MODEL, `fixtures/${MODEL}.onnx`);
  await mesh.push('heavy', 'fixtures/heavy.onnx');
  // No batching: a request of many rows is one long run.
  const pod = await mesh.startPod({ INFERMESH_DYNAMIC_BATCHING: 'false' });
  await waitReady(inferenceClient(`127.0.0.1:${pod.port}`), [MODEL, 'heavy']);
});

afterEach(() => {
  for (const s of opened.splice(0)) s.destroy();
});

afterAll(async () => {
  await mesh?.close();
});

async function routerWith(env: Record<string, string>): Promise<RouterService> {
  const router = await startTestRouter(mesh.nats.url, mesh.registry.port, env);
  await waitFor(`the router to route ${MODEL}`, () => router.membership.readyVersions(MODEL).size > 0);
  return router;
}

/** An inference of `n` FP32 elements as binary data, answered as binary data (as many bytes back). */
function binaryInfer(n: number): { head: string; body: Buffer } {
  const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, n], parameters: { binary_data_size: 4 * n } }], parameters: { binary_data_output: true } }));
  const body = Buffer.concat([json, Buffer.alloc(4 * n, 1)]);
  const head = `POST /v2/models/${MODEL}/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nInference-Header-Content-Length: ${json.length}\r\n\r\n`;
  return { head, body };
}

/** The status and error (if any) of `n` elements sent and read back whole by a well-behaved client. */
async function infer(port: number, n: number): Promise<{ status: number; error?: string }> {
  const { head, body } = binaryInfer(n);
  const headers = Object.fromEntries(head.split('\r\n').slice(2, 4).map((l) => l.split(': ') as [string, string]));
  const res = await fetch(`http://127.0.0.1:${port}/v2/models/${MODEL}/infer`, { method: 'POST', body, headers: { 'inference-header-content-length': headers['Inference-Header-Content-Length']! } });
  const answer = Buffer.from(await res.arrayBuffer());
  return res.status === 200 ? { status: 200 } : { status: res.status, error: (JSON.parse(answer.toString()) as { error: string }).error };
}

/** A raw client that keeps its side open when the door closes its own, and records what it got. */
function rawClient(port: number): Promise<{ socket: net.Socket; got: () => string; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    let text = '';
    let closed = false;
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve({ socket, got: () => text, closed: () => closed }));
    opened.push(socket);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', (err) => (closed ? undefined : reject(err)));
    socket.on('close', () => (closed = true));
  });
}

/**
 * Whether the door has let go of `client`'s connection: a byte written now and then meets a
 * closed connection (reset) once it has. Keeps writing, as a dripping client does: the door reads
 * and drops what it sends for INFERMESH_HTTP_LINGERING_TIME_MS at most, then lets go.
 */
function goneFor(client: { socket: net.Socket; closed: () => boolean }, drip = 'x'): () => boolean {
  return () => {
    if (!client.closed() && client.socket.writable) client.socket.write(drip);
    return client.closed();
  };
}

describe('pipelined requests whose answers are never read', () => {
  let router: RouterService;

  beforeAll(async () => {
    // Room for one 14 MiB exchange; two rounds of the attack held 16 MB of each budget before.
    router = await routerWith({ INFERMESH_HTTP_MAX_REQUEST_BYTES: String(16 * MiB), INFERMESH_HTTP_MAX_RESPONSE_BYTES: String(16 * MiB), INFERMESH_MAX_MESSAGE_BYTES: String(16 * MiB) });
  });

  afterAll(async () => {
    await router?.shutdown(5_000);
  });

  it('give back their request and answer bytes once the connection closes, the queued ones too', async () => {
    const port = router.httpPort!;
    // A request of nearly the whole budget fits before the attack.
    expect(await infer(port, (14 * MiB) / 4)).toEqual({ status: 200 });
    const { head, body } = binaryInfer(MiB); // 4 MiB each way
    for (let round = 0; round < 2; round++) {
      const client = await rawClient(port);
      client.socket.pause(); // never reads an answer
      for (let i = 0; i < 4; i++) {
        client.socket.write(head);
        client.socket.write(body);
      }
      await new Promise((r) => setTimeout(r, 2_000));
      client.socket.destroy();
      await waitFor('the client socket to close', client.closed, 10_000);
    }
    // No client is left: both budgets are whole again.
    const after = await waitFor('a request of nearly the whole budget to be taken again', async () => {
      const res = await infer(port, (14 * MiB) / 4);
      return res.status === 200 ? res : undefined;
    }, 20_000, 500).catch(async () => infer(port, (14 * MiB) / 4));
    expect(after).toEqual({ status: 200 });
  });
});

describe('an answer its client stops reading', () => {
  let router: RouterService;

  beforeAll(async () => {
    // An 8 MiB answer and a 10 MiB one do not fit together; either alone does.
    router = await routerWith({ INFERMESH_HTTP_MAX_RESPONSE_BYTES: String(16 * MiB), INFERMESH_HTTP_SEND_TIMEOUT_MS: '2000' });
  });

  afterAll(async () => {
    await router?.shutdown(5_000);
  });

  it('has its connection closed after INFERMESH_HTTP_SEND_TIMEOUT_MS without progress, and its bytes given back', async () => {
    const port = router.httpPort!;
    const { head, body } = binaryInfer((8 * MiB) / 4);
    // A client in a process of its own with a 64 KiB receive buffer (Node sets none on TCP; left to
    // Linux, loopback's grows to 32 MiB and takes a whole answer): it sends its request, then
    // reads nothing and keeps its connection open.
    const stalled = spawn('python3', ['-c', [
      'import socket, sys, time',
      's = socket.socket()',
      's.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)',
      `s.connect(('127.0.0.1', ${port}))`,
      's.sendall(sys.stdin.buffer.read())',
      'print("sent", flush=True)',
      'time.sleep(120)',
    ].join('\n')], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const sent = new Promise<void>((resolve, reject) => {
        stalled.stdout!.once('data', () => resolve());
        stalled.once('exit', (code) => reject(new Error(`the stalled client exited (${code})`)));
      });
      stalled.stdin!.end(Buffer.concat([Buffer.from(head), body]));
      await sent;
      // While it holds its answer, one of 10 MiB does not fit.
      await waitFor('the unread answer to hold the budget', async () => (await infer(port, (10 * MiB) / 4)).status === 429, 20_000, 100);
      // The door closes its connection, its client still there and still not reading: the bytes are free.
      const after = await waitFor('the unread answer\'s bytes to be given back', async () => {
        const res = await infer(port, (10 * MiB) / 4);
        return res.status === 200 ? res : undefined;
      }, 20_000, 250).catch(async () => infer(port, (10 * MiB) / 4));
      expect(after).toEqual({ status: 200 });
      expect(stalled.exitCode).toBeNull();
    } finally {
      stalled.kill();
    }
  });
});

describe('an answer queued behind another still being computed', () => {
  let router: RouterService;

  beforeAll(async () => {
    // One connection's requests hold 4 MiB at most, of a door that holds 256. A connection closed
    // on a client that drips on lingers 1 s.
    router = await routerWith({
      INFERMESH_HTTP_SEND_TIMEOUT_MS: '500', INFERMESH_MAX_MESSAGE_BYTES: String(4 * MiB), INFERMESH_HTTP_MAX_REQUEST_BYTES_PER_CONNECTION: String(4 * MiB),
      INFERMESH_HTTP_LINGERING_TIME_MS: '1000',
    });
  });

  afterAll(async () => {
    await router?.shutdown(5_000);
  });

  it('is not judged until it is the connection\'s to send (pipelining)', async () => {
    await waitFor('the router to route heavy', () => router.membership.readyVersions('heavy').size > 0);
    const port = router.httpPort!;
    // First a run of seconds (heavy, 512 rows), then a request whose answer is ready at once and
    // held (more than 1 KiB), queued behind the first for longer than the send timeout.
    const rows = 512;
    const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [rows, 1024], parameters: { binary_data_size: rows * 4096 } }], parameters: { binary_data_output: true } }));
    const slow = Buffer.concat([json, Buffer.alloc(rows * 4096)]);
    const { head, body } = binaryInfer(64 * 1024);
    const client = await rawClient(port);
    client.socket.write(`POST /v2/models/heavy/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${slow.length}\r\nInference-Header-Content-Length: ${json.length}\r\n\r\n`);
    client.socket.write(slow);
    client.socket.write(head);
    client.socket.write(body);
    await waitFor('both answers', () => client.closed() || (client.got().match(/HTTP\/1\.1 \d+/g) ?? []).length === 2, 60_000, 100);
    expect(client.got().match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200']);
    expect(client.closed()).toBe(false);
  });

  it('holds no more of a connection\'s pipelined requests than INFERMESH_HTTP_MAX_REQUEST_BYTES_PER_CONNECTION', async () => {
    await waitFor('the router to route heavy', () => router.membership.readyVersions('heavy').size > 0);
    // A run of heavy (128 rows: 512 KiB, held until its answer), then a body of 3.75 MiB read
    // meanwhile: each fits alone, together they pass the connection's 4 MiB. Chunked: a declared
    // length is refused before any of the body is read (the next test), this one as it arrives.
    const rows = 128;
    const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [rows, 1024], parameters: { binary_data_size: rows * 4096 } }], parameters: { binary_data_output: true } }));
    const slow = Buffer.concat([json, Buffer.alloc(rows * 4096)]);
    const { head, body } = binaryInfer((3.75 * MiB) / 4);
    const client = await rawClient(router.httpPort!);
    client.socket.write(`POST /v2/models/heavy/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${slow.length}\r\nInference-Header-Content-Length: ${json.length}\r\n\r\n`);
    client.socket.write(slow);
    client.socket.write(head.replace(/Content-Length: \d+/, 'Transfer-Encoding: chunked'));
    client.socket.write(`${body.length.toString(16)}\r\n`);
    client.socket.write(body);
    client.socket.write('\r\n0\r\n\r\n');
    await waitFor('both answers', () => client.closed() || (client.got().match(/HTTP\/1\.1 \d+/g) ?? []).length === 2, 60_000, 100);
    expect(client.got().match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 429']);
    expect(client.got()).toMatch(/\{"error":"this connection's requests hold too many bytes \(one connection's share of the router's\); retry on another once they are answered"\}$/);
    // Refused with its body unread: the connection is closed.
    await waitFor('the door to close the connection', goneFor(client), 20_000, 200);
    // Another connection's request of the same size is taken.
    expect(await infer(router.httpPort!, (3.75 * MiB) / 4)).toEqual({ status: 200 });
  });

  it('refuses a request past the connection\'s share 429, saying so, its message once made and a declared body before it is read', async () => {
    await waitFor('the router to route heavy', () => router.membership.readyVersions('heavy').size > 0);
    // A run of heavy (128 rows: 512 KiB, held until its answer); behind it on the connection, a
    // JSON request of 1.9 MiB, which fits beside it but its 3.8 MiB gRPC message does not, then
    // the head of a body declared 3.75 MiB, which does not fit either. The door's 256 MiB takes all.
    const rows = 128;
    const heavyJson = Buffer.from(JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [rows, 1024], parameters: { binary_data_size: rows * 4096 } }], parameters: { binary_data_output: true } }));
    const slow = Buffer.concat([heavyJson, Buffer.alloc(rows * 4096)]);
    const n = 996_000;
    const json = `{"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,${n}],"data":[${'0,'.repeat(n - 1)}0]}]}`;
    const client = await rawClient(router.httpPort!);
    client.socket.write(`POST /v2/models/heavy/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${slow.length}\r\nInference-Header-Content-Length: ${heavyJson.length}\r\n\r\n`);
    client.socket.write(slow);
    client.socket.write(`POST /v2/models/${MODEL}/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${json.length}\r\n\r\n${json}`);
    // No byte of this body is ever sent: only a refusal before reading answers it.
    client.socket.write(`POST /v2/models/${MODEL}/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${3.75 * MiB}\r\nInference-Header-Content-Length: 100\r\n\r\n`);
    await waitFor('three answers', () => client.closed() || (client.got().match(/HTTP\/1\.1 \d+/g) ?? []).length === 3, 20_000, 100);
    expect(client.got().match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 429', 'HTTP/1.1 429']);
    expect([...client.got().matchAll(/\{"error":"([^"]*)"\}/g)].map((m) => m[1])).toEqual([
      expect.stringMatching(/^this connection's requests hold too many bytes to take the \d+ bytes this request makes as a gRPC message \(one connection's share of the router's\); retry on another once they are answered$/),
      `this connection's requests hold too many bytes to take ${3.75 * MiB} more (one connection's share of the router's); retry on another once they are answered`,
    ]);
    await waitFor('the door to close the connection', goneFor(client), 20_000, 200);
  });
});

describe('a connection answered 408', () => {
  let router: RouterService;

  beforeAll(async () => {
    router = await routerWith({
      INFERMESH_HTTP_REQUEST_TIMEOUT_MS: '3000', INFERMESH_HTTP_HEADERS_TIMEOUT_MS: '2000',
      // A connection closed on a client that drips on lingers 1 s.
      INFERMESH_HTTP_LINGERING_TIME_MS: '1000',
      // The largest body (the message limit) must fit the budget for the router to start.
      INFERMESH_HTTP_MAX_REQUEST_BYTES: '1200000', INFERMESH_MAX_MESSAGE_BYTES: String(MiB),
    });
  });

  afterAll(async () => {
    await router?.shutdown(5_000);
  });

  it('is closed, and the body bytes it held are free for others while its client stays', async () => {
    const port = router.httpPort!;
    const attacker = await rawClient(port);
    attacker.socket.write(`POST /v2/models/${MODEL}/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000001\r\nInference-Header-Content-Length: 2\r\n\r\n`);
    attacker.socket.write(Buffer.alloc(1_000_000, 0x20));
    await waitFor('the 408', () => attacker.got().startsWith('HTTP/1.1 408 Request Timeout'), 30_000);
    // The attacker keeps its socket open and writes nothing more: a 200 KB request fits again.
    const legit = await waitFor('a 200 KB request to be taken', async () => {
      const res = await infer(port, 50_000);
      return res.status === 200 ? res : undefined;
    }, 20_000, 500).catch(async () => infer(port, 50_000));
    expect(legit).toEqual({ status: 200 });
    // Bytes it drips after its answer are read and dropped, until the door lets go of the connection.
    await waitFor('the door to close the connection', goneFor(attacker), 20_000, 200);
  });

  it('is closed when its headers drip in', async () => {
    const client = await rawClient(router.httpPort!);
    client.socket.write(`GET /v2/health/live HTTP/1.1\r\nHost: x\r\n`);
    let n = 0;
    const drip = setInterval(() => client.socket.writable && client.socket.write(`X-Drip-${n++}: y\r\n`), 200);
    try {
      await waitFor('the 408', () => client.got().startsWith('HTTP/1.1 408 Request Timeout'), 30_000);
      await waitFor('the door to close the connection', goneFor(client, `X-Drip: y\r\n`), 20_000, 200);
    } finally {
      clearInterval(drip);
    }
  });

  it('is closed when its chunked body stalls', async () => {
    const client = await rawClient(router.httpPort!);
    client.socket.write(`POST /v2/repository/index HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n{"ready"\r\n`);
    await waitFor('the 408', () => client.got().startsWith('HTTP/1.1 408 Request Timeout'), 30_000);
    await waitFor('the door to close the connection', goneFor(client, '1\r\n \r\n'), 20_000, 200);
  });
});
