// An HTTP door on a port browsers refuse (lib/fetch-ports.ts): the registry's console and the
// router's REST door still listen there and serve plain HTTP clients, and each says in its log that
// no page or fetch() can reach it; on other ports they say nothing of the kind.
import http from 'node:http';
import { portTaken } from '../../cli/local-mesh/free-port';
import type { RegistryService } from '../../services/registry/registry-service';
import type { RouterService } from '../../services/router/router-service';
import { startTestNats } from '../helpers/nats';
import { recentLogger, startTestRegistry, startTestRouter } from '../helpers/services';

/** Status of a plain HTTP GET (node:http, which, like curl, has no bad-port list). */
function plainGet(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

const warnings = (lines: string[]) => lines.map((l) => JSON.parse(l) as { level: string; msg: string; port?: number }).filter((l) => l.level === 'warn' && /Fetch standard bad port/.test(l.msg));

describe('HTTP doors on ports browsers refuse', () => {
  let nats: Awaited<ReturnType<typeof startTestNats>>;
  const services: (RegistryService | RouterService)[] = [];

  beforeAll(async () => {
    nats = await startTestNats();
  });
  afterAll(async () => {
    for (const s of services.reverse()) await s.shutdown(5_000);
    await nats?.cleanup();
  });

  it('the console on 10080 and the REST door on 6666 serve plain HTTP and warn that pages cannot reach them', async () => {
    // Both ports are bad ports no test draws (freePort steps over them), so free here.
    expect(await portTaken(10_080)).toBe(false);
    expect(await portTaken(6_666)).toBe(false);
    const registryLog = recentLogger('registry');
    const registry = await startTestRegistry(nats.url, { INFERMESH_CONSOLE_PORT: '10080' }, registryLog.logger);
    services.push(registry);
    const routerLog = recentLogger('router');
    const router = await startTestRouter(nats.url, registry.port, { INFERMESH_ROUTER_HTTP_PORT: '6666' }, routerLog.logger);
    services.push(router);

    expect(registry.consolePort).toBe(10_080);
    expect(router.httpPort).toBe(6_666);
    expect(await plainGet(10_080, '/')).toBe(200);
    expect(await plainGet(6_666, '/v2/health/live')).toBe(200);
    await expect(fetch('http://127.0.0.1:10080/')).rejects.toMatchObject({ cause: expect.objectContaining({ message: 'bad port' }) });

    expect(warnings(registryLog.lines)).toEqual([expect.objectContaining({ port: 10_080, msg: expect.stringContaining('the console is on port 10080') })]);
    expect(warnings(routerLog.lines)).toEqual([expect.objectContaining({ port: 6_666, msg: expect.stringContaining('the HTTP/REST door is on port 6666') })]);
  });

  it('on a port fetch reaches, no such warning', async () => {
    const registryLog = recentLogger('registry');
    const registry = await startTestRegistry(nats.url, {}, registryLog.logger);
    services.push(registry);
    const routerLog = recentLogger('router');
    const router = await startTestRouter(nats.url, registry.port, {}, routerLog.logger);
    services.push(router);
    expect((await fetch(`http://127.0.0.1:${router.httpPort!}/v2/health/live`)).status).toBe(200);
    expect(registryLog.lines.some((l) => /"msg":"listening"/.test(l))).toBe(true);
    expect(routerLog.lines.some((l) => /"msg":"listening"/.test(l))).toBe(true);
    expect(warnings(registryLog.lines)).toEqual([]);
    expect(warnings(routerLog.lines)).toEqual([]);
  });
});
