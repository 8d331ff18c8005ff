// The Authenticator against a real nats-server (the keys bucket) and a JWKS served over HTTP: API
// keys verified and cached, evicted the moment the watch sees their record change or go, JWTs
// checked for signature, issuer, audience and expiry; no message repeats a token.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey as JoseKey } from 'jose';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import { Authenticator, encodeKeyRecord, keysBucket, newApiKey, type KeyRecord } from '../../../../lib/auth';
import { ErrorCode, MeshError } from '../../../../lib/errors';
import { silentLogger } from '../../../../lib/log';
import { NatsLiveness } from '../../../../lib/nats';
import { startTestNats, type NatsServerProcess } from '../../../helpers/nats';
import { waitFor } from '../../../helpers/wait';

let nats: NatsServerProcess & { cleanup(): Promise<void> };
let nc: NatsConnection;
let kv: KV;
let liveness: NatsLiveness;
const authenticators: Authenticator[] = [];

/** The liveness of `conn`, as routers and the registry run one; `intervalMs` between its round trips. */
const livenessOf = (conn: NatsConnection, intervalMs = 100) => new NatsLiveness(conn, { natsProbeIntervalMs: intervalMs, natsProbeTimeoutMs: 1_000 }, silentLogger, () => undefined).start();

function authenticator(extra: Partial<ConstructorParameters<typeof Authenticator>[0]> = {}): Authenticator {
  const a = new Authenticator({ keys: kv, nc, liveness, cacheTtlMs: 60_000, cacheEntries: 100, log: silentLogger, ...extra });
  a.start();
  authenticators.push(a);
  return a;
}

function record(id: string, hash: string, grants: string[], extra: Partial<KeyRecord> = {}): KeyRecord {
  return { id, name: 'test', hash, grants, createdAt: new Date().toISOString(), createdBy: 'test', ...extra };
}

/** Puts a new key with `grants` as the registry does; returns its token and id. */
async function putKey(grants: string[]): Promise<{ token: string; id: string; rec: KeyRecord }> {
  const k = newApiKey();
  const rec = record(k.id, k.hash, grants);
  await kv.put(k.id, encodeKeyRecord(rec));
  return { token: k.token, id: k.id, rec };
}

/**
 * Authenticates until the answer is cached: a record read while the watch was still delivering
 * (a fresh Authenticator replays the bucket) is used once and not cached.
 */
async function authenticateCached(auth: Authenticator, header: string) {
  return waitFor('the token to be cached', async () => {
    await auth.authenticate(header);
    return auth.cached(header);
  }, 5_000, 20);
}

async function refusal(p: Promise<unknown>): Promise<MeshError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(MeshError);
    return err as MeshError;
  }
  throw new Error('expected a refusal');
}

beforeAll(async () => {
  nats = await startTestNats();
  nc = await connect({ servers: nats.url });
  kv = await keysBucket(nc, { replicas: 1, create: true });
  liveness = livenessOf(nc);
});

afterAll(async () => {
  for (const a of authenticators) await a.stop();
  liveness?.stop();
  await nc?.close();
  await nats?.cleanup();
});

