// What a proven pod answers instead of its heartbeats being believed (lib/grpc/pod-answers.ts),
// asked of real gRPC servers over TLS with a pod certificate a CA made in the test signed: an
// answer costs no more than a heartbeat could (received within HEARTBEAT_MAX_BYTES, held to
// HEARTBEAT_LIMITS), and a health check that misses its deadline says so, apart from a refusal.
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { loadConfig } from '../../../../lib/config';
import { HEARTBEAT_LIMITS } from '../../../../lib/events';
import { askServing, modelsOfIndex, PodAnswerClients } from '../../../../lib/grpc/pod-answers';
import { healthClient } from '../../../../lib/grpc/client';
import { protos } from '../../../../lib/grpc/proto';
import { silentLogger } from '../../../../lib/log';
import { loadTls, podIdentity, type TlsFiles } from '../../../../lib/tls';
import type { PemFiles } from '../../../../lib/pki';
import { PodConnections } from '../../../../services/router/pod-connections';
import { startTestPki, type TestPki } from '../../../helpers/pki';

interface IndexEntry { name: string; version: string; state: string; reason: string }

let pki: TestPki;
let routerTls: TlsFiles;
let podFiles: PemFiles;
const servers: grpc.Server[] = [];

/** A pod's gRPC server over TLS: its health says `status` (null: never answers), its RepositoryIndex lists `index()`. */
async function pod(index: () => IndexEntry[], status: string | null = 'SERVING'): Promise<string> {
  const server = new grpc.Server({ 'grpc.max_send_message_length': -1 });
  servers.push(server);
  server.addService(protos().health.Health.service, {
    Check: (_call: unknown, cb: grpc.sendUnaryData<{ status: string }>) => {
      if (status !== null) cb(null, { status });
    },
  });
  server.addService(protos().inference.GRPCInferenceService.service, {
    RepositoryIndex: (_call: unknown, cb: grpc.sendUnaryData<{ models: IndexEntry[] }>) => cb(null, { models: index() }),
  });
  const creds = grpc.ServerCredentials.createSsl(fs.readFileSync(podFiles.caFile), [{ cert_chain: fs.readFileSync(podFiles.certFile), private_key: fs.readFileSync(podFiles.keyFile) }], false);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  return `127.0.0.1:${port}`;
}

/** `n` versions as RepositoryIndex lists them, each of a model of its own with a short name. */
const entries = (n: number): IndexEntry[] => Array.from({ length: n }, (_, i) => ({ name: i.toString(36), version: '1', state: 'READY', reason: '' }));

beforeAll(async () => {
  pki = await startTestPki();
  routerTls = loadTls(loadConfig({ ...pki.env(await pki.issue('router', { kind: 'router', name: 'router-1' })), INFERMESH_TLS_RELOAD_INTERVAL_MS: '60000' }), silentLogger)!;
  podFiles = await pki.issue('pod-a', { kind: 'pod', name: 'pod-a' });
});

afterAll(async () => {
  routerTls?.close();
  for (const s of servers) s.forceShutdown();
  pki?.cleanup();
});

it('refuses a RepositoryIndex answer larger than a heartbeat may be, as the router and placement ask it', async () => {
  // 100,000 versions of a dozen bytes each: about 1.7 MB, past a heartbeat's 1 MiB (NATS's max_payload).
  const address = await pod(() => entries(100_000));
  const conns = new PodConnections(1, 64 * 1024 * 1024, 0, routerTls);
  const clients = new PodAnswerClients(routerTls, 5_000);
  try {
    expect(await conns.verify({ address, identity: podIdentity('pod-a') })).toBeUndefined();
    await expect(conns.askVersions(address, 5_000)).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
    await expect(clients.versions({ address, identity: podIdentity('pod-a') })).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
    // What a heartbeat could carry is answered as before.
    const fits = await pod(() => entries(10_000));
    expect(await conns.verify({ address: fits, identity: podIdentity('pod-a') })).toBeUndefined();
    expect(await conns.askVersions(fits, 5_000)).toHaveLength(10_000);
  } finally {
    conns.closeAll();
    clients.closeAll();
  }
});

it('holds an answer within the bound to a heartbeat\'s limits: versions listed, name lengths, no version twice; a long reason cut', () => {
  const answer = (models: IndexEntry[]) => modelsOfIndex({ models: models.map((m) => ({ ...m, platform: '' })) } as never);
  expect(answer(entries(HEARTBEAT_LIMITS.versions))).toHaveLength(HEARTBEAT_LIMITS.versions);
  expect(() => answer(entries(HEARTBEAT_LIMITS.versions + 1))).toThrow(`RepositoryIndex lists ${HEARTBEAT_LIMITS.versions + 1} versions`);
  expect(() => answer([{ name: 'm'.repeat(129), version: '1', state: 'READY', reason: '' }])).toThrow('RepositoryIndex lists');
  expect(() => answer([{ name: 'm', version: '1', state: 'READY', reason: '' }, { name: 'm', version: '1', state: 'UNAVAILABLE', reason: 'x' }])).toThrow('version 1 twice');
  const [cut] = answer([{ name: 'm', version: '2', state: 'UNAVAILABLE', reason: 'r'.repeat(100_000) }]);
  expect(cut!.reason).toBe(`${'r'.repeat(HEARTBEAT_LIMITS.reason)}…`);
});

it('tells a health check that missed its deadline from a pod that refused or said NOT_SERVING', async () => {
  const silent = await pod(() => [], null);
  const notServing = await pod(() => [], 'NOT_SERVING');
  const ask = async (address: string) => {
    const c = healthClient(address, { tls: { files: routerTls, identity: podIdentity('pod-a') } });
    try {
      return await askServing(c, 300);
    } finally {
      c.close();
    }
  };
  expect(await ask(silent)).toMatchObject({ serving: false, deadlineMissed: true });
  expect(await ask(notServing)).toEqual({ serving: false, answer: 'NOT_SERVING' });
  // Nothing listens there: refused, not late.
  const refused = await ask('127.0.0.1:1');
  expect(refused.serving).toBe(false);
  expect(refused.deadlineMissed).toBeUndefined();
});
