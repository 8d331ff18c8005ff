// The web console's door on a real registry and nats-server: the page and its assets with their
// security headers; the JSON API cut to what each token may read; rollout actions checked with the
// API's scopes (a read-only key is PERMISSION_DENIED naming the scope and model) and done as the
// gRPC API does them; hostile requests (a name that is no model name, a body too large, not JSON,
// not an action, a page that opens too many live streams or stops reading) get a clear status and
// change nothing; a live stream carries events, closed analysis windows and the pods, each only to
// a caller who may read them. Also ListPods over gRPC, from the pods' heartbeats.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { RegistryApi, RolloutApi } from '../../client/index';
import { newApiKey } from '../../lib/auth/api-keys';
import { encodeHeartbeat, subjects, type Heartbeat } from '../../lib/events';
import { emptyWindow, encodeWindowReport, windowSubject } from '../../lib/window-stats';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { bootstrapAuthEnv, startTestRegistry } from '../helpers/services';
import { modelPath } from '../helpers/models';
import { waitFor } from '../helpers/wait';
import type { RegistryService } from '../../services/registry/registry-service';

jest.setTimeout(60_000);

const WINDOW_MS = 200;
const MAX_BODY = 4096;
const MAX_STREAMS = 4;
const STREAM_BUFFER = 64 * 1024;
const EVENT_BYTES = 256 * 1024;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: () => Record<string, unknown>;
}

