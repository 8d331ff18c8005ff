// How the TS client connects (client/connection.ts), tried against a real listener that records the
// bytes it is sent: a token never leaves the machine in the clear unless the caller says so.
import net from 'node:net';
import os from 'node:os';
import { RegistryApi, type ConnectOptions } from '../../../client/index';
import { isLoopback } from '../../../client/connection';

const TOKEN = 'imk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

/** This machine's first non-loopback IPv4 address, where a listener on 0.0.0.0 is reached from off loopback. */
function outwardAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

/** Listens on every interface and records what the first connection sends in its first 500 ms. */
async function recorder(): Promise<{ port: number; bytes: () => Promise<Buffer>; close: () => void }> {
  const chunks: Buffer[] = [];
  let firstSeen: () => void = () => undefined;
  const seen = new Promise<void>((r) => (firstSeen = r));
  const server = net.createServer((s) => {
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => undefined);
    firstSeen();
  });
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    bytes: async () => {
      // A client that never connects leaves nothing to read: the test's assertions fail, not hang.
      await Promise.race([seen, new Promise((r) => setTimeout(r, 10_000))]);
      await new Promise((r) => setTimeout(r, 500));
      return Buffer.concat(chunks);
    },
    close: () => server.close(),
  };
}

describe('isLoopback', () => {
  it.each([
    ['127.0.0.1:8003', true],
    ['127.1.2.3:1', true],
    ['localhost:8001', true],
    ['[::1]:8001', true],
    ['10.0.0.5:8003', false],
    ['registry.infermesh.svc:8003', false],
    ['127.0.0.1.example.com:8003', false],
    ['[::ffff:10.0.0.1]:1', false],
  ])('%s → %s', (address, loopback) => {
    expect(isLoopback(address)).toBe(loopback);
  });
});

/** The bytes a RegistryApi with `opts` sends to a recorder reached at `host`. */
async function sentBytes(host: string, opts: ConnectOptions): Promise<Buffer> {
  const rec = await recorder();
  const api = new RegistryApi(`${host}:${rec.port}`, opts);
  try {
    const call = api.models().catch(() => undefined);
    const bytes = await rec.bytes();
    api.close();
    await call;
    return bytes;
  } finally {
    api.close();
    rec.close();
  }
}

describe('a token without a CA', () => {
  // The machine's own outward address reaches the recorder from off loopback.
  const ip = outwardAddress() ?? 'no non-loopback IPv4 address on this machine';

  it('goes to an address off this machine only over TLS (verified by the system roots), never in the clear', async () => {
    const bytes = await sentBytes(ip, { token: TOKEN });
    // A TLS ClientHello (record type 22), not the HTTP/2 preface; the token nowhere in the bytes.
    expect(bytes[0]).toBe(0x16);
    expect(bytes.includes('PRI * HTTP/2.0')).toBe(false);
    expect(bytes.includes(TOKEN)).toBe(false);
  });

  it('goes in the clear off this machine only when the caller says the mesh has no TLS (plaintext)', async () => {
    expect((await sentBytes(ip, { token: TOKEN, plaintext: true })).includes('PRI * HTTP/2.0')).toBe(true);
  });

  it('stays plaintext to loopback, where the local mesh listens without TLS', async () => {
    expect((await sentBytes('127.0.0.1', { token: TOKEN })).includes('PRI * HTTP/2.0')).toBe(true);
  });
});
