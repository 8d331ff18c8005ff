// lib/tls.ts and lib/pki.ts with real certificates from a CA made here, and lib/h2 over real TLS:
// identities in certificates, the start-up checks, reloads (a bad set is refused and the old one
// kept), ALPN h2 only, client certificates, and the certificate new connections get after a rotation.
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { constants, X509Certificate } from 'node:crypto';
import { loadConfig } from '../../../lib/config';
import { createLogger, type Logger } from '../../../lib/log';
import { expectIdentity, loadTls, natsTlsOptions, peerIdentities, podIdentity, probeIdentities, spiffeId, spiffeIdsOf, TlsFiles } from '../../../lib/tls';
import { H2Server, listenOn } from '../../../lib/h2/server';
import { H2Upstream } from '../../../lib/h2/upstream';
import * as grpc from '@grpc/grpc-js';
import { connect as connectNatsClient } from '@nats-io/transport-node';
import { createServer, listen, serverCredentials } from '../../../lib/grpc/server';
import { createHttpDoorServer } from '../../../lib/rest/http-server';
import { healthClient, unary } from '../../../lib/grpc/client';
import { startTestPki, type TestPki } from '../../helpers/pki';

let pki: TestPki;
beforeAll(async () => {
  pki = await startTestPki();
});
afterAll(() => pki.cleanup());

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger('test', 'debug', {}, (l) => lines.push(l)), lines };
}

function settings(env: Record<string, string>) {
  return loadConfig({ INFERMESH_TLS_RELOAD_INTERVAL_MS: '60000', ...env });
}

/** Serial number of the certificate a fresh TLS connection to `port` is shown. */
function servedSerial(port: number, opts: tls.ConnectionOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: pki.ca.cert, ALPNProtocols: ['h2'], ...opts }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.destroy();
      resolve(serial);
    });
    s.once('error', reject);
  });
}

/**
 * What asking the server at `port` for a TLS 1.2 renegotiation comes to: 'renegotiated', or the
 * code of the error that ended the connection.
 */
function renegotiation(port: number, opts: tls.ConnectionOptions = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: pki.ca.cert, ALPNProtocols: ['h2'], maxVersion: 'TLSv1.2', ...opts }, () => {
      s.renegotiate({}, (err) => {
        resolve(err ? ((err as NodeJS.ErrnoException).code ?? err.message) : 'renegotiated');
        s.destroy();
      });
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    s.on('close', () => resolve('closed'));
  });
}

