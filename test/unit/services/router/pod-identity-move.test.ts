// The router's pod identity check over real TLS when a heartbeat moves a proven pod: the new
// address proving the claimed identity is not enough. A forged heartbeat putting one pod at
// another's address (claiming that pod's identity, or the identity they share) moves nothing,
// closes nothing and is warned about once; a pod rescheduled at a free address with the identity it
// proved moves there on a heartbeat signed with the key of the certificate there; a pod restarted
// with another certificate says goodbye and joins afresh.
import fs from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../../../lib/config';
import { createLogger } from '../../../../lib/log';
import { SCHEMA_VERSION, type Heartbeat } from '../../../../lib/events';
import { loadTls, podIdentity, type TlsFiles } from '../../../../lib/tls';
import type { IssuedPem, PemFiles } from '../../../../lib/pki';
import { Membership, type Pod } from '../../../../services/router/membership';
import { PodConnections, PodIdentityCheck } from '../../../../services/router/pod-connections';
import { HeartbeatConfirmation } from '../../../../lib/heartbeat-confirmation';
import { ClaimWarnings } from '../../../../lib/pod-claims';
import { HeartbeatSigner } from '../../../../lib/heartbeat-signatures';
import { startTestPki, type TestPki } from '../../../helpers/pki';
import { waitFor } from '../../../helpers/wait';

let pki: TestPki;
let routerTls: TlsFiles;
const servers: http2.Http2SecureServer[] = [];
/** Servers with pod a's, pod b's (two: b's old and new address) and the shared certificate (three). */
let addrA: string;
let addrB: string;
let addrB2: string;
let shared1: string;
let shared2: string;
let shared3: string;
/** The key files of pod a's, pod b's and the shared certificate: a move is taken only signed with the key of the certificate at the new address. */
let keyA: string;
let keyB: string;
let keyShared: string;

