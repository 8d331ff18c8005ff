// The registry with INFERMESH_AUTH on, against a real nats-server: callers without a token are
// UNAUTHENTICATED; a token without the RPC's scope is PERMISSION_DENIED naming scope and model, and
// nothing is stored; the bootstrap admin key from INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE works; an admin
// creates, lists (no secret or hash shown) and revokes keys; lists show only what a key may read;
// every control-plane action's event names its principal (a rollout step the analysis takes names
// the controller); the built CLI (dist/cli/main.js) creates a key with --token and INFERMESH_TOKEN.
// Over TLS with a CA made in the test: with mutual TLS, pods and routers are known by their
// certificates (read only); the client and the CLI reach a TLS registry with --ca and a token.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { InfermeshError, RegistryApi, RolloutApi, type RegistryEvent } from '../../client/index';
import { newApiKey } from '../../lib/auth/api-keys';
import { encodeWindowReport, windowSubject, type VersionWindow } from '../../lib/window-stats';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { startNatsServer } from '../../cli/local-mesh/nats-server';
import { bootstrapAuthEnv, startTestRegistry } from '../helpers/services';
import { modelPath } from '../helpers/models';
import { waitFor } from '../helpers/wait';
import { startTestPki, type TestPki } from '../helpers/pki';
import { testConfig } from '../helpers/services';
import { registryClient, unary } from '../../lib/grpc/client';
import { loadTls, type TlsFiles } from '../../lib/tls';
import { createCa, issueCertificate, writePem } from '../../lib/pki';
import { silentLogger } from '../../lib/log';
import type { ModelOut, RegistryClient } from '../../lib/grpc/types';
import type { RegistryService } from '../../services/registry/registry-service';

jest.setTimeout(120_000);

const cli = path.resolve(__dirname, '../../dist/cli/main.js');
const run = promisify(execFile);
const MODEL_FILE = modelPath('fixtures/pad_reflect_fp32.onnx');
const WINDOW_MS = 200;

/** The InfermeshError a promise rejects with. */
async function failure(p: Promise<unknown>): Promise<InfermeshError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof InfermeshError)) throw new Error(`expected an InfermeshError, got ${String(err)}`);
  return err;
}