/** The code of the error a TLS 1.2-only client's handshake with `port` ends with, or 'connected'. */
function tls12Handshake(port: number, opts: tls.ConnectionOptions = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: pki.ca.cert, maxVersion: 'TLSv1.2', ...opts }, () => {
      resolve('connected');
      s.destroy();
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('pki', () => {
  it('issues certificates the CA verifies, for server and client use, with the hosts and the SPIFFE ID', async () => {
    const leaf = await pki.issue('pki-pod', { kind: 'pod', name: 'inference-7f9c', hosts: ['pod.local', '10.1.2.3'] });
    const cert = new X509Certificate(leaf.cert);
    expect(cert.verify(new X509Certificate(pki.ca.cert).publicKey)).toBe(true);
    expect(cert.checkIssued(new X509Certificate(pki.ca.cert))).toBe(true);
    expect(cert.subjectAltName).toContain('DNS:pod.local');
    expect(cert.subjectAltName).toContain('IP Address:10.1.2.3');
    expect(spiffeIdsOf({ subjectaltname: cert.subjectAltName })).toEqual(['spiffe://infermesh/pod/inference-7f9c']);
    expect(cert.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    expect(cert.ca).toBe(false);
    expect(new X509Certificate(pki.ca.cert).ca).toBe(true);
    expect(leaf.serialNumber).toBe(cert.serialNumber);
    expect(fs.statSync(leaf.keyFile).mode & 0o077).toBe(0);
  });
});

describe('identities', () => {
  it('names a service by kind and name, and reads URI SANs written plain or quoted', () => {
    expect(spiffeId('router', 'r-1')).toBe('spiffe://infermesh/router/r-1');
    expect(podIdentity('a/b')).toBe('spiffe://infermesh/pod/a%2Fb');
    expect(spiffeIdsOf({ subjectaltname: 'DNS:x, URI:spiffe://infermesh/pod/a, URI:https://example.com, URI:"spiffe://infermesh/pod/b,c"' }))
      .toEqual(['spiffe://infermesh/pod/a', 'spiffe://infermesh/pod/b,c']);
    expect(spiffeIdsOf(undefined)).toEqual([]);
    // Another name's identity inside a DNS name is not a URI SAN.
    expect(spiffeIdsOf({ subjectaltname: 'DNS:URI:spiffe://infermesh/pod/a' })).toEqual([]);
  });

  it('accepts a server only when its certificate carries the expected identity', () => {
    const check = expectIdentity(podIdentity('a'));
    expect(check('127.0.0.1', { subjectaltname: 'IP Address:127.0.0.1, URI:spiffe://infermesh/pod/a' } as tls.PeerCertificate)).toBeUndefined();
    expect(check('127.0.0.1', { subjectaltname: 'URI:spiffe://infermesh/pod/ab' } as tls.PeerCertificate)?.message).toMatch(/spiffe:\/\/infermesh\/pod\/ab is not spiffe:\/\/infermesh\/pod\/a/);
    expect(check('127.0.0.1', { subjectaltname: 'DNS:localhost' } as tls.PeerCertificate)?.message).toMatch(/\(none\)/);
  });
});

describe('loadTls', () => {
  it('is off by default and refuses half a setting, naming the variable', async () => {
    const files = await pki.issue('load', { kind: 'router', name: 'r' });
    expect(loadTls(settings({}), createLogger('t', 'error', {}, () => undefined))).toBeUndefined();
    const quiet = createLogger('t', 'error', {}, () => undefined);
    expect(() => loadTls(settings({ INFERMESH_TLS_CERT_FILE: files.certFile }), quiet)).toThrow(/INFERMESH_TLS_CERT_FILE is set without INFERMESH_TLS_KEY_FILE/);
    expect(() => loadTls(settings({ INFERMESH_TLS_KEY_FILE: files.keyFile }), quiet)).toThrow(/INFERMESH_TLS_KEY_FILE is set without INFERMESH_TLS_CERT_FILE/);
    expect(() => loadTls(settings({ INFERMESH_TLS_CERT_FILE: files.certFile, INFERMESH_TLS_KEY_FILE: files.keyFile }), quiet)).toThrow(/INFERMESH_TLS_CA_FILE is required/);
    expect(() => loadTls(settings({ INFERMESH_TLS_CLIENT_AUTH: 'true' }), quiet)).toThrow(/INFERMESH_TLS_CLIENT_AUTH=true needs/);
    expect(() => loadTls(settings(pki.env({ ...files, keyFile: `${pki.dir}/missing.key` })), quiet)).toThrow(/INFERMESH_TLS_KEY_FILE=.*missing\.key" cannot be read: ENOENT/);
    // A path at something far larger than PEM material is refused by its size, never read.
    fs.writeFileSync(`${pki.dir}/huge.crt`, Buffer.alloc(1024 * 1024 + 1, 'A'));
    expect(() => loadTls(settings(pki.env({ ...files, certFile: `${pki.dir}/huge.crt` })), quiet)).toThrow(/INFERMESH_TLS_CERT_FILE=.*huge\.crt" cannot be read: .*is 1048577 bytes, more than the 1048576/);
    const other = await pki.issue('load-other', { kind: 'router', name: 'r' });
    let message = '';
    try {
      loadTls(settings(pki.env({ ...files, keyFile: other.keyFile })), quiet);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/do not make a usable set/);
    // The key is never in an error.
    expect(message).not.toContain(other.key.split('\n')[1]!);
    const t = loadTls(settings(pki.env(files)), quiet)!;
    expect(new X509Certificate(t.current.cert).serialNumber).toBe(files.serialNumber);
    t.close();
  });

  it('gives NATS the same files', () => {
    const files = { tlsCertFile: 'c', tlsKeyFile: 'k', tlsCaFile: 'ca' };
    // The lowest version and no renegotiation of every other connection (passed on to tls.connect).
    const hardened = { minVersion: 'TLSv1.2', secureOptions: constants.SSL_OP_NO_RENEGOTIATION };
    // Plaintext unless the URL asks for TLS (nats:// servers may not offer it).
    expect(natsTlsOptions({ natsUrl: 'nats://n:4222', ...files })).toBeUndefined();
    expect(natsTlsOptions({ natsUrl: 'nats://a:4222, tls://b:4222', ...files })).toEqual({ certFile: 'c', keyFile: 'k', caFile: 'ca', ...hardened });
    expect(natsTlsOptions({ natsUrl: 'TLS://n:4222', tlsCertFile: '', tlsKeyFile: '', tlsCaFile: 'ca', tlsMinVersion: 'TLSv1.3' })).toEqual({ caFile: 'ca', ...hardened, minVersion: 'TLSv1.3' });
    expect(natsTlsOptions({ natsUrl: 'tls://n:4222', tlsCertFile: '', tlsKeyFile: '', tlsCaFile: '' })).toEqual(hardened);
  });
});

describe('TlsFiles reload', () => {
  it('takes a new valid set, keeps the old one on a bad set (one warning, no key in it), then takes the fixed set', async () => {
    const first = await pki.issue('reload', { kind: 'router', name: 'r' });
    const { log, lines } = capture();
    const files = new TlsFiles(settings(pki.env(first)), log);
    let changes = 0;
    files.onChange(() => changes++);
    expect(await files.check()).toBe(false); // nothing changed

    // A certificate whose key is not (yet) the one on disk: refused, the old material kept.
    const second = await pki.issue('second', { kind: 'router', name: 'r' });
    fs.copyFileSync(second.certFile, first.certFile);
    expect(await files.check()).toBe(false);
    expect(await files.check()).toBe(false);
    expect(new X509Certificate(files.current.cert).serialNumber).toBe(first.serialNumber);
    const warnings = lines.filter((l) => l.includes('"warn"'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/not a usable set/);
    expect(warnings[0]).not.toContain(first.key.split('\n')[1]!);
    expect(changes).toBe(0);

    // Its key arrives: the new pair is taken, listeners and grpc-js providers hear it.
    const identities: Buffer[] = [];
    files.addIdentityCertificateListener((u) => u && identities.push(u.certificate));
    await new Promise((r) => process.nextTick(r));
    fs.copyFileSync(second.keyFile, first.keyFile);
    const before = files.context();
    expect(await files.check()).toBe(true);
    expect(new X509Certificate(files.current.cert).serialNumber).toBe(second.serialNumber);
    expect(files.context()).not.toBe(before);
    expect(changes).toBe(1);
    expect(identities.map((c) => new X509Certificate(c).serialNumber)).toEqual([first.serialNumber, second.serialNumber]);
    expect(lines.some((l) => l.includes('TLS material reloaded') && l.includes(second.serialNumber))).toBe(true);
    files.close();
  });

  it('reloads on its interval', async () => {
    const first = await pki.issue('interval', { kind: 'router', name: 'r' });
    const files = new TlsFiles(settings(pki.env(first, { INFERMESH_TLS_RELOAD_INTERVAL_MS: '100' })), createLogger('t', 'error', {}, () => undefined));
    const next = await pki.issue('interval-next', { kind: 'router', name: 'r' });
    fs.copyFileSync(next.keyFile, first.keyFile);
    fs.copyFileSync(next.certFile, first.certFile);
    const until = Date.now() + 5_000;
    while (new X509Certificate(files.current.cert).serialNumber !== next.serialNumber && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(new X509Certificate(files.current.cert).serialNumber).toBe(next.serialNumber);
    files.close();
  });
});

describe('lib/h2 over TLS', () => {
  const quiet = createLogger('t', 'error', {}, () => undefined);
  const servers: H2Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.drain(100)));
  });

  /** An H2Server answering 200 to every request, over TLS with `files`. */
  async function serve(files: TlsFiles, requestCert = false): Promise<number> {
    const server = new H2Server((stream) => stream.sendHeaders([[':status', '200'], ['x-ok', '1']], true), { tls: { source: files, requestCert } });
    servers.push(server);
    return server.listen('127.0.0.1', 0);
  }

  function get(port: number, opts: http2.SecureClientSessionOptions = {}): Promise<{ status: number; serial: string }> {
    return new Promise((resolve, reject) => {
      const session = http2.connect(`https://127.0.0.1:${port}`, { ca: pki.ca.cert, ...opts });
      session.on('error', reject);
      // A server that refuses the client's certificate may just hang up.
      session.on('close', () => reject(new Error('session closed before an answer')));
      const req = session.request({ ':path': '/' });
      req.on('response', (h) => {
        const serial = (session.socket as tls.TLSSocket).getPeerCertificate().serialNumber;
        resolve({ status: Number(h[':status']), serial });
        session.close();
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('answers an h2 client that trusts the CA; refuses one that does not, and one that does not ask for h2', async () => {
    const cert = await pki.issue('h2-server', { kind: 'pod', name: 'p' });
    const files = loadTls(settings(pki.env(cert)), quiet)!;
    const port = await serve(files);
    expect(await get(port)).toEqual({ status: 200, serial: cert.serialNumber });
    // No CA: the handshake fails on the client's side.
    await expect(get(port, { ca: undefined })).rejects.toThrow(/self-signed|unable to (get|verify)/i);
    // TLS without ALPN: hung up on right after the handshake.
    const closed = await new Promise<boolean>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca: pki.ca.cert }, () => s.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')));
      s.on('close', () => resolve(true));
      s.on('error', () => undefined);
      s.on('data', () => resolve(false));
    });
    expect(closed).toBe(true);
    // ALPN without h2: the handshake fails.
    await expect(new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca: pki.ca.cert, ALPNProtocols: ['http/1.1'] }, () => resolve(s.alpnProtocol));
      s.on('error', reject);
    })).rejects.toThrow(/application protocol|ALPN/i);
    // A plain h2c client gets nothing it can read as HTTP/2.
    const plain = await new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.on('close', () => resolve(got));
      s.on('error', () => undefined);
    });
    expect(plain).not.toContain('PRI');
    files.close();
  });

  it('asks for a client certificate signed by the CA when client auth is on', async () => {
    const cert = await pki.issue('mtls-server', { kind: 'pod', name: 'p' });
    const client = await pki.issue('mtls-client', { kind: 'router', name: 'r' });
    const files = loadTls(settings(pki.env(cert)), quiet)!;
    const port = await serve(files, true);
    await expect(get(port)).rejects.toThrow();
    expect((await get(port, { cert: client.cert, key: client.key })).status).toBe(200);
    // A certificate from another CA is refused.
    const stranger = await startTestPki();
    const foreign = await stranger.issue('foreign', { kind: 'router', name: 'r' });
    await expect(get(port, { cert: foreign.cert, key: foreign.key })).rejects.toThrow();
    stranger.cleanup();
    // The server sees who the client is.
    const ids = await new Promise<string[]>((resolve, reject) => {
      const srv = tls.createServer({ cert: cert.cert, key: cert.key, ca: pki.ca.cert, requestCert: true, rejectUnauthorized: true }, (s) => {
        resolve(peerIdentities(s));
        s.destroy();
        srv.close();
      });
      srv.listen(0, '127.0.0.1', () => {
        const c = tls.connect({ host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, ca: pki.ca.cert, cert: client.cert, key: client.key });
        c.on('error', () => undefined);
      });
      srv.on('tlsClientError', reject);
    });
    expect(ids).toEqual(['spiffe://infermesh/router/r']);
    files.close();
  });

  it('shows the caller each client\'s certificate once per connection, and hangs up on those it refuses', async () => {
    const cert = await pki.issue('peer-server', { kind: 'pod', name: 'p' });
    const files = loadTls(settings(pki.env(cert)), quiet)!;
    const seen: string[][] = [];
    const server = new H2Server((stream) => stream.sendHeaders([[':status', '200']], true), {
      tls: { source: files, requestCert: true, acceptPeer: (socket) => {
        const ids = peerIdentities(socket);
        seen.push(ids);
        return ids.some((id) => id.startsWith('spiffe://infermesh/router/'));
      } },
    });
    servers.push(server);
    const port = await server.listen('127.0.0.1', 0);
    const router = await pki.issue('peer-router', { kind: 'router', name: 'r' });
    const pod = await pki.issue('peer-pod', { kind: 'pod', name: 'q' });
    expect((await get(port, { cert: router.cert, key: router.key })).status).toBe(200);
    await expect(get(port, { cert: pod.cert, key: pod.key })).rejects.toThrow();
    expect(seen).toEqual([['spiffe://infermesh/router/r'], ['spiffe://infermesh/pod/q']]);
    files.close();
  });

  it('serves the rotated certificate to new connections while an open one keeps working', async () => {
    const first = await pki.issue('rotate', { kind: 'pod', name: 'p' });
    const files = loadTls(settings(pki.env(first)), quiet)!;
    const port = await serve(files);
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca: pki.ca.cert });
    const ask = () => new Promise<number>((resolve, reject) => {
      const req = session.request({ ':path': '/' });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
      req.end();
    });
    expect(await ask()).toBe(200);
    const next = await pki.issue('rotate-next', { kind: 'pod', name: 'p' });
    fs.copyFileSync(next.keyFile, first.keyFile);
    fs.copyFileSync(next.certFile, first.certFile);
    expect(await files.check()).toBe(true);
    expect(await servedSerial(port)).toBe(next.serialNumber);
    // The connection opened before goes on, with the certificate it was shown.
    expect(await ask()).toBe(200);
    expect((session.socket as tls.TLSSocket).getPeerCertificate().serialNumber).toBe(first.serialNumber);
    session.close();
    files.close();
  });

  it('connects upstream over TLS only to the identity it expects', async () => {
    const podA = await pki.issue('up-a', { kind: 'pod', name: 'a' });
    const router = await pki.issue('up-router', { kind: 'router', name: 'r' });
    const serverFiles = loadTls(settings(pki.env(podA)), quiet)!;
    const clientFiles = loadTls(settings(pki.env(router)), quiet)!;
    const port = await serve(serverFiles, true);
    const status = (expected: string) => new Promise<string>((resolve) => {
      const up = new H2Upstream(`127.0.0.1:${port}`, 1, { tls: { context: () => clientFiles.context(), checkServerIdentity: expectIdentity(expected) } });
      const stream = up.request([[':method', 'GET'], [':scheme', 'https'], [':path', '/'], [':authority', 'x']], true);
      stream.onHeaders = (headers) => {
        resolve(headers.find((h) => h[0] === ':status')?.[1] ?? '?');
        up.close();
      };
      stream.onClose = () => {
        resolve('closed');
        up.close();
      };
    });
    expect(await status(podIdentity('a'))).toBe('200');
    expect(await status(podIdentity('b'))).toBe('closed');
    // The key the pod signs its heartbeats with, which routers and the registry learn here.
    const peer = await probeIdentities(`127.0.0.1:${port}`, clientFiles);
    expect(peer.ids).toEqual([podIdentity('a')]);
    expect(peer.publicKey?.equals(new X509Certificate(serverFiles.current.cert).publicKey)).toBe(true);
    serverFiles.close();
    clientFiles.close();
  });
});