describe('API keys', () => {
  it('authenticates a key, with its grants, and serves it from the cache next time', async () => {
    const auth = authenticator();
    const { token, id } = await putKey(['infer:mnist', 'read']);
    const p = await auth.authenticate(`Bearer ${token}`);
    expect(p).toEqual({ id, kind: 'key', grants: [{ scope: 'infer', pattern: 'mnist' }, { scope: 'read', pattern: '*' }] });
    expect(await authenticateCached(auth, `Bearer ${token}`)).toEqual(p);
    expect(await auth.authenticate(`bearer ${token}`)).toEqual(p);
  });

  it('refuses missing, malformed, unknown and wrong credentials with UNAUTHENTICATED, never echoing them', async () => {
    const auth = authenticator();
    const { token, id } = await putKey(['infer']);
    const wrongSecret = `imk_${id}_${newApiKey().secret}`;
    const unknown = newApiKey().token;
    const cases: [string | undefined, string][] = [
      [undefined, 'missing credentials'],
      ['', 'missing credentials'],
      [`Basic ${token}`, 'not a Bearer token'],
      [token, 'not a Bearer token'],
      ['Bearer ', 'malformed bearer token'],
      [`Bearer ${token.slice(0, -1)}`, 'malformed API key'],
      [`Bearer ${token}x`, 'malformed API key'],
      ['Bearer hunter2-secret-value', 'neither an API key nor a JWT'],
      [`Bearer ${'x'.repeat(9000)}`, 'malformed bearer token'],
      [`Bearer ${unknown}`, 'unknown API key'],
      [`Bearer ${wrongSecret}`, 'does not verify'],
      ['Bearer a.b.c', 'JWTs are not accepted here'],
    ];
    for (const [header, why] of cases) {
      const err = await refusal(auth.authenticate(header));
      expect(err.code).toBe(ErrorCode.Unauthenticated);
      expect(err.message).toContain(why);
      for (const secretish of [token.slice(21), wrongSecret.slice(21), unknown.slice(21), 'hunter2']) expect(err.message).not.toContain(secretish);
    }
    expect(auth.cachedTokens).toBe(0);
  });

  it('refuses a revoked key at once, though it was cached', async () => {
    const auth = authenticator();
    const { token, id, rec } = await putKey(['infer']);
    await authenticateCached(auth, `Bearer ${token}`);
    const revokedAt = Date.now();
    await kv.put(id, encodeKeyRecord({ ...rec, revokedAt: new Date().toISOString() }));
    await waitFor('the watch to evict the key', () => auth.cached(`Bearer ${token}`) === undefined, 2_000, 5);
    expect(Date.now() - revokedAt).toBeLessThan(2_000);
    const err = await refusal(auth.authenticate(`Bearer ${token}`));
    expect(err.message).toBe(`API key ${id} was revoked`);
  });

  it('refuses a deleted key at once, and one whose grants changed gets its new grants', async () => {
    const auth = authenticator();
    const a = await putKey(['infer']);
    const b = await putKey(['infer:mnist']);
    await authenticateCached(auth, `Bearer ${a.token}`);
    await authenticateCached(auth, `Bearer ${b.token}`);
    await kv.delete(a.id);
    await kv.put(b.id, encodeKeyRecord({ ...b.rec, grants: ['read:mnist'] }));
    await waitFor('the watch to evict both keys', () => !auth.cached(`Bearer ${a.token}`) && !auth.cached(`Bearer ${b.token}`), 2_000, 5);
    expect((await refusal(auth.authenticate(`Bearer ${a.token}`))).message).toBe(`unknown API key ${a.id}`);
    expect((await auth.authenticate(`Bearer ${b.token}`)).grants).toEqual([{ scope: 'read', pattern: 'mnist' }]);
  });

  it('reads from the bucket a key the watch has not delivered', async () => {
    // Not started: no watch at all, every record comes from a read.
    const auth = new Authenticator({ keys: kv, cacheTtlMs: 60_000, cacheEntries: 100, log: silentLogger });
    const { token, id } = await putKey(['infer']);
    expect((await auth.authenticate(`Bearer ${token}`)).id).toBe(id);
    expect(auth.cached(`Bearer ${token}`)?.id).toBe(id);
  });

  it('bounds the bucket reads in flight for keys it does not know', async () => {
    const auth = new Authenticator({ keys: kv, cacheTtlMs: 60_000, cacheEntries: 100, log: silentLogger, maxKeyReads: 1 });
    const made = newApiKey().token;
    const [first, second] = await Promise.allSettled([auth.authenticate(`Bearer ${made}`), auth.authenticate(`Bearer ${newApiKey().token}`)]);
    expect(first.status === 'rejected' && (first.reason as MeshError).message).toContain('unknown API key');
    expect(second.status === 'rejected' && (second.reason as MeshError).code).toBe(ErrorCode.Unavailable);
    // The same id is read once, however many ask for it at once.
    const same = await Promise.allSettled([1, 2, 3].map(() => auth.authenticate(`Bearer ${made}`)));
    for (const r of same) expect(r.status === 'rejected' && (r.reason as MeshError).code).toBe(ErrorCode.Unauthenticated);
  });

  it('refuses a key whose stored record is malformed or holds an invalid grant', async () => {
    const auth = authenticator();
    const k = newApiKey();
    await kv.put(k.id, encodeKeyRecord(record(k.id, k.hash, ['infer', 'fly:away'])));
    expect((await refusal(auth.authenticate(`Bearer ${k.token}`))).message).toBe(`API key ${k.id} has an invalid record`);
    const j = newApiKey();
    await kv.put(j.id, Buffer.from('{"id":'));
    expect((await refusal(auth.authenticate(`Bearer ${j.token}`))).message).toBe(`unknown API key ${j.id}`);
  });

  it('trusts a cached key no longer than the TTL when the watch is gone', async () => {
    let now = Date.now();
    const auth = new Authenticator({ keys: kv, cacheTtlMs: 1_000, cacheEntries: 100, log: silentLogger, now: () => now });
    // Never started: no watch, only the TTL.
    const { token, id, rec } = await putKey(['infer']);
    await auth.authenticate(`Bearer ${token}`);
    await kv.put(id, encodeKeyRecord({ ...rec, revokedAt: new Date().toISOString() }));
    expect(auth.cached(`Bearer ${token}`)).toBeDefined();
    now += 1_000;
    expect(auth.cached(`Bearer ${token}`)).toBeUndefined();
    expect((await refusal(auth.authenticate(`Bearer ${token}`))).message).toContain('revoked');
  });
});