describe('registry authentication, scopes, keys and audit', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let service: RegistryService;
  let dir: string;
  let address: string;
  const bootstrap = newApiKey();
  let admin: RegistryApi;
  const opened: { close(): void }[] = [];
  const registryAs = (token?: string) => {
    const api = new RegistryApi(address, token === undefined ? {} : { token });
    opened.push(api);
    return api;
  };
  const rolloutsAs = (token: string) => {
    const api = new RolloutApi(address, { token });
    opened.push(api);
    return api;
  };
  /** A new key with `grants`, made by the admin: its token and its principal's name in events. */
  const keyWith = async (name: string, grants: string[]) => {
    const { token, key } = await admin.createKey(name, grants);
    return { token, id: key.id, principal: `key:${key.id}` };
  };
  /** Every event kept, as the admin sees them. */
  const allEvents = async (until: (events: RegistryEvent[]) => boolean): Promise<RegistryEvent[]> => {
    const events: RegistryEvent[] = [];
    await waitFor('the events', async () => {
      events.length = 0;
      const watch = admin.watchEvents({ fromSequence: 0 });
      await watch.ready;
      const collected = (async () => {
        for await (const e of watch) events.push(e.event);
      })();
      await new Promise((r) => setTimeout(r, 300));
      watch.cancel();
      await collected;
      return until(events);
    }, 20_000);
    return events;
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-auth-registry-'));
    const auth = bootstrapAuthEnv(dir, bootstrap.token);
    nats = await startTestNats();
    service = await startTestRegistry(nats.url, {
      ...auth,
      INFERMESH_ANALYSIS_WINDOW_MS: String(WINDOW_MS),
      INFERMESH_WATCH_RECHECK_MS: '200',
    });
    address = `127.0.0.1:${service.port}`;
    admin = registryAs(bootstrap.token);
  });

  afterAll(async () => {
    for (const c of opened) c.close();
    await service?.shutdown(5_000);
    await nats?.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses calls without a token, or with one it does not know, as UNAUTHENTICATED without echoing it', async () => {
    const anonymous = registryAs();
    for (const call of [anonymous.push('pad', MODEL_FILE), anonymous.models(), anonymous.model('pad'), anonymous.keys(), anonymous.createKey('x', ['admin'])]) {
      const err = await failure(call);
      expect(err.code).toBe('Unauthenticated');
      expect(err.grpcCode).toBe(16);
    }
    const stranger = newApiKey();
    const err = await failure(registryAs(stranger.token).models());
    expect(err.code).toBe('Unauthenticated');
    expect(err.message).not.toContain(stranger.secret);
    expect((await failure(new RolloutApi(address).status('pad'))).code).toBe('Unauthenticated');
  });

  it('stores the bootstrap admin key from INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE (hash only) and lets it manage keys', async () => {
    const keys = await admin.keys();
    expect(keys.find((k) => k.id === bootstrap.id)).toMatchObject({ id: bootstrap.id, grants: ['admin'], created_by: 'bootstrap', revoked_at: '' });
    const shown = JSON.stringify(keys);
    expect(shown).not.toContain(bootstrap.secret);
    expect(shown).not.toContain(bootstrap.hash);
  });

  it('does not start on a bootstrap token file far larger than a token, naming the setting and never reading it', async () => {
    const huge = path.join(dir, 'huge.token');
    fs.writeFileSync(huge, Buffer.alloc(1024 * 1024, 'x'));
    await expect(startTestRegistry(nats.url, { INFERMESH_AUTH: 'true', INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE: huge }))
      .rejects.toThrow(/^INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE .*huge\.token is 1048576 bytes, more than the 4096 such a file can take$/);
    await expect(startTestRegistry(nats.url, { INFERMESH_AUTH: 'true', INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE: path.join(dir, 'missing.token') }))
      .rejects.toThrow(/^INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE .*missing\.token cannot be read: ENOENT$/);
  });

  it('refuses a push without the push scope with PERMISSION_DENIED naming scope and model, storing nothing', async () => {
    const reader = await keyWith('reader', ['read', 'infer:pad-denied']);
    const err = await failure(registryAs(reader.token).push('pad-denied', MODEL_FILE));
    expect(err.code).toBe('PermissionDenied');
    expect(err.grpcCode).toBe(7);
    expect(err.message).toContain("'push'");
    expect(err.message).toContain("'pad-denied'");
    expect((await admin.models()).map((m) => m.name)).not.toContain('pad-denied');

    // A push grant on another pattern is no better; on the model's pattern, the push goes through.
    const other = await keyWith('other-team', ['push:team-b*']);
    expect((await failure(registryAs(other.token).push('pad-denied', MODEL_FILE))).code).toBe('PermissionDenied');
    const pusher = await keyWith('pusher', ['push:pad-*']);
    expect((await registryAs(pusher.token).push('pad-allowed', MODEL_FILE)).version).toBe(1);

    // Every other kind of call checks its own scope too.
    const reads = registryAs(reader.token);
    expect((await failure(reads.archiveVersion('pad-allowed', 1))).message).toContain("'delete'");
    expect((await failure(reads.createKey('sneaky', ['admin']))).code).toBe('PermissionDenied');
    expect((await failure(rolloutsAs(reader.token).start('pad-allowed', 1))).message).toContain("'rollout'");
    expect((await reads.model('pad-allowed')).name).toBe('pad-allowed');
  });

  it('refuses a call that names no model (an empty name) with INVALID_ARGUMENT, not as a missing scope', async () => {
    const pusher = await keyWith('pushes-some', ['push:team-a-*', 'read:team-a-*']);
    const err = await failure(registryAs(pusher.token).push('', MODEL_FILE));
    expect(err.code).toBe('InvalidArgument');
    expect(err.message).toMatch(/^no model named: the model name is empty \(use 1-128 letters/);
    expect((await failure(registryAs(pusher.token).model(''))).code).toBe('InvalidArgument');
    expect((await failure(rolloutsAs(pusher.token).status(''))).code).toBe('InvalidArgument');
    // The key RPCs, about no model, still answer as before: admin only.
    expect((await failure(registryAs(pusher.token).keys())).code).toBe('PermissionDenied');
  });

  it('lists only the models a key may read, and shows key events only to admins', async () => {
    await admin.push('listed-a', MODEL_FILE);
    await admin.push('listed-b', MODEL_FILE);
    const narrow = registryAs((await keyWith('narrow', ['read:listed-a'])).token);
    expect((await narrow.models()).map((m) => m.name)).toEqual(['listed-a']);
    expect((await failure(narrow.model('listed-b'))).code).toBe('PermissionDenied');

    const watch = narrow.watchEvents({ fromSequence: 0 });
    await watch.ready;
    const seen: RegistryEvent[] = [];
    const collected = (async () => {
      for await (const e of watch) seen.push(e.event);
    })();
    await new Promise((r) => setTimeout(r, 500));
    watch.cancel();
    await collected;
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen.map((e) => e.model))).toEqual(new Set(['listed-a']));
  });

  it('lets only a key that reads some model watch every model\'s events, as the console\'s live stream', async () => {
    // An infer-only key would see no event, yet hold one of the event stream's consumers per watch.
    const inferOnly = registryAs((await keyWith('infer-only', ['infer:listed-*'])).token);
    const err = await failure(inferOnly.watchEvents({ onlyNew: true }).ready);
    expect(err.code).toBe('PermissionDenied');
    expect(err.message).toBe('watching events needs the read scope on some model');
    // A filter on a model it may not read is refused by the model's own check, as before.
    expect((await failure(inferOnly.watchEvents({ onlyNew: true, model: 'listed-a' }).ready)).code).toBe('PermissionDenied');
    const reader = registryAs((await keyWith('reads-one', ['read:listed-a'])).token).watchEvents({ onlyNew: true });
    await reader.ready;
    reader.cancel();
  });

  it('ends an open event watch once its key is revoked (INFERMESH_WATCH_RECHECK_MS)', async () => {
    const { token, id } = await keyWith('watcher', ['read']);
    const watch = registryAs(token).watchEvents({ onlyNew: true });
    await watch.ready;
    const ended = (async () => {
      try {
        for await (const e of watch) void e;
        return undefined;
      } catch (err) {
        return err as InfermeshError;
      }
    })();
    await admin.revokeKey(id);
    const err = await ended;
    expect(err).toBeInstanceOf(InfermeshError);
    expect(err!.code).toBe('Unauthenticated');
  });

  it('lets an admin create, list (never a secret) and revoke keys; a revoked key is refused at once', async () => {
    const { token, key } = await admin.createKey('ci pipeline', ['infer:mnist*', 'read:mnist*', 'read:mnist*']);
    expect(token).toMatch(/^imk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(key).toMatchObject({ name: 'ci pipeline', grants: ['infer:mnist*', 'read:mnist*'], created_by: `key:${bootstrap.id}`, revoked_at: '' });
    const secret = token.slice('imk_'.length + 17);
    const listed = await admin.keys();
    expect(listed.find((k) => k.id === key.id)).toMatchObject({ name: 'ci pipeline', grants: ['infer:mnist*', 'read:mnist*'] });
    expect(JSON.stringify(listed)).not.toContain(secret);

    const ci = registryAs(token);
    expect(await ci.models()).toEqual([]);
    const revoked = await admin.revokeKey(key.id);
    expect(revoked.revoked_at).not.toBe('');
    // In force as soon as the registry's watch of the bucket delivers the change (milliseconds).
    const err = await waitFor('the revoked key refused', () => ci.models().then(() => undefined, (e: unknown) => e as InfermeshError), 2_000, 20);
    expect(err.code).toBe('Unauthenticated');
    expect(err.message).not.toContain(secret);
    expect((await admin.keys()).find((k) => k.id === key.id)?.revoked_at).toBe(revoked.revoked_at);

    expect((await failure(admin.revokeKey('0123456789abcdef'))).grpcCode).toBe(5);
    expect((await failure(admin.revokeKey('not-an-id'))).code).toBe('InvalidArgument');
    expect((await failure(admin.createKey('bad', ['superuser']))).code).toBe('InvalidArgument');
    expect((await failure(admin.createKey('none', []))).code).toBe('InvalidArgument');
    expect((await failure(admin.createKey('', ['read']))).code).toBe('InvalidArgument');
  });

  it('names the principal in the event of every control-plane action, and the controller in its own steps', async () => {
    const pusher = await keyWith('audit-pusher', ['push:audited']);
    const roller = await keyWith('audit-roller', ['rollout:audited']);
    const deleter = await keyWith('audit-deleter', ['delete:audited']);
    const revokedKey = await keyWith('audit-revoked', ['read']);
    await admin.revokeKey(revokedKey.id);

    const push = registryAs(pusher.token);
    await push.push('audited', MODEL_FILE);
    await push.push('audited', MODEL_FILE);
    await push.push('audited', MODEL_FILE);
    await push.updateModel('audited', { description: 'audited model' });
    const rollouts = rolloutsAs(roller.token);
    await rollouts.start('audited', 2, { weight: 10 });
    await rollouts.setWeight('audited', 20);
    await rollouts.promote('audited');
    const del = registryAs(deleter.token);
    await del.archiveVersion('audited', 1);
    await del.deleteVersion('audited', 1);

    // An automatic rollout the analysis rolls back: windows where version 3 fails every request.
    await rollouts.start('audited', 3, { weight: 50, steps: [50], automatic: true, analysis: { windowsToFail: 1, minRequests: 1 } });
    const nc: NatsConnection = await connect({ servers: nats.url });
    const windows = (version: number, errors: number): VersionWindow => ({ version, requests: 10, errors, latency: [10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], unready: 0 });
    const report = setInterval(() => {
      const windowStart = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS;
      nc.publish(windowSubject('audited'), encodeWindowReport({ schema: 1, router: 'test-router', model: 'audited', windowStart, windowMs: WINDOW_MS, versions: [windows(2, 0), windows(3, 10)] }));
    }, WINDOW_MS / 4);
    try {
      const watcher = rolloutsAs(bootstrap.token); // GetRollout needs read, which the roller lacks
      await waitFor('the controller\'s rollback', async () => (await watcher.status('audited')).rollout?.phase === 'rolled_back', 20_000);
    } finally {
      clearInterval(report);
      await nc.close();
    }

    const events = await allEvents((es) => es.some((e) => e.type === 'rollout.changed' && e.action === 'rolled_back'));
    const of = (model: string) => events.filter((e) => e.model === model);
    const audited = of('audited');
    expect(audited.filter((e) => e.type === 'model.created').map((e) => e.principal)).toEqual([pusher.principal]);
    expect(audited.filter((e) => e.type === 'version.published').map((e) => e.principal)).toEqual([pusher.principal, pusher.principal, pusher.principal]);
    expect(audited.find((e) => e.type === 'model.config.changed')?.principal).toBe(pusher.principal);
    const rolloutEvents = audited.filter((e) => e.type === 'rollout.changed').map((e) => e.type === 'rollout.changed' && [e.action, e.principal]);
    expect(rolloutEvents).toEqual([
      ['started', roller.principal], ['weight', roller.principal], ['promoted', roller.principal],
      ['started', roller.principal], ['rolled_back', 'controller'],
    ]);
    expect(audited.find((e) => e.type === 'version.archived')?.principal).toBe(deleter.principal);
    expect(audited.find((e) => e.type === 'version.deleted')?.principal).toBe(deleter.principal);
    // traffic.changed: the first push's, the rollouts' (by hand and by the controller).
    expect(audited.filter((e) => e.type === 'traffic.changed').map((e) => e.principal)).toEqual([
      pusher.principal, roller.principal, roller.principal, roller.principal, roller.principal, 'controller',
    ]);
    expect(audited.every((e) => e.principal)).toBe(true);

    const keyEvents = of('');
    expect(keyEvents.find((e) => e.type === 'key.created' && e.keyId === bootstrap.id)?.principal).toBe('bootstrap');
    expect(keyEvents.find((e) => e.type === 'key.created' && e.keyId === pusher.id)).toMatchObject({ name: 'audit-pusher', grants: ['push:audited'], principal: `key:${bootstrap.id}` });
    expect(keyEvents.find((e) => e.type === 'key.revoked' && e.keyId === revokedKey.id)?.principal).toBe(`key:${bootstrap.id}`);
    expect(JSON.stringify(keyEvents)).not.toMatch(/imk_|"hash"/);
  });

  it('creates a key with the built CLI, given the token by --token or INFERMESH_TOKEN', async () => {
    const infermesh = (args: string[], env: Record<string, string> = {}) =>
      run(process.execPath, [cli, ...args, '--registry', address], { env: { ...process.env, INFERMESH_TOKEN: '', ...env } });
    const { stdout } = await infermesh(['keys', 'create', '--name', 'from-cli', '--grant', 'infer:mnist*', '--grant', 'read', '--token', bootstrap.token]);
    const created = JSON.parse(stdout) as { token: string; id: string; grants: string[] };
    expect(created.token).toMatch(/^imk_[0-9a-f]{16}_/);
    expect(created.grants).toEqual(['infer:mnist*', 'read']);
    expect((await admin.keys()).find((k) => k.id === created.id)).toMatchObject({ name: 'from-cli', created_by: `key:${bootstrap.id}` });
    // The new key works (read on every model), and shows up in the CLI's list without its secret.
    expect(Array.isArray(await registryAs(created.token).models())).toBe(true);
    const listed = await infermesh(['keys', 'list'], { INFERMESH_TOKEN: bootstrap.token });
    expect(listed.stdout).toContain(created.id);
    expect(listed.stdout).not.toContain(created.token.slice(21));

    const refused = await infermesh(['keys', 'create', '--name', 'no-token', '--grant', 'read']).then(() => undefined, (e: { code: number; stderr: string }) => e);
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toContain('Unauthenticated');
    const revoked = await infermesh(['keys', 'revoke', created.id, '--token', bootstrap.token]);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ id: created.id, revoked_at: expect.any(String) });
  });
});

