// The registry with INFERMESH_AUTH on, against a real nats-server: callers without a token are
// UNAUTHENTICATED; a token without the RPC's scope is PERMISSION_DENIED naming scope and model, and
// nothing is stored; the bootstrap admin key from INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE works; an admin
// creates, lists (no secret or hash shown) and revokes keys; lists show only what a key may read;
// every control-plane action's event names its principal (a rollout step the analysis takes names
// the controller); the built CLI (dist/cli/main.js) creates a key with --token and INFERMESH_TOKEN.
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
import { startTestRegistry } from '../helpers/services';
import { modelPath } from '../helpers/models';
import { waitFor } from '../helpers/wait';
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
    const tokenFile = path.join(dir, 'admin.token');
    fs.writeFileSync(tokenFile, `${bootstrap.token}\n`, { mode: 0o600 });
    nats = await startTestNats();
    service = await startTestRegistry(nats.url, {
      INFERMESH_AUTH: 'true',
      INFERMESH_AUTH_BOOTSTRAP_TOKEN_FILE: tokenFile,
      INFERMESH_ANALYSIS_WINDOW_MS: String(WINDOW_MS),
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