describe('the watch proven current', () => {
  it('by the round trips of the connection\'s liveness, with no probe loop of its own', async () => {
    // A liveness that probes only when asked: every proof the Authenticator gets is one of its round trips.
    const asked = livenessOf(nc, 3_600_000);
    const auth = authenticator({ liveness: asked, cacheTtlMs: 1_000 });
    try {
      // The watch, once it runs, asks for one round trip; its answer proves the mirror.
      const first = await waitFor('the first proof', () => (Number.isFinite(auth.mirrorTrustedUntilMs) ? auth.mirrorTrustedUntilMs : undefined), 5_000, 10);
      // No loop of its own renews it (it once probed every quarter of the TTL).
      await new Promise((r) => setTimeout(r, 600));
      expect(auth.mirrorTrustedUntilMs).toBe(first);
      // The liveness's next round trip does.
      asked.probeSoon();
      await waitFor('the next proof', () => auth.mirrorTrustedUntilMs > first, 5_000, 10);
    } finally {
      asked.stop();
    }
  });

  it('never trusts the mirror without a liveness', async () => {
    const auth = authenticator({ liveness: undefined });
    const { token } = await putKey(['infer']);
    await authenticateCached(auth, `Bearer ${token}`);
    expect(auth.mirrorTrustedUntilMs).toBe(-Infinity);
  });
});