describe('registry authentication over TLS', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let pki: TestPki;
  let mutual: RegistryService;
  let serverOnly: RegistryService;
  let dir: string;
  const admin = newApiKey();
  const files: TlsFiles[] = [];
  const clients: { close(): void }[] = [];
  /** A raw registry client presenting a certificate of `kind`/`name`, with no token. */
  const withCertificate = async (kind: 'pod' | 'router' | 'registry', name: string, port = mutual.port): Promise<RegistryClient> => {
    const tls = loadTls(testConfig(nats.url, pki.env(await pki.issue(`${kind}-${name}`, { kind, name }))), silentLogger)!;
    files.push(tls);
    const c = registryClient(`127.0.0.1:${port}`, { tls: { files: tls } });
    clients.push(c);
    return c;
  };
  const status = (p: Promise<unknown>) => p.then(() => 0, (e: { code: number; details: string }) => e);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-auth-tls-'));
    const tokenFile = path.join(dir, 'admin.token');
    fs.writeFileSync(tokenFile, admin.token, { mode: 0o600 });
    pki = await startTestPki();
    // Services use their TLS files for NATS too, so this NATS speaks TLS with a certificate of the test CA.
    const natsFiles = await pki.issue('nats', { kind: 'registry', name: 'nats' });
    const storeDir = path.join(dir, 'nats');
    const server = await startNatsServer({ storeDir, extraArgs: ['--tls', '--tlscert', natsFiles.certFile, '--tlskey', natsFiles.keyFile, '--tlscacert', natsFiles.caFile] });
    // Services take TLS to NATS at a tls:// URL.
    nats = { ...server, url: server.url.replace(/^nats:/, 'tls:'), cleanup: () => server.stop() };
    const registryFiles = await pki.issue('registry', { kind: 'registry', name: 'registry' });
    const env = { INFERMESH_AUTH: 'true', INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE: tokenFile };
    mutual = await startTestRegistry(nats.url, pki.env(registryFiles, { ...env, INFERMESH_TLS_CLIENT_AUTH: 'true' }));
    serverOnly = await startTestRegistry(nats.url, pki.env(registryFiles, env));
    const api = new RegistryApi(`localhost:${serverOnly.port}`, { ca: pki.ca.cert, token: admin.token });
    clients.push(api);
    await api.push('tls-model', MODEL_FILE);
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    for (const f of files) f.close();
    await mutual?.shutdown(5_000);
    await serverOnly?.shutdown(5_000);
    await nats?.cleanup();
    pki?.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lets pods and routers read by their certificates alone, and nothing more', async () => {
    const pod = await withCertificate('pod', 'pod-1');
    expect((await unary<ModelOut>((cb) => pod.GetModel({ name: 'tls-model' }, cb))).name).toBe('tls-model');
    const chunks: Buffer[] = [];
    for await (const c of pod.PullArtifact({ model: 'tls-model', version: 1 }) as AsyncIterable<{ data: Buffer }>) chunks.push(c.data);
    expect(Buffer.concat(chunks)).toEqual(fs.readFileSync(MODEL_FILE));
    const refused = await status(unary((cb) => pod.CreateModel({ name: 'pod-made' }, cb)));
    expect(refused).toMatchObject({ code: 7, details: expect.stringContaining("'push'") });
    expect(await status(unary((cb) => pod.ListKeys({}, cb)))).toMatchObject({ code: 7 });

    const router = await withCertificate('router', 'router-1');
    expect((await unary<{ models: ModelOut[] }>((cb) => router.ListModels({}, cb))).models.map((m) => m.name)).toEqual(['tls-model']);

    // Another kind of certificate proves the connection, not a right: it still needs a token.
    const other = await withCertificate('registry', 'not-a-reader');
    expect(await status(unary((cb) => other.GetModel({ name: 'tls-model' }, cb)))).toMatchObject({ code: 16 });
  });

  it('asks every client for a certificate when client certificates are optional, and trusts only one the CA signed', async () => {
    const pod = await withCertificate('pod', 'pod-2', serverOnly.port);
    expect((await unary<ModelOut>((cb) => pod.GetModel({ name: 'tls-model' }, cb))).name).toBe('tls-model');
    expect(await status(unary((cb) => pod.CreateModel({ name: 'pod-made' }, cb)))).toMatchObject({ code: 7 });
    // The same identity signed by a stranger's CA: the connection is made (certificates are optional
    // here), but the certificate proves nothing, so a call without a token is UNAUTHENTICATED.
    const stranger = await createCa({ commonName: 'not the mesh CA' });
    const forged = writePem(path.join(dir, 'forged'), 'pod', await issueCertificate(stranger, { kind: 'pod', name: 'pod-2' }), pki.ca);
    const tls = loadTls(testConfig(nats.url, pki.env(forged)), silentLogger)!;
    files.push(tls);
    const impostor = registryClient(`127.0.0.1:${serverOnly.port}`, { tls: { files: tls } });
    clients.push(impostor);
    expect(await status(unary((cb) => impostor.GetModel({ name: 'tls-model' }, cb)))).toMatchObject({ code: 16 });
  });

  it('connects the client and the CLI with --ca and a token', async () => {
    const address = `localhost:${serverOnly.port}`;
    const api = new RegistryApi(address, { ca: pki.ca.cert, token: admin.token });
    clients.push(api);
    expect((await api.keys()).map((k) => k.id)).toContain(admin.id);
    const plain = new RegistryApi(address, { token: admin.token });
    clients.push(plain);
    expect((await failure(plain.keys())).grpcCode).toBe(14);
    const noToken = new RegistryApi(address, { ca: pki.ca.cert });
    clients.push(noToken);
    expect((await failure(noToken.keys())).code).toBe('Unauthenticated');

    const { stdout } = await run(process.execPath, [cli, 'keys', 'list', '--registry', address, '--ca', path.join(pki.dir, 'ca.crt')], {
      env: { ...process.env, INFERMESH_TOKEN: admin.token, INFERMESH_CA: '' },
    });
    expect(stdout).toContain(admin.id);
  });
});
