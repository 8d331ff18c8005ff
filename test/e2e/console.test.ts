// The web console in a real headless Chromium (Debian's chromium, driven by playwright-core) over
// the local mesh (registry, router, two pods and NATS as processes, as `npm start` runs them)
// serving mnist under load: the page shows the model; a canary is started from the page; the
// split and the per-version charts move; the canary is rolled back from the page with a reason,
// and the rollback event shows it. Screenshots of the model page (rollout in progress) and the
// pods page are saved in test-results/console/.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { InferenceApi, RegistryApi } from '../../client/index';
import { startLocalMesh, type LocalMesh } from '../../cli/local-mesh/mesh';
import { ROOT } from '../../cli/local-mesh/service-process';
import { modelPath } from '../helpers/models';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SCREENSHOTS = path.join(ROOT, 'test-results', 'console');
const WINDOW_MS = 1_000;
const REASON = 'console e2e: the canary looked wrong';

describe('the web console, in a browser', () => {
  let dataDir: string;
  let mesh: LocalMesh;
  let registry: RegistryApi;
  let router: InferenceApi;
  let browser: Browser;
  let page: Page;
  let loading = true;
  let load: Promise<number>;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-console-e2e-'));
    mesh = await startLocalMesh({ dataDir, routerPort: 0, registryPort: 0, pods: 2, env: { INFERMESH_ANALYSIS_WINDOW_MS: String(WINDOW_MS) } });
    registry = new RegistryApi(mesh.registryAddress);
    router = new InferenceApi(mesh.routerAddress);
    await registry.push('mnist', modelPath('mnist.onnx'));
    await waitFor('mnist ready', () => router.modelReady('mnist').catch(() => false), 60_000);
    // A second version to roll out: the same bytes, another version number.
    await registry.push('mnist', modelPath('mnist.onnx'));
    // Load: four callers in a loop for the whole test.
    const input = [{ name: 'input', datatype: 'FP32' as const, shape: [1, 784], data: new Float32Array(784) }];
    load = Promise.all(Array.from({ length: 4 }, async () => {
      let n = 0;
      while (loading) {
        await router.infer('mnist', input).then(() => n++, () => undefined);
        await new Promise((r) => setTimeout(r, 5));
      }
      return n;
    })).then((ns) => ns.reduce((a, b) => a + b, 0));
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  afterAll(async () => {
    loading = false;
    await load;
    await browser?.close();
    registry?.close();
    router?.close();
    await mesh?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('shows mnist, starts a canary, watches the split and charts move, rolls back with a reason, and shows the pods', async () => {
    expect(mesh.consoleUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    await page.goto(mesh.consoleUrl!);
    // The models page: mnist, serving version 1 alone.
    const link = page.getByRole('link', { name: 'mnist', exact: true });
    await link.waitFor();
    await link.click();
    await page.getByRole('heading', { level: 1, name: 'mnist' }).waitFor();
    expect(await page.getByTestId('split').textContent()).toBe('v1 100%');
    // The charts fill from the routers' windows while the load runs.
    const points = async (id: string) => Number(await page.getByTestId(`chart-${id}`).getAttribute('data-points'));
    await waitFor('the charts to show windows', async () => (await points('rps')) >= 2, 30_000);

    // Start a canary of version 2 at 30% from the page.
    await page.getByLabel('Canary version').selectOption('2');
    await page.getByLabel('Weight (%)').fill('30');
    await page.getByRole('button', { name: 'Start canary' }).click();
    await waitFor('the split to move', async () => (await page.getByTestId('split').textContent()) === 'v1 70% · v2 30%', 20_000);
    expect(await page.getByTestId('phase').textContent()).toBe('progressing');
    // The canary's own series appears and grows on the charts, window after window.
    const series = async () => (await page.getByTestId('chart-rps').getAttribute('data-series')) ?? '';
    await waitFor('version 2 on the charts', async () => (await series()).includes('v2'), 30_000);
    const before = await points('rps');
    await waitFor('the charts to move', async () => (await points('rps')) >= before + 2, 30_000);
    expect(await series()).toBe('v1|v2');
    expect(await page.getByTestId('chart-latency').getAttribute('data-series')).toContain('limit (3× stable p99)');
    const latest = await page.locator('.latest table').textContent();
    expect(latest).toMatch(/v1.*v2/s);
    await waitFor('the status line to clear', async () => (await page.locator('#status').textContent()) === '', 10_000);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'model-rollout.png'), fullPage: true });

    // Roll back from the page, with a reason; the event and the history show it.
    await page.getByLabel('Reason').fill(REASON);
    await page.getByRole('button', { name: 'Roll back' }).click();
    await waitFor('the split to return', async () => (await page.getByTestId('split').textContent()) === 'v1 100%', 20_000);
    expect(await page.getByTestId('phase').textContent()).toBe('rolled back');
    await waitFor('the rollback event', async () => {
      const events = await page.getByTestId('model-events').locator('li.rollout-changed').allTextContents();
      return events.some((e) => e.includes('rolled_back') && e.includes(REASON));
    }, 20_000);
    expect(await page.getByTestId('timeline').textContent()).toContain(REASON);
    expect((await registry.model('mnist')).traffic).toEqual([{ version: 1, weight: 100 }]);

    // The pods page: both pods, each with its address, provider and versions.
    await page.getByRole('navigation').getByRole('link', { name: 'Pods' }).click();
    await page.getByRole('heading', { level: 1, name: 'Pods' }).waitFor();
    await waitFor('both pods', async () => (await page.locator('main tbody tr').count()) === 2, 20_000);
    const rows = await page.locator('main tbody tr').allTextContents();
    for (const [i, row] of rows.entries()) {
      expect(row).toContain(`pod-${i + 1}`);
      expect(row).toMatch(/serving.*cpu.*mnist v1 READY/s);
    }
    // The pods started side by side: which is pod-1 is not known, but each address is one of theirs.
    const addresses = rows.map((r) => /127\.0\.0\.1:(\d+)/.exec(r)?.[1]).map(Number).sort();
    expect(addresses).toEqual(mesh.pods.map((p) => p.port).sort());
    await page.screenshot({ path: path.join(SCREENSHOTS, 'pods.png'), fullPage: true });

    // The events page: the live tail, filtered by model.
    await page.getByRole('navigation').getByRole('link', { name: 'Events' }).click();
    await page.getByLabel('Only the model').fill('mnist');
    expect(await page.getByTestId('events').textContent()).toContain(REASON);

    // Keyboard: on a fresh page the first Tab reaches the skip link.
    await page.goto(`${mesh.consoleUrl!}pods`);
    await page.getByRole('heading', { level: 1, name: 'Pods' }).waitFor();
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Skip to content');
    expect(pageErrors).toEqual([]);
    for (const f of ['model-rollout.png', 'pods.png']) expect(fs.statSync(path.join(SCREENSHOTS, f)).size).toBeGreaterThan(10_000);
  });
});
