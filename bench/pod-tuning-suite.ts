// Suite `pod-tuning` (only when asked for): the pod's settings that decide batch-1 throughput,
// each variant its own pod measured at the highest concurrency, to explain the `pod` suite.
import { podPoints, podTable, type PodVariant } from './pod-suite';
import type { SuiteOptions } from './suite-options';

/** The variants: batching off and on, crossed with the thread and queue settings worth trying. */
export const TUNING_VARIANTS: PodVariant[] = [
  { label: 'batching off', env: { INFERMESH_DYNAMIC_BATCHING: 'false' } },
  { label: 'batching on', env: { INFERMESH_DYNAMIC_BATCHING: 'true' } },
  { label: 'off, intra-op 1', env: { INFERMESH_DYNAMIC_BATCHING: 'false', INFERMESH_INTRA_OP_THREADS: '1' } },
  { label: 'on, intra-op 1', env: { INFERMESH_DYNAMIC_BATCHING: 'true', INFERMESH_INTRA_OP_THREADS: '1' } },
  { label: 'on, intra-op 1, queue delay 0', env: { INFERMESH_DYNAMIC_BATCHING: 'true', INFERMESH_INTRA_OP_THREADS: '1', INFERMESH_MAX_QUEUE_DELAY_US: '0' } },
  { label: 'on, intra-op 1, queue delay 2000 µs', env: { INFERMESH_DYNAMIC_BATCHING: 'true', INFERMESH_INTRA_OP_THREADS: '1', INFERMESH_MAX_QUEUE_DELAY_US: '2000' } },
  { label: 'on, intra-op 1, max batch 16', env: { INFERMESH_DYNAMIC_BATCHING: 'true', INFERMESH_INTRA_OP_THREADS: '1', INFERMESH_MAX_BATCH_SIZE: '16' } },
  { label: 'off, 2 workers × 1 thread', env: { INFERMESH_DYNAMIC_BATCHING: 'false', INFERMESH_SESSION_WORKERS: '2', INFERMESH_INTRA_OP_THREADS: '1' } },
  { label: 'on, 2 workers × 1 thread', env: { INFERMESH_DYNAMIC_BATCHING: 'true', INFERMESH_SESSION_WORKERS: '2', INFERMESH_INTRA_OP_THREADS: '1' } },
];

/** Runs the tuning suite and returns its Markdown. */
export async function podTuningSuite(opts: SuiteOptions): Promise<string> {
  const top = Math.max(...opts.concurrencies);
  const points = await podPoints(opts, TUNING_VARIANTS, [top]);
  return [
    `## Suite \`pod-tuning\`: pod settings at concurrency ${top}`,
    '',
    podTable(points),
    '',
    'Each variant is its own pod with the named INFERMESH_* settings (all others at their defaults), the pods taking turns;',
    'ratios are to the first row.',
  ].join('\n');
}
