// Density (docs/placement.md): what a loaded small model costs and how many a pod holds, measured
// on the mesh as `npm start` runs it, in one run:
//   - cold start: the first request to a model no pod holds (the router asks placement for it and
//     waits while a pod loads it), p50 and p99 over models; warm: the next requests;
//   - memory per loaded small model beyond its artifact's size (what the pods measured), and the
//     resident memory of one pod holding 40 copies of MNIST (0.4 MB);
//   - models served per GB of pod memory with placement (one copy each, on either pod) against
//     every pod loading every model (placement off), on two pods.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InferenceApi, RegistryApi } from '../client';
import { startLocalMesh, type LocalMesh } from '../cli/local-mesh/mesh';
import { num, table } from './markdown';
import type { SuiteOptions } from './suite-options';
import { waitFor } from './bench-mesh';

const MiB = 1024 * 1024;


const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
const sortNum = (xs: number[]) => [...xs].sort((a, b) => a - b);

interface Mesh {
  mesh: LocalMesh;
  registry: RegistryApi;
  router: InferenceApi;
  dir: string;
  stop(): Promise<void>;
}

async function mesh(pods: number, env: Record<string, string>): Promise<Mesh> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-bench-density-'));
  const m = await startLocalMesh({ dataDir: dir, routerPort: 0, registryPort: 0, pods, env: { INFERMESH_HEARTBEAT_INTERVAL_MS: '250', INFERMESH_EXECUTION_PROVIDERS: 'cpu', ...env } });
  const registry = new RegistryApi(m.registryAddress);
  const router = new InferenceApi(m.routerAddress);
  return {
    mesh: m, registry, router, dir,
    async stop() {
      router.close();
      registry.close();
      await m.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Pushes MNIST as `count` models (small-0...), each version a model of its own to the pods. */
async function pushSmall(m: Mesh, count: number, file: string): Promise<void> {
  for (let i = 0; i < count; i++) await m.registry.push(`small-${i}`, file);
}

const digit = new Float32Array(784).fill(0.1);
const call = (m: Mesh, i: number) => m.router.infer(`small-${i}`, [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: digit }], { timeoutMs: 60_000 });

/** The pods' resident memory, by name. */
async function rssOf(m: Mesh): Promise<Map<string, number>> {
  return new Map((await m.registry.pods()).map((p) => [p.name, Number(p.rss_bytes)]));
}

/** Waits until the pods hold `count` READY versions together; resolves to their pods. */
async function holding(m: Mesh, count: number) {
  let pods = await m.registry.pods();
  await waitFor(`${count} versions ready on the pods`, async () => {
    pods = await m.registry.pods();
    return pods.reduce((n, p) => n + p.versions.filter((v) => v.state === 'READY').length, 0) >= count;
  }, 300_000);
  // A heartbeat after the last load, for the resident memory it measured.
  await new Promise((r) => setTimeout(r, 1_000));
  return m.registry.pods();
}

export async function densitySuite(opts: SuiteOptions): Promise<string> {
  const models = opts.rounds >= 3 ? 40 : 20;
  const mnistFile = path.join(opts.root, 'models', 'mnist.onnx');

  // 1. Lazy loading: two pods, no copies until asked, cold then warm requests.
  opts.progress(`density: ${models} small models, loaded on first request`);
  const lazy = await mesh(2, { INFERMESH_PLACEMENT_MIN_COPIES: '0' });
  let cold: number[];
  let warm: number[];
  let perModel: number[];
  let placedBytes: number;
  try {
    await pushSmall(lazy, models, mnistFile);
    const size = fs.statSync(mnistFile).size;
    await waitFor('both pods known', async () => (await lazy.registry.pods()).length === 2);
    const before = await rssOf(lazy);
    cold = [];
    for (let i = 0; i < models; i++) {
      const t = performance.now();
      await call(lazy, i);
      cold.push(performance.now() - t);
    }
    warm = [];
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < models; i++) {
        const t = performance.now();
        await call(lazy, i);
        warm.push(performance.now() - t);
      }
    }
    const pods = await holding(lazy, models);
    perModel = pods.flatMap((p) => p.versions.filter((v) => v.state === 'READY').map((v) => Number(v.memory_bytes) - size));
    placedBytes = pods.reduce((n, p) => n + Number(p.rss_bytes) - (before.get(p.name) ?? 0), 0);
  } finally {
    await lazy.stop();
  }

  // 2. Every pod loads every model (placement off), the same models on two pods.
  opts.progress(`density: ${models} small models, every pod loading every one`);
  const all = await mesh(2, { INFERMESH_PLACEMENT: 'off' });
  let everywhereBytes: number;
  try {
    await waitFor('both pods known', async () => (await all.registry.pods()).length === 2);
    const before = await rssOf(all);
    await pushSmall(all, models, mnistFile);
    await holding(all, 2 * models);
    // The same calls as the placed mesh served, so both pods' memory includes serving them.
    for (let round = 0; round < 11; round++) for (let i = 0; i < models; i++) await call(all, i);
    const pods = await holding(all, 2 * models);
    everywhereBytes = pods.reduce((n, p) => n + Number(p.rss_bytes) - (before.get(p.name) ?? 0), 0);
  } finally {
    await all.stop();
  }

  // 3. One pod holding 40 copies of MNIST (the measure: 775 MB before this work).
  opts.progress('density: one pod holding 40 copies of MNIST');
  const mnist = await mesh(1, { INFERMESH_PLACEMENT: 'off' });
  let mnistRss: number;
  try {
    for (let i = 1; i <= 40; i++) await mnist.registry.push(`mnist-${i}`, mnistFile);
    const pods = await holding(mnist, 40);
    mnistRss = Number(pods[0]!.rss_bytes);
  } finally {
    await mnist.stop();
  }

  const c = sortNum(cold);
  const w = sortNum(warm);
  const per = sortNum(perModel);
  const perGb = (bytes: number) => (models * 1024 * MiB) / Math.max(1, bytes);
  return [
    `### Density: many small models on few pods`,
    '',
    `MNIST (${num(fs.statSync(mnistFile).size / 1024)} KiB) pushed as ${models} models to a mesh of two pods, as \`npm start\` runs it. Cold: the first request to each model, which no pod holds (\`INFERMESH_PLACEMENT_MIN_COPIES=0\`): the router asks placement for it and waits while a pod loads it. Warm: ten more rounds of one request to each. Memory per model: what the pods measured each version cost (resident memory over its load and warm-up) less its artifact's size. Models per GB: the models over the growth of the two pods' resident memory while they loaded and served them (the same calls in both meshes).`,
    '',
    table(['measure', 'p50', 'p99', 'n'], [
      ['cold start: first request to an unloaded model (ms)', num(quantile(c, 0.5), 1), num(quantile(c, 0.99), 1), String(c.length)],
      ['warm request, same models (ms)', num(quantile(w, 0.5), 2), num(quantile(w, 0.99), 2), String(w.length)],
      ['memory per loaded small model beyond its artifact (MiB)', num(quantile(per, 0.5) / MiB, 1), num(quantile(per, 0.99) / MiB, 1), String(per.length)],
    ]),
    '',
    table(['two pods, same models', 'pod memory for them (MiB)', 'models per GB'], [
      ['placement: one copy each, loaded on request', num(placedBytes / MiB), num(perGb(placedBytes), 1)],
      ['every pod loads every model (placement off)', num(everywhereBytes / MiB), num(perGb(everywhereBytes), 1)],
      ['gain', '', `${num(everywhereBytes / Math.max(1, placedBytes), 2)}×`],
    ]),
    '',
    table(['one pod holding 40 copies of MNIST', 'resident memory (MB)', 'target'], [
      ['this run', num(mnistRss / 1e6), `at most a third of 775 MB (258 MB): ${mnistRss <= 258 * 1e6 ? 'met' : 'not met'}`],
    ]),
  ].join('\n');
}
