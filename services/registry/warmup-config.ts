// A model's warm-up samples (ServingConfig.warmup, Triton's model_warmup): protocol ⇄ record, and
// the checks a sample must pass to be stored. Whether a sample fits a version's inputs is the pod's
// question (versions differ; it validates a sample as it validates a request); the registry checks
// what holds for any version: names, fixed non-negative dimensions, a bounded count and size.
import { errors } from '../../lib/errors';
import { checkText } from '../../lib/text';
import type { WarmupInputConfig, WarmupSampleConfig } from '../../lib/events';
import type { WarmupSample } from '../../lib/grpc/generated/infermesh/registry/v1/WarmupSample';
import type { WarmupSample__Output as WarmupSampleOut } from '../../lib/grpc/generated/infermesh/registry/v1/WarmupSample';

/** What the registry lets a model's warm-up hold: a pod runs it all before the version serves. */
export interface WarmupLimits {
  /** Bytes the samples take as stored (INFERMESH_MAX_WARMUP_CONFIG_BYTES). */
  maxWarmupConfigBytes: number;
  /** Runs of every sample together, each sample's count (at least 1) added (INFERMESH_MAX_WARMUP_RUNS). */
  maxWarmupRuns: number;
  /** Elements of every input of every sample together (INFERMESH_MAX_WARMUP_ELEMENTS): zeros are made for each. */
  maxWarmupElements: number;
}

const label = (sample: { name: string }, i: number) => (sample.name ? `warm-up sample '${sample.name}'` : `warm-up sample ${i + 1}`);

/** WarmupSample messages → the record's form; INVALID_ARGUMENT for a dimension that is not a non-negative integer. */
export function warmupFromProto(samples: readonly WarmupSampleOut[]): WarmupSampleConfig[] {
  return samples.map((s, i) => ({
    name: s.name,
    inputs: s.inputs.map((input): WarmupInputConfig => {
      const dims = input.dims.map((d) => {
        const n = Number(d);
        if (!/^\d+$/.test(String(d)) || !Number.isSafeInteger(n)) {
          throw errors.invalidArgument(`${label(s, i)}: input '${input.name}' has dimension ${String(d)}; warm-up shapes are fixed, each dimension an integer >= 0`);
        }
        return n;
      });
      return { name: input.name, dims, ...(input.raw_data.length ? { rawData: input.raw_data.toString('base64') } : {}) };
    }),
    ...(s.count ? { count: s.count } : {}),
  }));
}

/** The record's samples → WarmupSample messages. */
export function warmupToProto(samples: readonly WarmupSampleConfig[] | undefined): WarmupSample[] {
  return (samples ?? []).map((s) => ({
    name: s.name,
    inputs: s.inputs.map((input) => ({ name: input.name, dims: input.dims, raw_data: Buffer.from(input.rawData ?? '', 'base64') })),
    count: s.count ?? 0,
  }));
}

/**
 * Checks warm-up samples before they are stored: every sample names each of its inputs once, each
 * name (the sample's too) printable (lib/text.ts checkText, as a name); all
 * samples together run at most `maxWarmupRuns` times and hold at most `maxWarmupElements` elements;
 * and the whole list, as the model record stores it, takes at most `maxWarmupConfigBytes` (the record
 * and its model.config.changed event are NATS messages). INVALID_ARGUMENT naming the sample otherwise.
 */
export function checkWarmup(samples: readonly WarmupSampleConfig[], limits: WarmupLimits): void {
  let runs = 0;
  let elements = 0;
  samples.forEach((s, i) => {
    // Names are stored, and a pod's reason for a failed warm-up quotes them (lib/text.ts).
    checkText(`warm-up sample ${i + 1}'s name`, s.name, 'name');
    if (s.inputs.length === 0) throw errors.invalidArgument(`${label(s, i)} has no inputs; give a value for every input of the model`);
    const seen = new Set<string>();
    for (const [n, input] of s.inputs.entries()) {
      if (!input.name) throw errors.invalidArgument(`${label(s, i)} has an input without a name`);
      checkText(`${label(s, i)}: input ${n + 1}'s name`, input.name, 'name');
      if (seen.has(input.name)) throw errors.invalidArgument(`${label(s, i)} gives input '${input.name}' more than once`);
      seen.add(input.name);
      if (input.dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
        throw errors.invalidArgument(`${label(s, i)}: input '${input.name}' has shape [${input.dims.join(',')}]; warm-up shapes are fixed, each dimension an integer >= 0`);
      }
      const count = input.dims.reduce((a, b) => a * b, 1);
      if (!Number.isSafeInteger(count)) {
        throw errors.invalidArgument(`${label(s, i)}: input '${input.name}' has more elements than any tensor can hold`);
      }
      if ((elements += count) > limits.maxWarmupElements) {
        throw errors.invalidArgument(`${label(s, i)}: input '${input.name}' takes the warm-up samples past the registry's maximum of ${limits.maxWarmupElements} elements (INFERMESH_MAX_WARMUP_ELEMENTS)`);
      }
    }
    if ((runs += Math.max(1, s.count ?? 0)) > limits.maxWarmupRuns) {
      throw errors.invalidArgument(`${label(s, i)} takes the warm-up past the registry's maximum of ${limits.maxWarmupRuns} runs, every sample's count together (INFERMESH_MAX_WARMUP_RUNS)`);
    }
  });
  const bytes = Buffer.byteLength(JSON.stringify(samples));
  if (bytes > limits.maxWarmupConfigBytes) {
    throw errors.invalidArgument(`the warm-up samples take ${bytes} bytes as stored, above the registry's maximum of ${limits.maxWarmupConfigBytes} (INFERMESH_MAX_WARMUP_CONFIG_BYTES)`);
  }
}
