// Tokens at the router, end to end: a real nats-server, registry and pod, two routers with
// INFERMESH_AUTH on, API keys written to the keys bucket as the registry writes them, and JWTs signed
// by a key from a JWKS served over HTTP. ModelInfer goes through the front door's hot path;
// metadata, statistics, the index, streams and reflection through the typed grpc-js path.
import http from 'node:http';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey as JoseKey } from 'jose';
import { encodeKeyRecord, keysBucket, newApiKey, type KeyRecord } from '../../lib/auth';
import { healthClient } from '../../lib/grpc/client';
import { protos } from '../../lib/grpc/proto';
import type { InferenceClient } from '../../lib/grpc/types';
import { heldOutDigits } from '../../tools/models/mnist-data';
import { startTestMesh, inferenceClient, unary, type TestMesh } from '../helpers/mesh';
import { startTestRouter } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import type { RouterService } from '../../services/router/router-service';

jest.setTimeout(180_000);

const digit = heldOutDigits(1)[0]!;
const pixels = Array.from(digit.pixels);
const inferRequest = (model: string) => ({ model_name: model, inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 784], contents: { fp32_contents: pixels } }] });
const ISSUER = 'https://issuer.infermesh.test';
const AUDIENCE = 'infermesh-router';

let mesh: TestMesh;
let routers: RouterService[] = [];
let clients: InferenceClient[] = [];
let nc: NatsConnection;
let keys: KV;
let jwks: http.Server;
let signingKey: JoseKey;
/** The settings of the routers under test. */
let routerEnv: Record<string, string>;
/** Every byte the router sent to the pod (the pod is reached through this relay). */
const toPod: Buffer[] = [];
let relay: net.Server;
let podPort = 0;

/** A key with `grants`, stored as the registry stores it; returns its token. */
async function makeKey(grants: string[]): Promise<{ token: string; id: string; record: KeyRecord }> {
  const k = newApiKey();
  const record: KeyRecord = { id: k.id, name: `test ${grants.join(' ')}`, hash: k.hash, grants, createdAt: new Date().toISOString(), createdBy: 'test' };
  await keys.put(k.id, encodeKeyRecord(record));
  return { token: k.token, id: k.id, record };
}

function md(token?: string, extra: Record<string, string> = {}): grpc.Metadata {
  const m = new grpc.Metadata();
  if (token !== undefined) m.set('authorization', `Bearer ${token}`);
  for (const [k, v] of Object.entries(extra)) m.set(k, v);
  return m;
}

function infer(client: InferenceClient, model: string, metadata: grpc.Metadata) {
  return unary<{ outputs: { name: string }[] }>((cb) => client.ModelInfer(inferRequest(model), metadata, { deadline: Date.now() + 20_000 }, cb));
}

async function status(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error('expected the call to fail');
}

function sign(claims: Record<string, unknown>, opts: { iss?: string; exp?: number | string } = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'test-1' }).setSubject('alice@example.com').setIssuedAt()
    .setIssuer(opts.iss ?? ISSUER).setAudience(AUDIENCE).setExpirationTime(opts.exp ?? '10m').sign(signingKey);
}

