// Metrics as Kubernetes scrapes them: a registry, a pod and a router run as processes the way their
// containers do, with OTEL_METRICS_EXPORTER=prometheus, and their /metrics pages count exactly the
// traffic sent through them, agreeing with the pod's own ModelStatistics.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InferenceApi, RegistryApi } from '../../client/index';
import { startService, type ServiceProcess } from '../../cli/local-mesh/service-process';
import { freePort } from '../../cli/local-mesh/free-port';
import type { ModelStatistics__Output as ModelStatistics } from '../../lib/grpc/generated/inference/ModelStatistics';
import { heldOutDigits } from '../../tools/models/mnist-data';
import { startTestNats, type NatsServerProcess } from '../helpers/nats';
import { inferenceClient, unary, waitReady } from '../helpers/mesh';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const MODELS = path.resolve(__dirname, '../../models');

interface Sample { name: string; labels: Record<string, string>; value: number }

/** Parses a Prometheus text page (the lines that are samples). */
function parse(page: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of page.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

async function scrape(port: number): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  return parse(await res.text());
}

/** The value of the one sample named `name` whose labels include `labels`. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]!.value;
}

describe('metrics', () => {
  let nats: NatsServerProcess & { cleanup(): Promise<void> };
  const procs: ServiceProcess[] = [];
  const ports = { registry: 0, pod: 0, router: 0 };
  let modelDir: string;

  const start = async (name: 'registry' | 'inference' | 'router', metricsPort: number, env: Record<string, string>) => {
    const p = await startService(name, {
      env: {
        INFERMESH_NATS_URL: nats.url, INFERMESH_LISTEN_HOST: '127.0.0.1',
        OTEL_METRICS_EXPORTER: 'prometheus', OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1', OTEL_EXPORTER_PROMETHEUS_PORT: String(metricsPort),
        OTEL_TRACES_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none',
        ...env,
      },
    });
    procs.push(p);
    return p;
  };

  beforeAll(async () => {
    nats = await startTestNats();
    modelDir = fs.mkdtempSync(path.join(os.tmpdir(), 'infermesh-metrics-'));
    ports.registry = await freePort();
    ports.pod = await freePort();
    ports.router = await freePort();
    const registry = await start('registry', ports.registry, { INFERMESH_REGISTRY_PORT: '0', INFERMESH_CONSOLE_PORT: '0' });
    const registryUrl = `127.0.0.1:${registry.port}`;
    const api = new RegistryApi(registryUrl);
    try {
      await api.push('mnist', path.join(MODELS, 'mnist.onnx'));
      await api.push('fails', path.join(MODELS, 'fixtures/fails.onnx'));
    } finally {
      api.close();
    }
    await start('inference', ports.pod, {
      INFERMESH_REGISTRY_URL: registryUrl, INFERMESH_INFERENCE_PORT: '0', INFERMESH_MODEL_DIR: modelDir,
      INFERMESH_POD_NAME: 'pod-m', INFERMESH_EXECUTION_PROVIDERS: 'cpu', INFERMESH_HEARTBEAT_INTERVAL_MS: '200',
      // The failing model must be ready to fail: no warm-up run.
      INFERMESH_WARMUP: 'false',
    });
    await start('router', ports.router, { INFERMESH_REGISTRY_URL: registryUrl, INFERMESH_ROUTER_PORT: '0', INFERMESH_ROUTER_HTTP_PORT: '0' });
  });

  afterAll(async () => {
    for (const p of procs.reverse()) await p.stop(10_000);
    await nats?.cleanup();
    if (modelDir) fs.rmSync(modelDir, { recursive: true, force: true });
  });

  it('count what went through the router and the pod, as ModelStatistics does', async () => {
    const [, pod, router] = procs;
    const podAddress = `127.0.0.1:${pod!.port}`;
    await waitReady(inferenceClient(podAddress), ['mnist', 'fails']);
    const api = new InferenceApi(`127.0.0.1:${router!.port}`);
    const digits = heldOutDigits(25);
    try {
      await waitFor('the router to serve mnist', () => api.infer('mnist', [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: digits[0]!.pixels }]).then(() => true, () => false));
      for (const d of digits.slice(1)) await api.infer('mnist', [{ name: 'input', datatype: 'FP32', shape: [1, 784], data: d.pixels }]);
      for (let i = 0; i < 3; i++) {
        await expect(api.infer('fails', [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }])).rejects.toMatchObject({ grpcCode: 13 });
      }
    } finally {
      api.close();
    }

    const r = await scrape(ports.router);
    const mnist = { model: 'mnist', version: '1' };
    expect(value(r, 'infermesh_router_requests_total', { ...mnist, outcome: 'ok' })).toBe(25);
    expect(value(r, 'infermesh_router_request_duration_seconds_count', mnist)).toBe(25);
    expect(value(r, 'infermesh_router_request_duration_seconds_sum', mnist)).toBeGreaterThan(0);
    expect(value(r, 'infermesh_router_requests_total', { model: 'fails', version: '1', outcome: 'error' })).toBe(3);
    expect(value(r, 'infermesh_router_pods', { state: 'serving' })).toBe(1);
    expect(value(r, 'infermesh_router_in_flight')).toBe(0);

    const p = await scrape(ports.pod);
    const c = inferenceClient(podAddress);
    const stats = await unary<{ model_stats: ModelStatistics[] }>((cb) => c.ModelStatistics({ name: 'mnist', version: '1' }, cb));
    c.close();
    const s = stats.model_stats[0]!.inference_stats!;
    const podMnist = { pod: 'pod-m', ...mnist };
    expect(value(p, 'infermesh_inference_requests_total', { ...podMnist, outcome: 'success' })).toBe(Number(s.success!.count));
    expect(Number(s.success!.count)).toBe(25);
    expect(value(p, 'infermesh_inference_count_total', podMnist)).toBe(Number(stats.model_stats[0]!.inference_count));
    expect(value(p, 'infermesh_inference_duration_seconds_total', { ...podMnist, phase: 'request' })).toBeCloseTo(Number(s.success!.ns) / 1e9, 6);
    expect(value(p, 'infermesh_inference_duration_seconds_total', { ...podMnist, phase: 'compute_infer' })).toBeGreaterThan(0);
    expect(value(p, 'infermesh_inference_requests_total', { pod: 'pod-m', model: 'fails', version: '1', outcome: 'failure' })).toBe(3);
    expect(value(p, 'infermesh_inference_versions', { pod: 'pod-m', state: 'READY' })).toBe(2);
    expect(value(p, 'infermesh_inference_queue_size', podMnist)).toBe(0);

    const g = await scrape(ports.registry);
    expect(value(g, 'infermesh_registry_events_total', { type: 'version.published' })).toBe(2);
    expect(value(g, 'infermesh_registry_events_total', { type: 'model.created' })).toBe(2);
  });
});