async function serve(files: PemFiles & IssuedPem): Promise<string> {
  const server = http2.createSecureServer({ cert: fs.readFileSync(files.certFile), key: fs.readFileSync(files.keyFile) }, (_req, res) => res.end('ok'));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function hb(pod: string, address: string, identity?: string, state: Heartbeat['state'] = 'serving', keyFile?: string): Heartbeat {
  const unsigned: Heartbeat = { schema: SCHEMA_VERSION, pod, ...(identity !== undefined && { identity }), address, state, models: [{ name: 'm', version: 1, state: 'READY', provider: 'cpu' }], inflight: 0, time: new Date().toISOString() };
  if (!keyFile) return unsigned;
  // One signer per key, as one pod process signs all its heartbeats: a new one per heartbeat would be
  // a restart each time, numbered no higher than its predecessor within one millisecond.
  let signer = signers.get(keyFile);
  if (!signer) signers.set(keyFile, (signer = new HeartbeatSigner(() => fs.readFileSync(keyFile))));
  return signer.sign(unsigned);
}
const signers = new Map<string, HeartbeatSigner>();

/** The status of a GET through the router's data-path connections to `address` ('closed': the handshake was refused). */
function status(conns: PodConnections, address: string): Promise<string> {
  return new Promise((resolve) => {
    const stream = conns.h2(address).request([[':method', 'GET'], [':scheme', 'https'], [':path', '/'], [':authority', 'pod']], true);
    stream.onHeaders = (headers) => resolve(headers.find((h) => h[0] === ':status')?.[1] ?? '?');
    stream.onClose = () => resolve('closed');
  });
}

/** A router's membership, connections and identity check, wired as router-service.ts wires them. */
function router() {
  const lines: string[] = [];
  const removed: string[] = [];
  const conns = new PodConnections(1, 4 * 1024 * 1024, 0, routerTls);
  let check: PodIdentityCheck | undefined;
  let confirmation: HeartbeatConfirmation<Pod> | undefined;
  const membership = new Membership(60_000, {
    added: (pod) => check?.check(pod),
    moveClaimed: (pod, claim, refused) => check?.checkMove(pod, claim, refused),
    proving: (pod) => check?.proving(pod) ?? false,
    claimed: (pod, claim) => confirmation?.claim(pod, claim),
    removed: (pod) => {
      confirmation?.forget(pod);
      removed.push(`${pod.id}@${pod.address}`);
      if (!membership.all().some((p) => p.address === pod.address)) conns.close(pod.address);
    },
  }, Date.now, true);
  const log = createLogger('router', 'info', {}, (l) => lines.push(l));
  check = new PodIdentityCheck(conns, membership, log, 60_000);
  // A goodbye of a proven pod is asked of it: these servers answer no health check, as a pod gone.
  confirmation = new HeartbeatConfirmation(membership, {
    serving: (pod) => conns.askServing(pod.address, 1_000),
    versions: (pod) => conns.askVersions(pod.address, 1_000),
  }, new ClaimWarnings(log, 0), log, { intervalMs: 0 });
  const where = () => membership.all().map((p) => `${p.id}@${p.address} ${p.verified}`).sort();
  const warnings = () => lines.filter((l) => l.includes('"warn"'));
  return { lines, removed, conns, check, membership, where, warnings };
}

beforeAll(async () => {
  pki = await startTestPki();
  routerTls = loadTls(loadConfig({ ...pki.env(await pki.issue('router', { kind: 'router', name: 'router-1' })), INFERMESH_TLS_RELOAD_INTERVAL_MS: '60000' }), createLogger('t', 'error', {}, () => undefined))!;
  const a = await pki.issue('a', { kind: 'pod', name: 'a' });
  keyA = a.keyFile;
  addrA = await serve(a);
  const b = await pki.issue('b', { kind: 'pod', name: 'b' });
  keyB = b.keyFile;
  addrB = await serve(b);
  addrB2 = await serve(b);
  const shared = await pki.issue('inference', { kind: 'pod', name: 'inference' });
  keyShared = shared.keyFile;
  shared1 = await serve(shared);
  shared2 = await serve(shared);
  shared3 = await serve(shared);
});

afterAll(async () => {
  routerTls?.close();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  pki?.cleanup();
});

it('keeps a proven pod where it is when a heartbeat moves it to another pod\'s address claiming that pod\'s identity', async () => {
  const r = router();
  try {
    r.membership.update(hb('a', addrA));
    r.membership.update(hb('b', addrB));
    await waitFor('both pods proven', () => r.membership.all().every((p) => p.verified));
    // addrA really proves spiffe://infermesh/pod/a: a heartbeat of b's saying b is there, as a.
    r.membership.update(hb('b', addrA, 'a'));
    r.membership.update(hb('b', addrA, 'a'));
    // Checked all the way too (as when another pod took the address during the check).
    const b = r.membership.all().find((p) => p.id === 'b')!;
    r.check.checkMove(b, hb('b', addrA, 'a', 'serving', keyA));
    await new Promise((res) => setTimeout(res, 300));
    expect(r.where()).toEqual([`a@${addrA} true`, `b@${addrB} true`]);
    expect(r.removed).toEqual([]);
    // b's connections stay, still demanding b's identity.
    expect(r.conns.clientTls(addrB)?.identity).toBe(podIdentity('b'));
    expect(await status(r.conns, addrB)).toBe('200');
    expect(r.membership.candidates('m', 1).map((p) => `${p.id}@${p.address}`).sort()).toEqual([`a@${addrA}`, `b@${addrB}`]);
    const warnings = r.warnings();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('where it cannot go');
    expect(warnings[0]).toContain(`it proved ${podIdentity('b')}, not ${podIdentity('a')}`);
  } finally {
    r.conns.closeAll();
  }
});

it('keeps a proven pod where it is when a heartbeat moves it to a peer\'s address under the identity they share', async () => {
  const r = router();
  try {
    r.membership.update(hb('inference-a', shared1, 'inference'));
    r.membership.update(hb('inference-b', shared2, 'inference'));
    await waitFor('both pods proven', () => r.membership.all().every((p) => p.verified));
    r.membership.update(hb('inference-b', shared1, 'inference'));
    const b = r.membership.all().find((p) => p.id === 'inference-b')!;
    r.check.checkMove(b, hb('inference-b', shared1, 'inference', 'serving', keyShared));
    await new Promise((res) => setTimeout(res, 300));
    expect(r.where()).toEqual([`inference-a@${shared1} true`, `inference-b@${shared2} true`]);
    expect(r.removed).toEqual([]);
    expect(await status(r.conns, shared2)).toBe('200');
    const warnings = r.warnings();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`pod inference-a is at ${shared1}`);
  } finally {
    r.conns.closeAll();
  }
});