describe('API keys while NATS is away', () => {
  // A nats-server of its own, stopped and started again; the router's connection waits 2 s
  // between reconnects, the registry's (the bucket's writer) connects afresh once it is back.
  it('refuses a cached key past the TTL with NATS stopped, and after NATS returns a key revoked meanwhile', async () => {
    const own = await startTestNats();
    const routerNc = await connect({ servers: own.url, maxReconnectAttempts: -1, reconnectTimeWait: 2_000 });
    let registryNc: NatsConnection | undefined;
    const routerLiveness = livenessOf(routerNc);
    const auth = new Authenticator({ keys: await keysBucket(routerNc, { replicas: 1, create: true }), nc: routerNc, liveness: routerLiveness, cacheTtlMs: 500, cacheEntries: 100, log: silentLogger, rewatchDelayMs: 100 });
    auth.start();
    try {
      const bucket = await keysBucket(routerNc, { replicas: 1, create: false });
      const revoked = newApiKey();
      const valid = newApiKey();
      const revokedRec = record(revoked.id, revoked.hash, ['infer']);
      await bucket.put(revoked.id, encodeKeyRecord(revokedRec));
      await bucket.put(valid.id, encodeKeyRecord(record(valid.id, valid.hash, ['infer'])));
      await authenticateCached(auth, `Bearer ${revoked.token}`);
      await authenticateCached(auth, `Bearer ${valid.token}`);

      await own.stop();
      await new Promise((r) => setTimeout(r, 1_500)); // 3 TTLs, no KV read possible
      expect(auth.cached(`Bearer ${revoked.token}`)).toBeUndefined();
      for (const k of [revoked, valid]) {
        const err = await refusal(auth.authenticate(`Bearer ${k.token}`));
        expect(err.code).toBe(ErrorCode.Unavailable);
        expect(err.message).not.toContain(k.secret);
      }

      await own.restart();
      registryNc = await connect({ servers: own.url });
      const registryBucket = await keysBucket(registryNc, { replicas: 1, create: false });
      await registryBucket.put(revoked.id, encodeKeyRecord({ ...revokedRec, revokedAt: new Date().toISOString() }));

      // From the moment the router's connection is back until its watch is current again (the
      // valid key cached once more), the revoked key is never accepted.
      const deadline = Date.now() + 20_000;
      while (!auth.cached(`Bearer ${valid.token}`)) {
        if (Date.now() > deadline) throw new Error('the valid key was not cached again within 20 s');
        const err = await refusal(auth.authenticate(`Bearer ${revoked.token}`));
        expect([ErrorCode.Unavailable, ErrorCode.Unauthenticated]).toContain(err.code);
        await auth.authenticate(`Bearer ${valid.token}`).catch((e: MeshError) => expect(e.code).toBe(ErrorCode.Unavailable));
        await new Promise((r) => setTimeout(r, 10));
      }
      expect((await auth.authenticate(`Bearer ${valid.token}`)).id).toBe(valid.id);
      expect((await refusal(auth.authenticate(`Bearer ${revoked.token}`))).message).toBe(`API key ${revoked.id} was revoked`);
      expect(auth.cached(`Bearer ${revoked.token}`)).toBeUndefined();
    } finally {
      await auth.stop();
      routerLiveness.stop();
      await registryNc?.close();
      await routerNc.close();
      await own.cleanup();
    }
  }, 60_000);
});

describe('API keys while NATS hangs', () => {
  // A server that hangs (SIGSTOP) answers nothing and closes nothing: the liveness's round trip stays
  // in flight, nats.js sees no disconnect for 20 s or more, and the round trip sent before the stall
  // is answered after it. Only round trips answered in time may prove the mirror current.
  it('takes no key from the mirror past the TTL of its last proof while NATS hangs, and trusts it again once NATS answers', async () => {
    const own = await startTestNats();
    const conn = await connect({ servers: own.url, pingInterval: 10_000 });
    const connLiveness = livenessOf(conn, 50);
    const auth = new Authenticator({ keys: await keysBucket(conn, { replicas: 1, create: true }), nc: conn, liveness: connLiveness, cacheTtlMs: 400, cacheEntries: 100, log: silentLogger });
    auth.start();
    let stopped = false;
    try {
      const key = newApiKey();
      await (await keysBucket(conn, { replicas: 1, create: false })).put(key.id, encodeKeyRecord(record(key.id, key.hash, ['infer'])));
      const header = `Bearer ${key.token}`;
      await authenticateCached(auth, header);

      process.kill(own.child.pid!, 'SIGSTOP');
      stopped = true;
      const stalledAt = Date.now();
      await waitFor('the mirror past its TTL', () => Date.now() > auth.mirrorTrustedUntilMs + 100 && Date.now() - stalledAt > 1_000, 10_000, 20);
      expect(auth.cached(header)).toBeUndefined();
      // Refused, or waiting on a read of the bucket that cannot come: never taken from the mirror.
      const outcome = await Promise.race([
        auth.authenticate(header).then(() => 'accepted', () => 'refused'),
        new Promise((r) => setTimeout(() => r('waiting'), 300)),
      ]);
      expect(outcome).not.toBe('accepted');
      expect(auth.mirrorTrustedUntilMs).toBeLessThan(Date.now());

      process.kill(own.child.pid!, 'SIGCONT');
      stopped = false;
      const resumedAt = Date.now();
      // The round trip in flight through the stall comes back now, far too late to prove anything;
      // the next proves the mirror as of after the stall.
      await waitFor('the mirror proven again', () => auth.mirrorTrustedUntilMs - 400 >= resumedAt, 10_000, 20);
      expect((await auth.authenticate(header)).id).toBe(key.id);
    } finally {
      if (stopped) process.kill(own.child.pid!, 'SIGCONT');
      await auth.stop();
      connLiveness.stop();
      await conn.close();
      await own.cleanup();
    }
  }, 30_000);
});