describe('the web console\'s door', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  let nc: NatsConnection;
  let service: RegistryService;
  let dir: string;
  let base: string;
  const bootstrap = newApiKey();
  let admin: RegistryApi;
  let reader: string;
  let readerOfOther: string;
  let roller: string;
  const opened: { close(): void }[] = [];

  /** One request to the console; `token` as a Bearer header. */
  const call = (method: string, p: string, opts: { token?: string; body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = http.request(`${base}${p}`, {
        method,
        headers: { ...(opts.token && { authorization: `Bearer ${opts.token}` }), ...opts.headers },
      }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          const body = Buffer.concat(parts).toString('utf8');
          resolve({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body) as Record<string, unknown> });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(opts.body);
    });
  const act = (model: string, body: unknown, token?: string) =>
    call('POST', `/api/models/${model}/rollout`, { token, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

  /** A live stream: the messages it got so far, and how to close it. */
  const openLive = (query: string, token?: string) => new Promise<{ status: number; messages: { kind: string; data: Record<string, unknown> }[]; close(): void; res: http.IncomingMessage }>((resolve, reject) => {
    const req = http.get(`${base}/api/live?${query}`, { headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      const messages: { kind: string; data: Record<string, unknown> }[] = [];
      let buffered = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const kind = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (kind && data) messages.push({ kind, data: JSON.parse(data) as Record<string, unknown> });
        }
      });
      res.on('error', () => undefined);
      resolve({ status: res.statusCode!, messages, close: () => req.destroy(), res });
    });
    req.on('error', reject);
  });

  const heartbeat = (pod: string, models: Heartbeat['models'], state: Heartbeat['state'] = 'serving'): void =>
    nc.publish(subjects.heartbeat, encodeHeartbeat({ schema: 1, pod, address: `127.0.0.1:${pod === 'pod-a' ? 1111 : 2222}`, state, models, inflight: 3, time: new Date().toISOString() }));

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-console-'));
    const auth = bootstrapAuthEnv(dir, bootstrap.token);
    nats = await startTestNats();
    nc = await connect({ servers: nats.url });
    service = await startTestRegistry(nats.url, {
      ...auth,
      INFERMESH_ANALYSIS_WINDOW_MS: String(WINDOW_MS),
      INFERMESH_CONSOLE_MAX_BODY_BYTES: String(MAX_BODY),
      INFERMESH_CONSOLE_MAX_STREAMS: String(MAX_STREAMS),
      INFERMESH_CONSOLE_MAX_STREAMS_PER_CALLER: '2',
      INFERMESH_CONSOLE_EVENTS_KEPT_BYTES: String(EVENT_BYTES),
      INFERMESH_WATCH_RECHECK_MS: '200',
      INFERMESH_CONSOLE_MAX_STREAM_BUFFER_BYTES: String(STREAM_BUFFER),
    });
    base = `http://127.0.0.1:${service.consolePort}`;
    admin = new RegistryApi(`127.0.0.1:${service.port}`, { token: bootstrap.token });
    opened.push(admin);
    await admin.push('shown', modelPath('fixtures/add_sub_fp32.onnx'));
    await admin.push('shown', modelPath('fixtures/add_sub_fp32.onnx'));
    await admin.push('hidden', modelPath('fixtures/identity_fp32.onnx'));
    reader = (await admin.createKey('reader', ['read:shown'])).token;
    readerOfOther = (await admin.createKey('other', ['read:hidden'])).token;
    roller = (await admin.createKey('roller', ['read:shown', 'rollout:shown'])).token;
  });

  afterAll(async () => {
    for (const c of opened) c.close();
    await nc?.close();
    await service?.shutdown(5_000);
    await nats?.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page on its routes and its assets, with a content security policy and no caching', async () => {
    for (const p of ['/', '/models', '/models/shown', '/pods', '/events']) {
      const page = await call('GET', p);
      expect(page.status).toBe(200);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.body).toContain('<script src="/assets/app.js" type="module"></script>');
      expect(page.headers['content-security-policy']).toContain("script-src 'self'");
      expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(page.headers['x-content-type-options']).toBe('nosniff');
    }
    const js = await call('GET', '/assets/app.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.body).toContain('/api/live');
    expect((await call('GET', '/assets/uPlot.iife.min.js')).body).toContain('uPlot');
    // Nothing else is served from disk: no path reaches a file that is not one of the assets.
    for (const p of ['/assets/../index.html', '/assets/%2e%2e/app.js', '/../package.json', '/assets/app.ts', '/models/a/b']) {
      expect((await call('GET', p)).status).toBe(404);
    }
  });

  it('answers the API only to a caller with a token, and shows each only the models it may read', async () => {
    const anonymous = await call('GET', '/api/models');
    expect(anonymous.status).toBe(401);
    expect(anonymous.json().error).toMatch(/token/i);
    const stranger = newApiKey();
    const refused = await call('GET', '/api/models', { token: stranger.token });
    expect(refused.status).toBe(401);
    expect(refused.body).not.toContain(stranger.secret);

    const names = async (token: string) => ((await call('GET', '/api/models', { token })).json().models as { model: { name: string } }[]).map((m) => m.model.name).sort();
    expect(await names(bootstrap.token)).toEqual(['hidden', 'shown']);
    expect(await names(reader)).toEqual(['shown']);
    expect(await names(readerOfOther)).toEqual(['hidden']);

    const one = (await call('GET', '/api/models/shown', { token: reader })).json();
    expect(one).toMatchObject({ model: { name: 'shown', latest_version: 2, traffic: [{ version: 1, weight: 100 }] }, window_ms: WINDOW_MS, may: { rollout: false } });
    expect((one.versions as { version: number }[]).map((v) => v.version)).toEqual([1, 2]);
    expect((await call('GET', '/api/models/shown', { token: roller })).json().may).toEqual({ rollout: true });
    const denied = await call('GET', '/api/models/hidden', { token: reader });
    expect(denied.status).toBe(403);
    expect(denied.json().error).toMatch(/read.*hidden/);
    expect((await call('GET', '/api/models/missing', { token: bootstrap.token })).status).toBe(404);
    // A model filter that is no model name is refused without being repeated.
    const badFilter = await call('GET', `/api/events?model=${encodeURIComponent('../<script>')}`, { token: bootstrap.token });
    expect(badFilter.status).toBe(400);
    expect(badFilter.body).not.toContain('<script>');
    // The recent events: only those of readable models; key events only for admins.
    const events = (await call('GET', '/api/events', { token: reader })).json().events as { event: { model: string; type: string } }[];
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.event.model === 'shown')).toBe(true);
    const adminEvents = (await call('GET', '/api/events', { token: bootstrap.token })).json().events as { event: { type: string } }[];
    expect(adminEvents.some((e) => e.event.type === 'key.created')).toBe(true);
    expect((await call('GET', '/api/session', { token: roller })).json().principal).toMatch(/^key:[0-9a-f]{16}$/);
  });

  it('refuses hostile requests with a clear status and changes nothing', async () => {
    const before = (await call('GET', '/api/models/shown', { token: bootstrap.token })).json().rollout;
    const huge = 'x'.repeat(100_000);
    // A path that is no model name is refused without being echoed.
    const bad = await call('GET', `/api/models/${encodeURIComponent(`../${'x'.repeat(4000)}`)}`, { token: bootstrap.token });
    expect(bad.status).toBe(400);
    expect(bad.body.length).toBeLessThan(300);
    // Past the header limit (INFERMESH_HTTP_MAX_HEADER_BYTES, as the REST door): 431.
    expect((await call('GET', `/api/models/${huge}`, { token: bootstrap.token })).status).toBe(431);
    expect((await call('GET', '/api/models/%E0%A4%A', { token: bootstrap.token })).status).toBe(400);
    // Actions: JSON only, within the body limit, well formed.
    expect((await call('POST', '/api/models/shown/rollout', { token: bootstrap.token, body: '{"action":"promote"}', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    // Too large: as declared (answered before any of it is read), and as it arrives (chunked).
    const declared = await call('POST', '/api/models/shown/rollout', { token: bootstrap.token, headers: { 'content-type': 'application/json', 'content-length': String(10 * 1024 * 1024) } });
    expect(declared.status).toBe(413);
    expect(declared.json().error).toContain('INFERMESH_CONSOLE_MAX_BODY_BYTES');
    const arriving = await call('POST', '/api/models/shown/rollout', { token: bootstrap.token, body: JSON.stringify({ action: 'start', version: 2, reason: 'r'.repeat(MAX_BODY) }), headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } });
    expect(arriving.status).toBe(413);
    expect((await call('POST', '/api/models/shown/rollout', { token: bootstrap.token, body: '{"action":', headers: { 'content-type': 'application/json' } })).status).toBe(400);
    // A reason that is not UTF-8 is refused, not recorded with U+FFFD in its place.
    const notUtf8 = await call('POST', '/api/models/shown/rollout', { token: bootstrap.token, body: Buffer.concat([Buffer.from('{"action":"pause","reason":"caf'), Buffer.from([0xc3]), Buffer.from('"}')]), headers: { 'content-type': 'application/json' } });
    expect(notUtf8.status).toBe(400);
    expect(notUtf8.json().error).toMatch(/not valid UTF-8/);
    for (const [body, message] of [
      [[], /JSON object/], [{ action: 'explode' }, /"action" must be one of/], [{ action: 'start', version: -1 }, /"version"/],
      [{ action: 'weight', weight: 101 }, /"weight"/], [{ action: 'start', version: 2, steps: 'all' }, /"steps"/], [{ action: 'start', version: 2, automatic: 'yes' }, /"automatic"/],
      [{ action: 'start' }, /needs "version"/], [{ action: 'rollback', reason: 7 }, /"reason"/],
    ] as const) {
      const res = await act('shown', body, bootstrap.token);
      expect(res.status).toBe(400);
      expect(res.json().error).toMatch(message);
    }
    // Methods and paths the API does not have.
    // A 405 names the method the path takes.
    const notAllowed = await Promise.all([call('DELETE', '/api/models/shown', { token: bootstrap.token }), call('GET', '/api/models/shown/rollout', { token: bootstrap.token })]);
    expect(notAllowed.map((a) => [a.status, a.headers.allow])).toEqual([[405, 'GET'], [405, 'POST']]);
    expect((await call('GET', '/api/nothing', { token: bootstrap.token })).status).toBe(404);
    expect((await call('GET', '/api/models/shown', { token: bootstrap.token })).json().rollout).toEqual(before);
  });

  it('does rollout actions with the API\'s scopes: a reader is refused naming the scope, a roller starts and rolls back', async () => {
    const refused = await act('shown', { action: 'start', version: 2, weight: 20 }, reader);
    expect(refused.status).toBe(403);
    expect(refused.json().error).toMatch(/rollout.*shown/);
    expect((await act('hidden', { action: 'start', version: 1 }, roller)).status).toBe(403);
    expect((await call('GET', '/api/models/shown', { token: reader })).json().rollout).toMatchObject({ rollout: null });

    const started = await act('shown', { action: 'start', version: 2, weight: 20 }, roller);
    expect(started.status).toBe(200);
    expect(started.json()).toMatchObject({ model: 'shown', traffic: [{ version: 1, weight: 80 }, { version: 2, weight: 20 }], rollout: { stable: 1, canary: 2, weight: 20, phase: 'progressing' } });
    // The same rollout as the gRPC API sees it.
    const rollouts = new RolloutApi(`127.0.0.1:${service.port}`, { token: bootstrap.token });
    opened.push(rollouts);
    expect((await rollouts.status('shown')).rollout).toMatchObject({ canary: 2, weight: 20 });
    expect((await act('shown', { action: 'start', version: 2 }, roller)).status).toBe(400); // FAILED_PRECONDITION: one at a time
    expect((await act('shown', { action: 'weight', weight: 40 }, roller)).json()).toMatchObject({ rollout: { weight: 40 } });
    const back = await act('shown', { action: 'rollback', reason: 'console test: canary looked wrong' }, roller);
    expect(back.json()).toMatchObject({ traffic: [{ version: 1, weight: 100 }], rollout: { phase: 'rolled_back', reason: 'console test: canary looked wrong' } });
    // The event names the key that acted, and carries the reason.
    await waitFor('the rollback event', async () => {
      const events = (await call('GET', '/api/events?model=shown', { token: reader })).json().events as { event: Record<string, unknown> }[];
      return events.some((e) => e.event.type === 'rollout.changed' && e.event.action === 'rolled_back' && e.event.reason === 'console test: canary looked wrong' && String(e.event.principal).startsWith('key:'));
    }, 10_000);
  });

  it('streams events, closed windows and pods live, each only to a caller who may read them', async () => {
    const mine = await openLive('topics=event,window,pods', reader);
    const other = await openLive('topics=event,window', readerOfOther);
    try {
      expect(mine.status).toBe(200);
      expect(mine.res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      // A window of each model, as routers report them: merged, closed, then pushed.
      const start = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS;
      for (const model of ['shown', 'hidden']) {
        const w = { ...emptyWindow(1), requests: 50, errors: 5 };
        w.latency[3] = 45;
        nc.publish(windowSubject(model), encodeWindowReport({ schema: 1, router: 'r1', model, windowStart: start, windowMs: WINDOW_MS, versions: [w] }));
      }
      await admin.updateModel('shown', { description: 'seen live' });
      heartbeat('pod-a', [{ name: 'shown', version: 1, state: 'READY', provider: 'cpu' }, { name: 'hidden', version: 1, state: 'LOADING', provider: 'cpu' }]);
      await waitFor('the live messages', async () => mine.messages.some((m) => m.kind === 'window') && mine.messages.some((m) => m.kind === 'event') && mine.messages.some((m) => m.kind === 'pods'), 10_000);
      const window = mine.messages.find((m) => m.kind === 'window')!.data as { model: string; point: { ms: number; versions: Record<string, number>[] } };
      expect(window.model).toBe('shown');
      expect(window.point.ms).toBe(WINDOW_MS);
      expect(window.point.versions[0]).toMatchObject({ version: 1, requests: 50, errors: 5, error_rate: 0.1, rps: 50 / (WINDOW_MS / 1000) });
      expect(mine.messages.filter((m) => m.kind === 'window').every((m) => m.data.model === 'shown')).toBe(true);
      expect(mine.messages.filter((m) => m.kind === 'event').every((m) => (m.data.event as { model: string }).model === 'shown')).toBe(true);
      const pods = mine.messages.filter((m) => m.kind === 'pods').pop()!.data.pods as { name: string; versions: { model: string }[]; inflight: number }[];
      expect(pods.find((p) => p.name === 'pod-a')).toMatchObject({ inflight: 3, versions: [{ model: 'shown', version: 1, state: 'READY', provider: 'cpu' }] });
      await waitFor('the other window', async () => other.messages.some((m) => m.kind === 'window'), 10_000);
      expect(other.messages.every((m) => m.kind !== 'pods')).toBe(true);
      expect(other.messages.filter((m) => m.kind !== 'pods').every((m) => (m.kind === 'window' ? m.data.model : (m.data.event as { model: string }).model) === 'hidden')).toBe(true);
      // The model page keeps the window for pages that open later.
      expect(((await call('GET', '/api/models/shown', { token: reader })).json().windows as unknown[]).length).toBeGreaterThan(0);
    } finally {
      mine.close();
      other.close();
    }
    expect((await openLive('model=hidden', reader)).status).toBe(403);
    expect((await openLive('topics=event')).status).toBe(401);
  });

  it('serves at most INFERMESH_CONSOLE_MAX_STREAMS live pages, and drops one that does not read', async () => {
    // A page that stops reading: a client with a 4 KiB receive buffer (no window to grow into) that
    // reads the answer's head and nothing after, while events pile up past what the door lets wait.
    const stalled = spawn('python3', ['-c', `
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(('127.0.0.1', ${service.consolePort}))
s.sendall(b'GET /api/live?topics=event HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer ${bootstrap.token}\\r\\n\\r\\n')
print(s.recv(64).decode().split('\\r\\n')[0], flush=True)
time.sleep(60)
`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const streams: Awaited<ReturnType<typeof openLive>>[] = [];
    try {
      const head = await new Promise<string>((resolve) => stalled.stdout.once('data', (d: Buffer) => resolve(d.toString())));
      expect(head).toContain('200');
      // Two callers more fill the door (each may hold two).
      streams.push(...await Promise.all([bootstrap.token, roller, roller].map((t) => openLive('topics=event,pods', t))));
      expect(streams.map((s) => s.status)).toEqual([200, 200, 200]);
      const refused = await call('GET', '/api/live', { token: reader });
      expect(refused.status).toBe(503);
      expect(refused.json().error).toContain('INFERMESH_CONSOLE_MAX_STREAMS');
      let free = false;
      for (let i = 0; i < 400 && !free; i++) {
        await admin.updateModel('shown', { description: `${'d'.repeat(STREAM_BUFFER / 2)} ${i}` });
        if (i % 10 === 9) {
          const again = await openLive('topics=event', reader);
          again.close();
          free = again.status === 200;
        }
      }
      expect(free).toBe(true);
      // The pages that read are still open, and got every event.
      expect(streams.every((s) => !s.res.destroyed)).toBe(true);
    } finally {
      stalled.kill();
      for (const s of streams) s.close();
    }
  });

  it('keeps each caller to INFERMESH_CONSOLE_MAX_STREAMS_PER_CALLER live pages, refuses unknown topics and callers that read nothing', async () => {
    const mine = await Promise.all([openLive('topics=event', reader), openLive('topics=window', reader)]);
    try {
      expect(mine.map((s) => s.status)).toEqual([200, 200]);
      const third = await call('GET', '/api/live?topics=event', { token: reader });
      expect(third.status).toBe(429);
      expect(third.json().error).toContain('INFERMESH_CONSOLE_MAX_STREAMS_PER_CALLER');
    } finally {
      for (const s of mine) s.close();
    }
    for (const topics of ['', 'nothing', 'event,secrets']) {
      const res = await call('GET', `/api/live?topics=${topics}`, { token: reader });
      expect(res.status).toBe(400);
      expect(res.json().error).toMatch(/"topics"/);
    }
    // A key that may only infer reads no model: no pods, no stream of everything.
    const inferOnly = (await admin.createKey('infer-only', ['infer:shown'])).token;
    for (const p of ['/api/pods', '/api/live?topics=pods']) {
      const res = await call('GET', p, { token: inferOnly });
      expect(res.status).toBe(403);
      expect(res.json().error).toMatch(/read scope/);
    }
  });

  it('ends a live stream when its key is revoked', async () => {
    const { token, key } = await admin.createKey('short-lived', ['read:shown']);
    const stream = await openLive('topics=event', token);
    expect(stream.status).toBe(200);
    const ended = new Promise<void>((resolve) => stream.res.once('end', () => resolve()));
    await admin.revokeKey(key.id);
    await ended;
    expect((await call('GET', '/api/models', { token })).status).toBe(401);
  });

  it('answers a request line that is no URL 400 and keeps serving; refuses an action from another site\'s page', async () => {
    for (const line of ['GET //[/ HTTP/1.1', 'GET http://a:99999/ HTTP/1.1', 'GET * HTTP/1.1']) {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(service.consolePort!, '127.0.0.1', () => socket.end(`${line}\r\nHost: 127.0.0.1\r\n\r\n`));
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString()));
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 (400|404)/);
    }
    expect((await call('GET', '/api/session', { token: reader })).status).toBe(200);
    const forged = await call('POST', '/api/models/shown/rollout', { token: roller, body: '{"action":"pause"}', headers: { 'content-type': 'application/json', origin: 'https://attacker.example' } });
    expect(forged.status).toBe(403);
    expect(forged.json().error).toMatch(/Origin/);
    expect((await call('GET', '/api/models/shown', { token: reader })).json().rollout).toMatchObject({ rollout: { phase: 'rolled_back' } });
  });

  it('keeps recent events within INFERMESH_CONSOLE_EVENTS_KEPT_BYTES, dropping the oldest', async () => {
    for (let i = 0; i < 12; i++) await admin.updateModel('shown', { description: `${'e'.repeat(40 * 1024)} ${i}` });
    await waitFor('the last update kept', async () => {
      const events = (await call('GET', '/api/events', { token: bootstrap.token })).json().events as { event: { description?: string } }[];
      return events.some((e) => e.event.description?.endsWith(' 11'));
    }, 10_000);
    const events = (await call('GET', '/api/events', { token: bootstrap.token })).json().events as { event: unknown }[];
    const bytes = events.reduce((n, e) => n + JSON.stringify(e.event).length, 0);
    expect(bytes).toBeLessThanOrEqual(EVENT_BYTES);
    expect(bytes).toBeGreaterThan(EVENT_BYTES / 2);
  });

  it('lists pods over gRPC from their heartbeats, with the versions of models the caller may read, and forgets a stopped one', async () => {
    heartbeat('pod-b', [{ name: 'hidden', version: 1, state: 'READY', provider: 'cpu' }]);
    const asReader = new RegistryApi(`127.0.0.1:${service.port}`, { token: reader });
    opened.push(asReader);
    await waitFor('pod-b', async () => (await admin.pods()).some((p) => p.name === 'pod-b'), 10_000);
    const all = await admin.pods();
    expect(all.find((p) => p.name === 'pod-b')).toMatchObject({ address: '127.0.0.1:2222', state: 'serving', inflight: 3, versions: [{ model: 'hidden', version: 1, state: 'READY' }] });
    expect((await asReader.pods()).find((p) => p.name === 'pod-b')!.versions).toEqual([]);
    heartbeat('pod-b', [], 'stopped');
    await waitFor('pod-b to be forgotten', async () => !(await admin.pods()).some((p) => p.name === 'pod-b'), 10_000);
    // A malformed heartbeat changes nothing.
    nc.publish(subjects.heartbeat, new TextEncoder().encode('{"schema":1,"pod":"x"'));
    await expect(new RegistryApi(`127.0.0.1:${service.port}`).pods()).rejects.toMatchObject({ code: 'Unauthenticated' });
  });
});
