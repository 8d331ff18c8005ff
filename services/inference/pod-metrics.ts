// A pod's metrics, read from what it already counts (each version's ModelStatistics, its queue and
// state) when the exporter collects: nothing on the request path. The names follow Triton's
// nv_inference_* counters, so dashboards built for one read the other with a rename.
import { meterOf, observeBatch, seconds } from '../../lib/metrics';
import type { ModelState } from '../../lib/events';
import type { ModelRepository } from './model-repository';

const STATES: readonly ModelState[] = ['LOADING', 'READY', 'UNLOADING', 'UNAVAILABLE'];

/** Registers the pod's instruments over `repo` (and `pod`, its name); returns the unregister function. */
export function registerPodMetrics(repo: ModelRepository, pod: string): () => void {
  return observeBatch(meterOf('inference'), {
    'infermesh.inference.requests': { kind: 'counter', description: 'Inference requests, by outcome (success, failure)' },
    'infermesh.inference.count': { kind: 'counter', description: 'Inferences performed: a batch of n counts n' },
    'infermesh.inference.executions': { kind: 'counter', description: 'Model runs: a batch counts once' },
    'infermesh.inference.duration.seconds': {
      kind: 'counter', unit: 's',
      description: 'Cumulative time of successful requests, by phase: request (end to end), queue, compute_input, compute_infer, compute_output',
    },
    'infermesh.inference.queue.size': { kind: 'gauge', description: 'Requests waiting for a run' },
    'infermesh.inference.in_flight': { kind: 'gauge', description: 'Requests being served' },
    'infermesh.inference.versions': { kind: 'gauge', description: 'Model versions on the pod, by state' },
    'infermesh.inference.version.memory.bytes': { kind: 'gauge', unit: 'By', description: 'What loading each version cost in resident memory (after its warm-up, less before)' },
  }, (observe) => {
    const states = new Map<ModelState, number>(STATES.map((s) => [s, 0]));
    // index(): versions that failed to load count as UNAVAILABLE too.
    for (const v of repo.index()) states.set(v.state, (states.get(v.state) ?? 0) + 1);
    for (const v of repo.all()) {
      const a = { pod, model: v.name, version: String(v.version) };
      const s = v.stats;
      observe('infermesh.inference.requests', s.success.count, { ...a, outcome: 'success' });
      observe('infermesh.inference.requests', s.fail.count, { ...a, outcome: 'failure' });
      observe('infermesh.inference.count', s.inferenceCount, a);
      observe('infermesh.inference.executions', s.executionCount, a);
      const phases = { request: s.success, queue: s.queue, compute_input: s.computeInput, compute_infer: s.computeInfer, compute_output: s.computeOutput };
      for (const [phase, d] of Object.entries(phases)) observe('infermesh.inference.duration.seconds', seconds(d.ns), { ...a, phase });
      observe('infermesh.inference.queue.size', v.batcher.queued, a);
      observe('infermesh.inference.in_flight', v.inFlight, a);
      observe('infermesh.inference.version.memory.bytes', v.memoryBytes, a);
    }
    for (const [state, n] of states) observe('infermesh.inference.versions', n, { pod, state });
  });
}