it('moves a proven pod rescheduled at a free address with the identity it proved, and lets one restarted with another certificate join afresh', async () => {
  const r = router();
  try {
    r.membership.update(hb('b', addrB));
    await waitFor('b proven', () => r.membership.all()[0]?.verified);
    expect(await status(r.conns, addrB)).toBe('200');
    // Rescheduled: same certificate, new address.
    r.membership.update(hb('b', addrB2, undefined, 'serving', keyB));
    await waitFor('b proven at its new address', () => r.where().join() === `b@${addrB2} true`);
    expect(r.removed).toEqual([`b@${addrB}`]);
    expect(r.lines.some((l) => l.includes('it moves there') && l.includes(addrB2))).toBe(true);
    // Its old address's connections were closed, and what that address proved forgotten.
    expect(r.conns.clientTls(addrB)?.identity).not.toBe(podIdentity('b'));
    expect(await status(r.conns, addrB2)).toBe('200');
    // Restarted with the shared certificate at another address: its claims are ignored until it
    // says goodbye from where it proved its name, then it joins and proves the shared identity.
    r.membership.update(hb('b', shared3, 'inference'));
    expect(r.where()).toEqual([`b@${addrB2} true`]);
    r.membership.update(hb('b', addrB2, undefined, 'stopped'));
    await waitFor('b gone', () => r.where().length === 0);
    r.membership.update(hb('b', shared3, 'inference'));
    await waitFor('b proven with the shared identity', () => r.where().join() === `b@${shared3} true`);
    expect(r.membership.candidates('m', 1).map((p) => p.identity)).toEqual([podIdentity('inference')]);
    expect(await status(r.conns, shared3)).toBe('200');
    expect(r.warnings()).toHaveLength(1);
  } finally {
    r.conns.closeAll();
  }
});

it('moves a pod sharing its certificate back where it proved itself, and not away again at once when the forged move is claimed anew', async () => {
  const r = router();
  try {
    r.membership.update(hb('inference-a', shared1, 'inference'));
    await waitFor('proven', () => r.where().join() === `inference-a@${shared1} true`);
    // A forger holding the shared certificate answers at shared2, a free address: the move is proven.
    r.membership.update(hb('inference-a', shared2, 'inference', 'serving', keyShared));
    await waitFor('moved to the forger\'s address', () => r.where().join() === `inference-a@${shared2} true`);
    // The pod's own heartbeat moves it back.
    r.membership.update(hb('inference-a', shared1, 'inference', 'serving', keyShared));
    await waitFor('moved back', () => r.where().join() === `inference-a@${shared1} true`);
    // The forged claim again, at once: checked at most once per retry (60 s here), so it stays.
    for (let i = 0; i < 20; i++) {
      r.membership.update(hb('inference-a', shared2, 'inference'));
      await new Promise((res) => setTimeout(res, 10));
    }
    expect(r.where()).toEqual([`inference-a@${shared1} true`]);
    expect(r.lines.filter((l) => l.includes('it moves there'))).toHaveLength(2);
  } finally {
    r.conns.closeAll();
  }
});
