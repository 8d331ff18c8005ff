// The router's pod identity check over real TLS, with pods that share one certificate
// (spiffe://infermesh/pod/inference) and say so in their heartbeats: two pods with different names
// at two addresses serving that certificate both get traffic, and the data path's connections
// demand the shared identity; a heartbeat claiming the shared identity for an address whose
// certificate carries another gets none and one warning, and so does a pod claiming its own name at
// an address that proves only the shared identity.
import fs from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../../../lib/config';
import { createLogger } from '../../../../lib/log';
import { SCHEMA_VERSION, type Heartbeat } from '../../../../lib/events';
import { loadTls, podIdentity, type TlsFiles } from '../../../../lib/tls';
import type { IssuedPem, PemFiles } from '../../../../lib/pki';
import { Membership } from '../../../../services/router/membership';
import { PodConnections, PodIdentityCheck } from '../../../../services/router/pod-connections';
import { startTestPki, type TestPki } from '../../../helpers/pki';
import { waitFor } from '../../../helpers/wait';

let pki: TestPki;
let routerTls: TlsFiles;
const servers: http2.Http2SecureServer[] = [];
/** Addresses of two servers with the shared certificate, and of one with another pod's. */
let shared1: string;
let shared2: string;
let other: string;

/** An h2 server over TLS with `files`' certificate, answering 200 to anything. */
async function serve(files: PemFiles & IssuedPem): Promise<string> {
  const server = http2.createSecureServer({ cert: fs.readFileSync(files.certFile), key: fs.readFileSync(files.keyFile) }, (_req, res) => res.end('ok'));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function hb(pod: string, address: string, identity?: string): Heartbeat {
  return { schema: SCHEMA_VERSION, pod, ...(identity !== undefined && { identity }), address, state: 'serving', models: [{ name: 'm', version: 1, state: 'READY', provider: 'cpu' }], inflight: 0, time: new Date().toISOString() };
}

/** The status of a GET through the router's data-path connections to `address` ('closed': the handshake was refused). */
function status(conns: PodConnections, address: string): Promise<string> {
  return new Promise((resolve) => {
    const stream = conns.h2(address).request([[':method', 'GET'], [':scheme', 'https'], [':path', '/'], [':authority', 'pod']], true);
    stream.onHeaders = (headers) => resolve(headers.find((h) => h[0] === ':status')?.[1] ?? '?');
    stream.onClose = () => resolve('closed');
  });
}

beforeAll(async () => {
  pki = await startTestPki();
  routerTls = loadTls(loadConfig({ ...pki.env(await pki.issue('router', { kind: 'router', name: 'router-1' })), INFERMESH_TLS_RELOAD_INTERVAL_MS: '60000' }), createLogger('t', 'error', {}, () => undefined))!;
  // One certificate, as one Secret mounted by every replica of a Deployment.
  const sharedFiles = await pki.issue('inference', { kind: 'pod', name: 'inference' });
  shared1 = await serve(sharedFiles);
  shared2 = await serve(sharedFiles);
  other = await serve(await pki.issue('other', { kind: 'pod', name: 'other' }));
});

afterAll(async () => {
  routerTls?.close();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  pki?.cleanup();
});

it('gives traffic to pods sharing one certificate under their own names, and none to a pod whose certificate carries another identity', async () => {
  const lines: string[] = [];
  const log = createLogger('router', 'info', {}, (l) => lines.push(l));
  const conns = new PodConnections(1, 4 * 1024 * 1024, 0, routerTls);
  let check: PodIdentityCheck | undefined;
  const membership = new Membership(60_000, { added: (pod) => check?.check(pod) }, Date.now, true);
  check = new PodIdentityCheck(conns, membership, log, 60_000);
  try {
    membership.update(hb('inference-7f9c', shared1, 'inference'));
    membership.update(hb('inference-b2d1', shared2, 'inference'));
    // Claims the shared identity; its certificate carries spiffe://infermesh/pod/other.
    membership.update(hb('inference-evil', other, 'inference'));
    const pod = (id: string) => membership.all().find((p) => p.id === id);
    await waitFor('both sharing pods proved the shared identity', () => pod('inference-7f9c')?.verified && pod('inference-b2d1')?.verified);
    await waitFor('a warning about the impostor', () => lines.some((l) => l.includes('"warn"') && l.includes('inference-evil')));
    expect(membership.candidates('m', 1).map((p) => p.id).sort()).toEqual(['inference-7f9c', 'inference-b2d1']);
    expect(pod('inference-evil')?.verified).toBe(false);

    // Every connection to those addresses demands the shared identity, and gets through.
    expect(conns.clientTls(shared1)?.identity).toBe(podIdentity('inference'));
    expect(await status(conns, shared1)).toBe('200');
    expect(await status(conns, shared2)).toBe('200');
    // The impostor's address proved nothing: a connection there expects an identity no certificate carries.
    expect(conns.clientTls(other)?.identity).not.toBe(podIdentity('other'));
    expect(await status(conns, other)).toBe('closed');

    // Checked again: still one warning, naming what its certificate carries.
    check.sweep();
    await new Promise((r) => setTimeout(r, 200));
    const warnings = lines.filter((l) => l.includes('"warn"') && l.includes('inference-evil'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('spiffe://infermesh/pod/other');
    expect(warnings[0]).toContain(podIdentity('inference'));
  } finally {
    conns.closeAll();
  }
});

it('gives no traffic to a pod that claims its own name at an address whose certificate proves only the shared identity', async () => {
  const lines: string[] = [];
  const conns = new PodConnections(1, 4 * 1024 * 1024, 0, routerTls);
  let check: PodIdentityCheck | undefined;
  const membership = new Membership(60_000, { added: (pod) => check?.check(pod) }, Date.now, true);
  check = new PodIdentityCheck(conns, membership, createLogger('router', 'info', {}, (l) => lines.push(l)), 60_000);
  try {
    membership.update(hb('inference-7f9c', shared1));
    await waitFor('a warning', () => lines.some((l) => l.includes('"warn"') && l.includes('inference-7f9c')));
    expect(membership.all()[0]!.verified).toBe(false);
    expect(membership.candidates('m', 1)).toEqual([]);
    expect(lines.find((l) => l.includes('"warn"'))).toContain(podIdentity('inference-7f9c'));
  } finally {
    conns.closeAll();
  }
});