describe('grpc-js over TLS', () => {
  const quiet = createLogger('t', 'error', {}, () => undefined);

  it('serves TLS with client certificates, checks the server identity a client expects, and follows a rotation', async () => {
    const first = await pki.issue('grpc-server', { kind: 'registry', name: 'registry' });
    const serverFiles = loadTls(settings(pki.env(first)), quiet)!;
    const clientFiles = loadTls(settings(pki.env(await pki.issue('grpc-client', { kind: 'router', name: 'r' }))), quiet)!;
    const { server, health } = createServer({ maxMessageBytes: 1024 * 1024 });
    health.set('', 'SERVING');
    const port = await listen(server, '127.0.0.1', 0, { files: serverFiles, clientAuth: true });
    const address = `127.0.0.1:${port}`;
    const check = (c: ReturnType<typeof healthClient>) => unary<{ status: string }>((cb) => c.Check({ service: '' }, { deadline: Date.now() + 5_000 }, cb));
    const opts = { channel: { 'grpc.use_local_subchannel_pool': 1 } };
    try {
      // By host name (127.0.0.1 is in the certificate), and by SPIFFE ID.
      const byHost = healthClient(address, { ...opts, tls: { files: clientFiles } });
      expect((await check(byHost)).status).toBe('SERVING');
      const byId = healthClient(address, { ...opts, tls: { files: clientFiles, identity: spiffeId('registry', 'registry') } });
      expect((await check(byId)).status).toBe('SERVING');
      const wrongId = healthClient(address, { ...opts, tls: { files: clientFiles, identity: podIdentity('registry') } });
      await expect(check(wrongId)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      wrongId.close();
      // No client certificate: refused.
      const anonymous = new (grpc.makeGenericClientConstructor({}, 'x'))(address, grpc.credentials.createSsl(Buffer.from(pki.ca.cert)), opts.channel);
      await expect(new Promise<void>((resolve, reject) => anonymous.waitForReady(Date.now() + 3_000, (err) => (err ? reject(err) : resolve())))).rejects.toThrow();
      anonymous.close();

      const next = await pki.issue('grpc-server-next', { kind: 'registry', name: 'registry' });
      fs.copyFileSync(next.keyFile, first.keyFile);
      fs.copyFileSync(next.certFile, first.certFile);
      expect(await serverFiles.check()).toBe(true);
      expect(await servedSerial(port, await clientPair())).toBe(next.serialNumber);
      // The reloaded context still refuses a renegotiation (setSecureContext keeps no option it is not given).
      expect(await renegotiation(port, await clientPair())).toBe('ERR_SSL_NO_RENEGOTIATION');
      // The channel connected before keeps working.
      expect((await check(byHost)).status).toBe('SERVING');
      byHost.close();
      byId.close();
    } finally {
      server.forceShutdown();
      serverFiles.close();
      clientFiles.close();
    }
  });
  it('binds a port with the material in force when it binds, not when its credentials were made', async () => {
    const first = await pki.issue('grpc-bind', { kind: 'registry', name: 'registry' });
    const files = loadTls(settings(pki.env(first)), quiet)!;
    const { server } = createServer({ maxMessageBytes: 1024 * 1024 });
    const credentials = serverCredentials({ files, clientAuth: false });
    const next = await pki.issue('grpc-bind-next', { kind: 'registry', name: 'registry' });
    fs.copyFileSync(next.keyFile, first.keyFile);
    fs.copyFileSync(next.certFile, first.certFile);
    expect(await files.check()).toBe(true);
    try {
      const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
      expect(await servedSerial(port)).toBe(next.serialNumber);
    } finally {
      server.forceShutdown();
      files.close();
    }
  });
});

describe('TLS protocol of every context', () => {
  const quiet = createLogger('t', 'error', {}, () => undefined);

  it('holds the h2 door, an HTTPS door and a grpc-js server to INFERMESH_TLS_MIN_VERSION', async () => {
    const files = loadTls(settings(pki.env(await pki.issue('tls13', { kind: 'pod', name: 'p' }), { INFERMESH_TLS_MIN_VERSION: 'TLSv1.3' })), quiet)!;
    const h2 = new H2Server((stream) => stream.sendHeaders([[':status', '200']], true), { tls: { source: files, requestCert: false } });
    const limits = { maxHeaderBytes: 16_384, maxHeaders: 100, headersTimeoutMs: 10_000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, lingeringTimeMs: 100, lingeringTimeoutMs: 100, maxConnections: 10 };
    const door = createHttpDoorServer(limits, (_req, res) => res.end(), files);
    const { server } = createServer({ maxMessageBytes: 1024 * 1024 });
    try {
      const ports = {
        h2: await h2.listen('127.0.0.1', 0),
        https: await listenOn(door.server, '127.0.0.1', 0),
        grpc: await listen(server, '127.0.0.1', 0, { files, clientAuth: false }),
      };
      const refused = 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION';
      expect({
        h2: await tls12Handshake(ports.h2, { ALPNProtocols: ['h2'] }),
        https: await tls12Handshake(ports.https, { ALPNProtocols: ['http/1.1'] }),
        grpc: await tls12Handshake(ports.grpc, { ALPNProtocols: ['h2'] }),
      }).toEqual({ h2: refused, https: refused, grpc: refused });
      expect(await tls12Handshake(ports.grpc, { ALPNProtocols: ['h2'], maxVersion: 'TLSv1.3' })).toBe('connected');
    } finally {
      await h2.drain(100);
      door.stopTls();
      door.server.close();
      server.forceShutdown();
      files.close();
    }
  });

  it('has the service\'s own connections refuse a server\'s renegotiation', async () => {
    const files = loadTls(settings(pki.env(await pki.issue('reneg-client', { kind: 'router', name: 'r' }))), quiet)!;
    const cert = await pki.issue('reneg-server', { kind: 'pod', name: 'p' });
    const asked = new Promise<string>((resolve) => {
      const srv = tls.createServer({ cert: cert.cert, key: cert.key, maxVersion: 'TLSv1.2' }, (s) => {
        s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
        s.renegotiate({}, (err) => resolve(err ? ((err as NodeJS.ErrnoException).code ?? err.message) : 'renegotiated'));
        // The client's reading is what answers the server's request.
        s.write('x');
        s.on('close', () => srv.close());
      });
      srv.listen(0, '127.0.0.1', () => {
        const c = tls.connect({ host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, secureContext: files.context(), checkServerIdentity: () => undefined });
        c.on('data', () => undefined);
        c.on('error', () => undefined);
        c.on('close', () => resolve('closed'));
      });
    });
    expect(await asked).toBe('ERR_SSL_NO_RENEGOTIATION');
    files.close();
  });

  it('holds a NATS connection at a tls:// URL to INFERMESH_TLS_MIN_VERSION', async () => {
    const env = pki.env(await pki.issue('nats-tls13', { kind: 'router', name: 'r' }), { INFERMESH_TLS_MIN_VERSION: 'TLSv1.3' });
    const cert = await pki.issue('nats-tls12', { kind: 'nats', name: 'n' });
    // A NATS server as far as the client needs (INFO asking for TLS), that speaks TLS 1.2 at most.
    const context = tls.createSecureContext({ cert: cert.cert, key: cert.key, maxVersion: 'TLSv1.2' });
    let served!: (outcome: string) => void;
    const outcome = new Promise<string>((resolve) => (served = resolve));
    const srv = net.createServer((socket) => {
      socket.write(`INFO ${JSON.stringify({ server_id: 'x', server_name: 'x', version: '2.10.0', proto: 1, max_payload: 1048576, tls_required: true })}\r\n`);
      const t = new tls.TLSSocket(socket, { isServer: true, secureContext: context });
      t.on('secure', () => {
        served(`connected ${t.getProtocol()}`);
        t.destroy();
      });
      t.on('error', (err: NodeJS.ErrnoException) => served(err.code ?? err.message));
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const url = `tls://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
    const config = settings({ ...env, INFERMESH_NATS_URL: url });
    try {
      await expect(connectNatsClient({ servers: [url], tls: natsTlsOptions(config), reconnect: false, timeout: 2_000 })).rejects.toThrow();
      expect(await outcome).toBe('ERR_SSL_UNSUPPORTED_PROTOCOL');
    } finally {
      srv.close();
    }
  });
});

/** A client certificate and key for a raw TLS connection to a server that asks for one. */
async function clientPair(): Promise<{ cert: string; key: string }> {
  const c = await pki.issue('raw-client', { kind: 'router', name: 'raw' });
  return { cert: c.cert, key: c.key };
}