describe('JWTs', () => {
  let server: http.Server;
  let jwksUrl: string;
  let key: JoseKey;
  let strangerKey: JoseKey;
  const issuer = 'https://issuer.test';
  const audience = 'infermesh';

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256');
    key = pair.privateKey;
    strangerKey = (await generateKeyPair('ES256')).privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    server = http.createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });

  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  /** A JWT of the test issuer; `exp: null` leaves the expiry out. */
  const sign = (claims: Record<string, unknown>, opts: { iss?: string; aud?: string; exp?: number | string | null; sub?: string; signer?: JoseKey } = {}) => {
    let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuedAt().setIssuer(opts.iss ?? issuer).setAudience(opts.aud ?? audience);
    if (opts.exp !== null) jwt = jwt.setExpirationTime(opts.exp ?? '5m');
    if (opts.sub !== '') jwt = jwt.setSubject(opts.sub ?? 'alice');
    return jwt.sign(opts.signer ?? key);
  };

  it('accepts a JWT from the issuer, grants from its scope claim (foreign scopes left out)', async () => {
    const auth = authenticator({ jwt: { jwksUrl, issuer, audience } });
    const token = await sign({ scope: 'openid email infer:mnist read' });
    const p = await auth.authenticate(`Bearer ${token}`);
    expect(p).toEqual({ id: 'alice', kind: 'jwt', grants: [{ scope: 'infer', pattern: 'mnist' }, { scope: 'read', pattern: '*' }] });
    expect(auth.cached(`Bearer ${token}`)).toBe(p);
  });

  it('refuses a wrong issuer, a wrong audience, an expired one, one that never expires, a stranger\'s signature and no subject', async () => {
    const auth = authenticator({ jwt: { jwksUrl, issuer, audience } });
    const cases: [Promise<string>, string][] = [
      [sign({ scope: 'infer' }, { iss: 'https://evil.test' }), 'JWT iss claim is not accepted'],
      [sign({ scope: 'infer' }, { aud: 'other' }), 'JWT aud claim is not accepted'],
      [sign({ scope: 'infer' }, { exp: Math.floor(Date.now() / 1000) - 60 }), 'JWT expired'],
      // Nothing could revoke a JWT without an end.
      [sign({ scope: 'admin' }, { exp: null }), 'JWT exp claim is not accepted'],
      [sign({ scope: 'infer' }, { signer: strangerKey }), 'JWT signature does not verify'],
      [sign({ scope: 'infer' }, { sub: '' }), 'JWT has no subject'],
    ];
    for (const [token, why] of cases) {
      const t = await token;
      const err = await refusal(auth.authenticate(`Bearer ${t}`));
      expect(err.code).toBe(ErrorCode.Unauthenticated);
      expect(err.message).toContain(why);
      expect(err.message).not.toContain(t.split('.')[2]!);
    }
  });

  it('uses a cached JWT no longer than it is valid', async () => {
    let now = Date.now();
    const auth = authenticator({ jwt: { jwksUrl, issuer, audience }, now: () => now });
    const exp = Math.floor(now / 1000) + 30;
    const token = await sign({ scope: 'infer' }, { exp });
    await auth.authenticate(`Bearer ${token}`);
    now = exp * 1000 - 1;
    expect(auth.cached(`Bearer ${token}`)).toBeDefined();
    now = exp * 1000;
    expect(auth.cached(`Bearer ${token}`)).toBeUndefined();
  });

  it('answers UNAVAILABLE when the issuer\'s JWKS cannot be fetched', async () => {
    const auth = authenticator({ jwt: { jwksUrl: 'http://127.0.0.1:1/jwks.json', issuer, audience } });
    const err = await refusal(auth.authenticate(`Bearer ${await sign({ scope: 'infer' })}`));
    expect(err.code).toBe(ErrorCode.Unavailable);
  });
});
