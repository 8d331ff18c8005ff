// Metrics through the OpenTelemetry API: each service's instruments come from `meterOf`, and the
// exporter is the SDK's (lib/telemetry.ts; in Kubernetes, OTEL_METRICS_EXPORTER=prometheus on port
// 9464). With no exporter configured the API's meter is a no-op, so recording costs nothing.
// Counters that mirror what a service already counts (a pod's ModelStatistics) are observable:
// read at collection time, never touched on the request path.
import { metrics, type Attributes, type BatchObservableResult, type Meter, type Observable } from '@opentelemetry/api';
import { VERSION } from './version';

/** The meter of one service (`infermesh-router`, `infermesh-inference`, `infermesh-registry`). */
export function meterOf(service: string): Meter {
  return metrics.getMeter(`infermesh-${service}`, VERSION);
}

/** Latency buckets in seconds, from 0.5 ms to 10 s (Prometheus-style histograms). */
export const DURATION_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Nanoseconds (bigint) as seconds. */
export const seconds = (ns: bigint): number => Number(ns) / 1e9;

/**
 * Registers observable instruments read together by one callback (one pass over the service's
 * state per collection). Returns a function that unregisters them, for shutdown.
 */
export function observeBatch<K extends string>(
  meter: Meter,
  specs: Record<K, { kind: 'counter' | 'gauge'; description: string; unit?: string }>,
  collect: (observe: (name: K, value: number, attributes?: Attributes) => void) => void,
): () => void {
  const instruments = {} as Record<K, Observable>;
  for (const name of Object.keys(specs) as K[]) {
    const { kind, description, unit } = specs[name];
    instruments[name] = kind === 'counter' ? meter.createObservableCounter(name, { description, unit }) : meter.createObservableGauge(name, { description, unit });
  }
  const all = Object.values<Observable>(instruments);
  const callback = (result: BatchObservableResult) => collect((name, value, attributes) => result.observe(instruments[name], value, attributes));
  meter.addBatchObservableCallback(callback, all);
  return () => meter.removeBatchObservableCallback(callback, all);
}