beforeAll(async () => {
  // The issuer's keys, served as an OIDC provider serves them.
  const pair = await generateKeyPair('ES256');
  signingKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'test-1', alg: 'ES256', use: 'sig' };
  jwks = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as net.AddressInfo).port}/.well-known/jwks.json`;

  // The pod behind a relay that keeps what the router sends it.
  relay = net.createServer((from) => {
    const to = net.connect(podPort, '127.0.0.1');
    from.on('data', (b) => toPod.push(Buffer.from(b)));
    from.pipe(to).pipe(from);
    const end = () => { from.destroy(); to.destroy(); };
    from.on('error', end);
    to.on('error', end);
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const relayPort = (relay.address() as net.AddressInfo).port;

  mesh = await startTestMesh();
  await mesh.push('mnist', 'mnist.onnx');
  await mesh.push('digits', 'mnist.onnx');
  nc = await connect({ servers: mesh.nats.url });
  // The registry made the bucket at its start; its writes are imitated here.
  keys = await keysBucket(nc, { replicas: 1, create: true });
  const pod = await mesh.startPod({ INFERMESH_ADVERTISE_ADDRESS: `127.0.0.1:${relayPort}` });
  podPort = pod.port;
  const env = routerEnv = {
    INFERMESH_AUTH: 'true',
    INFERMESH_AUTH_JWKS_URL: jwksUrl,
    INFERMESH_AUTH_JWT_ISSUER: ISSUER,
    INFERMESH_AUTH_JWT_AUDIENCE: AUDIENCE,
    // Long enough that only the watch of the bucket can refuse a revoked key in time.
    INFERMESH_AUTH_CACHE_TTL_MS: '600000',
  };
  routers = [await startTestRouter(mesh.nats.url, mesh.registry.port, env), await startTestRouter(mesh.nats.url, mesh.registry.port, env)];
  clients = routers.map((r) => inferenceClient(`127.0.0.1:${r.port}`));
  const admin = await makeKey(['admin']);
  for (const c of clients) {
    await waitFor('both models ready on the router', async () => {
      const ready = await Promise.all(['mnist', 'digits'].map((name) => unary<{ ready: boolean }>((cb) => c.ModelReady({ name, version: '' }, md(admin.token), cb))));
      return ready.every((r) => r.ready);
    }, 60_000);
  }
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(routers.map((r) => r.shutdown(5_000)));
  await nc?.close();
  await mesh?.close();
  relay?.close();
  jwks?.close();
});

describe('API keys at the router', () => {
  it('lets a token with infer on the model infer, through the front door', async () => {
    const { token } = await makeKey(['infer:mnist']);
    const res = await infer(clients[0]!, 'mnist', md(token));
    expect(res.outputs.map((o) => o.name)).toContain('probabilities');
  });

  it('refuses a call without a token UNAUTHENTICATED, on both paths', async () => {
    const err = await status(infer(clients[0]!, 'mnist', md()));
    expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(err.details).toContain('missing credentials');
    const meta = await status(unary((cb) => clients[0]!.ModelMetadata({ name: 'mnist', version: '' }, md(), cb)));
    expect(meta.code).toBe(grpc.status.UNAUTHENTICATED);
    const live = await status(unary((cb) => clients[0]!.ServerLive({}, md(), cb)));
    expect(live.code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('refuses a bad token UNAUTHENTICATED without repeating it', async () => {
    const real = await makeKey(['infer']);
    const unknown = newApiKey().token;
    const wrongSecret = `imk_${real.id}_${newApiKey().secret}`;
    for (const token of [unknown, wrongSecret, 'not-a-token-s3cr3t', `${real.token}x`]) {
      for (const call of [
        () => infer(clients[0]!, 'mnist', md(token)),
        () => unary((cb) => clients[0]!.ModelMetadata({ name: 'mnist', version: '' }, md(token), cb)),
      ]) {
        const err = await status(call());
        expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
        expect(err.details).not.toContain(token.slice(4));
        expect(err.details).not.toContain('s3cr3t');
      }
    }
  });

  it('refuses a token scoped to another model PERMISSION_DENIED, naming the scope and the model', async () => {
    const { token } = await makeKey(['infer:digits', 'read:digits']);
    const err = await status(infer(clients[0]!, 'mnist', md(token)));
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err.details).toBe("the caller has no 'infer' scope for model 'mnist'");
    const meta = await status(unary((cb) => clients[0]!.ModelMetadata({ name: 'mnist', version: '' }, md(token), cb)));
    expect(meta.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(meta.details).toBe("the caller has no 'read' scope for model 'mnist'");
    // Its own model it may use.
    await infer(clients[0]!, 'digits', md(token));
  });

  it('never runs a model the caller may not use, however the request writes its name: a tag the pod would read as model_name is refused', async () => {
    const { token } = await makeKey(['infer:digits', 'read:digits']);
    const mine = protos().inference.GRPCInferenceService.service.ModelInfer.requestSerialize(inferRequest('digits'));
    const victim = Buffer.from('mnist');
    // model_name again after the request, under tag 2^32 + 10 (protobufjs keeps the low 32 bits:
    // field 1) and under tag 10 written in 7 bytes (protobufjs reads 10 of them).
    const tricks = [[0x8a, 0x80, 0x80, 0x80, 0x10], [0x8a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]];
    const c = new grpc.Client(`127.0.0.1:${routers[0]!.port}`, grpc.credentials.createInsecure());
    try {
      for (const [trick, problem] of [[tricks[0]!, 'a tag above 32 bits'], [tricks[1]!, 'a tag is a varint of 7 bytes']] as const) {
        const bytes = Buffer.concat([mine, Buffer.from(trick), Buffer.from([victim.length]), victim]);
        const err = await status(new Promise((resolve, reject) => {
          c.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', (b: Buffer) => b, (b: Buffer) => b, bytes, md(token), { deadline: Date.now() + 20_000 }, (e, r) => (e ? reject(e) : resolve(r)));
        }));
        expect([err.code, err.details]).toEqual([grpc.status.INVALID_ARGUMENT, `malformed request: ${problem}`]);
      }
    } finally {
      c.close();
    }
  });

  it('lets a read-only token read metadata, readiness and statistics, but not infer (unary or streamed)', async () => {
    const { token } = await makeKey(['read:mnist']);
    const meta = await unary<{ name: string }>((cb) => clients[0]!.ModelMetadata({ name: 'mnist', version: '' }, md(token), cb));
    expect(meta.name).toBe('mnist');
    expect((await unary<{ ready: boolean }>((cb) => clients[0]!.ModelReady({ name: 'mnist', version: '' }, md(token), cb))).ready).toBe(true);
    await unary((cb) => clients[0]!.ModelStatistics({ name: 'mnist', version: '' }, md(token), cb));
    await unary((cb) => clients[0]!.ServerMetadata({}, md(token), cb));
    const err = await status(infer(clients[0]!, 'mnist', md(token)));
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err.details).toBe("the caller has no 'infer' scope for model 'mnist'");

    const stream = clients[0]!.ModelStreamInfer(md(token));
    const answers: { error_message: string }[] = [];
    stream.on('data', (a: { error_message: string }) => answers.push(a));
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    stream.write(inferRequest('mnist'));
    stream.end();
    await ended;
    expect(answers.map((a) => a.error_message)).toEqual(["the caller has no 'infer' scope for model 'mnist'"]);
  });

  it('lists only the models a token may read', async () => {
    const { token } = await makeKey(['read:mnist', 'infer']);
    const index = await unary<{ models: { name: string }[] }>((cb) => clients[0]!.RepositoryIndex({ repository_name: '', ready: false }, md(token), cb));
    expect(new Set(index.models.map((m) => m.name))).toEqual(new Set(['mnist']));
    await infer(clients[0]!, 'digits', md(token));
    const stats = await unary<{ model_stats: { name: string }[] }>((cb) => clients[0]!.ModelStatistics({ name: '', version: '' }, md(token), cb));
    expect(stats.model_stats.length).toBeGreaterThan(0);
    expect(new Set(stats.model_stats.map((s) => s.name))).toEqual(new Set(['mnist']));
  });

  it('refuses a revoked key on both routers within 2 s', async () => {
    const { token, id, record } = await makeKey(['infer:mnist']);
    // Both routers know (and have cached) the key.
    for (const c of clients) {
      await infer(c, 'mnist', md(token));
      await infer(c, 'mnist', md(token));
    }
    const revoked = Date.now();
    await keys.put(id, encodeKeyRecord({ ...record, revokedAt: new Date().toISOString() }));
    const refusedAfter = await Promise.all(clients.map(async (c) => {
      const code = await waitFor('the revoked key to be refused', async () => {
        const err = await status(infer(c, 'mnist', md(token))).catch(() => undefined);
        return err?.code === grpc.status.UNAUTHENTICATED ? err : undefined;
      }, 10_000, 20);
      expect(code.details).toBe(`API key ${id} was revoked`);
      return Date.now() - revoked;
    }));
    for (const ms of refusedAfter) expect(ms).toBeLessThan(2_000);
  });

  it('sends no pod a stream\'s request whose key check was pending when the stream was cancelled', async () => {
    // A router whose NATS connection runs through a relay this test can stop: the key check of a
    // request that finds its token no longer cached reads the bucket, and waits while it is stopped.
    const nats = new URL(mesh.nats.url);
    const held: (() => void)[] = [];
    let stopped = false;
    const pipes = net.createServer((from) => {
      const to = net.connect(Number(nats.port), nats.hostname);
      const pass = (src: net.Socket, dst: net.Socket) => src.on('data', (b) => (stopped ? held.push(() => dst.write(b)) : dst.write(b)));
      pass(from, to);
      pass(to, from);
      const end = () => { from.destroy(); to.destroy(); };
      from.on('error', end);
      to.on('error', end);
      from.on('close', end);
      to.on('close', end);
    });
    await new Promise<void>((r) => pipes.listen(0, '127.0.0.1', r));
    const ttlMs = 300;
    const router = await startTestRouter(`nats://127.0.0.1:${(pipes.address() as net.AddressInfo).port}`, mesh.registry.port, {
      ...routerEnv,
      INFERMESH_AUTH_CACHE_TTL_MS: String(ttlMs),
      // The pods stay in its view while its NATS is stopped.
      INFERMESH_POD_TTL_MS: '60000',
    });
    const client = inferenceClient(`127.0.0.1:${router.port}`);
    const resume = () => {
      stopped = false;
      for (const write of held.splice(0)) write();
    };
    try {
      const { token } = await makeKey(['infer:digits', 'read:digits']);
      await waitFor('digits ready on the new router', async () => (await unary<{ ready: boolean }>((cb) => client.ModelReady({ name: 'digits', version: '' }, md(token), cb))).ready, 60_000);
      const inferences = async () => {
        const stats = await unary<{ model_stats: { inference_count: string }[] }>((cb) => clients[0]!.ModelStatistics({ name: 'digits', version: '' }, md(token), cb));
        return stats.model_stats.reduce((n, st) => n + Number(st.inference_count), 0);
      };
      const stream = client.ModelStreamInfer(md(token));
      const answers: { error_message: string }[] = [];
      stream.on('data', (a: { error_message: string }) => answers.push(a));
      const ended = new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
      stream.write(inferRequest('digits'));
      await waitFor('the first request answered', async () => answers.length === 1, 20_000, 20);
      expect(answers[0]!.error_message).toBe('');
      const before = await inferences();
      // NATS stopped past the TTL: the token is no longer trusted from the cache, and its next check reads the bucket.
      stopped = true;
      await new Promise((r) => setTimeout(r, 3 * ttlMs));
      stream.write(inferRequest('digits'));
      await new Promise((r) => setTimeout(r, 200));
      stream.cancel();
      expect((await ended).code).toBe(grpc.status.CANCELLED);
      // The cancel reaches the router's handler (through its door, some milliseconds) before the check ends.
      await new Promise((r) => setTimeout(r, 500));
      resume();
      // The check passes now (the key is good): a request that went on would have run by then.
      await waitFor('a new request through the router', async () => (await infer(client, 'digits', md(token))).outputs.length > 0, 10_000, 50);
      await new Promise((r) => setTimeout(r, 300));
      expect(await inferences()).toBe(before + 1);
    } finally {
      resume();
      client.close();
      await router.shutdown(5_000);
      pipes.close();
    }
  });

  it('keeps health checks open', async () => {
    const h = healthClient(`127.0.0.1:${routers[0]!.port}`);
    try {
      const res = await unary<{ status: string }>((cb) => h.Check({ service: '' }, cb));
      expect(res.status).toBe('SERVING');
    } finally {
      h.close();
    }
  });

  it('refuses reflection without a token', async () => {
    const c = new grpc.Client(`127.0.0.1:${routers[0]!.port}`, grpc.credentials.createInsecure());
    try {
      const call = c.makeBidiStreamRequest('/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', (b: Buffer) => b, (b: Buffer) => b, new grpc.Metadata());
      const err = await new Promise<grpc.ServiceError>((resolve) => {
        call.on('data', () => undefined);
        call.on('error', resolve);
        call.on('end', () => resolve({ code: grpc.status.OK } as grpc.ServiceError));
        call.write(Buffer.from([0x3a, 0x00])); // list_services: ""
        call.end();
      });
      expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      c.close();
    }
  });

  it('never passes the client\'s token on to the pod', async () => {
    const { token } = await makeKey(['infer:mnist']);
    const probe = `probe-${Date.now()}`;
    const before = toPod.length;
    await infer(clients[0]!, 'mnist', md(token, { 'x-probe': probe }));
    const sent = Buffer.concat(toPod.slice(before)).toString('latin1');
    // The pod got the call with the client's other headers, as they came...
    expect(sent).toContain(probe);
    // ...but not the token.
    expect(sent).not.toContain(token.slice(4));
    expect(sent).not.toContain('authorization');
  });
});

describe('JWTs at the router', () => {
  it('accepts a JWT signed with a key of the issuer\'s JWKS', async () => {
    const token = await sign({ scope: 'openid infer:mnist' });
    const res = await infer(clients[0]!, 'mnist', md(token));
    expect(res.outputs.length).toBeGreaterThan(0);
    const err = await status(infer(clients[0]!, 'digits', md(token)));
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
  });

  it('refuses a JWT from another issuer, or expired', async () => {
    for (const [token, why] of [
      [await sign({ scope: 'infer' }, { iss: 'https://attacker.test' }), 'iss claim is not accepted'],
      [await sign({ scope: 'infer' }, { exp: Math.floor(Date.now() / 1000) - 60 }), 'JWT expired'],
    ] as const) {
      const err = await status(infer(clients[0]!, 'mnist', md(token)));
      expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(err.details).toContain(why);
      expect(err.details).not.toContain(token.split('.')[2]!);
    }
  });
});
