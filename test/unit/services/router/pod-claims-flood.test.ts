// A flood of invented pods against the router's membership and identity check over real TLS, as a
// compromised pod (its NATS identity is every pod's) can announce: each names an address that
// accepts the connection and never answers the handshake. The router takes no more unproven pods
// than its identity probes can run and queue, holds no more probe sockets than their concurrency,
// logs each kind of refusal once per interval, and takes a real pod once the probes are free.
import fs from 'node:fs';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { loadConfig } from '../../../../lib/config';
import { createLogger } from '../../../../lib/log';
import { SCHEMA_VERSION, type Heartbeat } from '../../../../lib/events';
import { ClaimWarnings } from '../../../../lib/pod-claims';
import { loadTls, type TlsFiles } from '../../../../lib/tls';
import { Membership } from '../../../../services/router/membership';
import { PodConnections, PodIdentityCheck } from '../../../../services/router/pod-connections';
import { startTestPki, type TestPki } from '../../../helpers/pki';
import { waitFor } from '../../../helpers/wait';

const FAKES = 10;
let pki: TestPki;
let routerTls: TlsFiles;
let real: http2.Http2SecureServer;
let realAddress: string;
/** Servers that accept connections and never say a word, and the sockets they hold. */
const silent: net.Server[] = [];
const held = new Set<net.Socket>();
let accepted = 0;

function hb(pod: string, address: string): Heartbeat {
  return { schema: SCHEMA_VERSION, pod, address, state: 'serving', models: [{ name: 'm', version: 1, state: 'READY', provider: 'cpu' }], inflight: 0, time: new Date().toISOString() };
}

async function listen(server: net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  pki = await startTestPki();
  // Probes never end on their own within the test: only when a silent server drops its socket.
  routerTls = loadTls(loadConfig({
    ...pki.env(await pki.issue('router', { kind: 'router', name: 'router-1' })),
    INFERMESH_TLS_RELOAD_INTERVAL_MS: '60000',
    INFERMESH_IDENTITY_PROBE_CONCURRENCY: '2',
    INFERMESH_IDENTITY_PROBE_QUEUE: '2',
    INFERMESH_IDENTITY_PROBE_TIMEOUT_MS: '600000',
  }), createLogger('t', 'error', {}, () => undefined))!;
  const files = await pki.issue('pod-real', { kind: 'pod', name: 'pod-real' });
  real = http2.createSecureServer({ cert: fs.readFileSync(files.certFile), key: fs.readFileSync(files.keyFile) }, (_req, res) => res.end('ok'));
  realAddress = await listen(real);
  for (let i = 0; i < FAKES; i++) {
    silent.push(net.createServer((socket) => {
      accepted++;
      held.add(socket);
      socket.on('close', () => held.delete(socket));
      socket.on('error', () => undefined);
    }));
  }
});

afterAll(async () => {
  for (const s of held) s.destroy();
  await Promise.all([real, ...silent].map((s) => new Promise((r) => s.close(r))));
  routerTls?.close();
  pki?.cleanup();
});

it('takes no more unproven pods than its probes run and queue, logs each refusal kind once, and takes a real pod once they are free', async () => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('router', 'info', {}, (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
  const warned = (msg: string) => lines.filter((l) => l.level === 'warn' && l.msg === msg);
  // As the router builds them (services/router/router-service.ts).
  const warnings = new ClaimWarnings(log, 60_000);
  const conns = new PodConnections(1, 4 * 1024 * 1024, 0, routerTls);
  let identity: PodIdentityCheck | undefined;
  const membership = new Membership(60_000, {
    admit: (h) => identity?.admit(h),
    refused: (h, why) => warnings.warn('a heartbeat of a pod not yet known is ignored', { pod: h.pod, address: h.address, reason: why }),
    added: (pod) => identity?.check(pod),
  }, Date.now, true, undefined, 10_000);
  identity = new PodIdentityCheck(conns, membership, log, 60_000, warnings);
  try {
    const addresses = await Promise.all(silent.map(listen));
    addresses.forEach((address, i) => membership.update(hb(`fake-${i}`, address)));
    // Two probing, two waiting: the other six are not taken, and said so in one line.
    expect(membership.all().map((p) => p.id)).toEqual(['fake-0', 'fake-1', 'fake-2', 'fake-3']);
    expect(routerTls.probes.load).toEqual({ running: 2, waiting: 2 });
    expect(warned('a heartbeat of a pod not yet known is ignored')).toHaveLength(1);
    await waitFor('the two probes to connect', () => accepted >= 2);
    expect(accepted).toBe(2);
    // A real pod arriving now waits too (its next heartbeat is taken once a probe is free).
    membership.update(hb('pod-real', realAddress));
    expect(membership.all().some((p) => p.id === 'pod-real')).toBe(false);
    expect(warned('a heartbeat of a pod not yet known is ignored')).toHaveLength(1);

    // The silent addresses drop their sockets: the waiting probes run, then every probe has failed.
    await waitFor('every probe ended', () => {
      for (const s of held) s.destroy();
      const load = routerTls.probes.load;
      return load.running === 0 && load.waiting === 0;
    });
    expect(accepted).toBe(4);
    await waitFor('the four failures to be judged', () => warned('pod does not prove the name its heartbeat claims: no traffic').length > 0);
    await new Promise((r) => setImmediate(r));
    expect(warned('pod does not prove the name its heartbeat claims: no traffic')).toHaveLength(1);
    expect(membership.candidates('m', 1)).toEqual([]);

    membership.update(hb('pod-real', realAddress));
    await waitFor('the real pod to prove its name', () => membership.candidates('m', 1).length === 1);
    expect(membership.candidates('m', 1).map((p) => p.id)).toEqual(['pod-real']);
  } finally {
    conns.closeAll();
  }
});
