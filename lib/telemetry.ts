// OpenTelemetry: the Node SDK with the gRPC instrumentation. It must start before grpc-js is
// loaded, so services load lib/telemetry-register.js with `node --require` (see services/*/main.ts).
// Exporters come from the standard OTEL_* variables, and none configured means none used: tracing
// (the async context manager, the W3C propagator and the gRPC instrumentation) runs only when a
// trace exporter is configured, because keeping the context across every async step costs each
// call a few hundred microseconds of CPU in Node 20 (measured on the router, docs/benchmarks.md).
// Without tracing the router passes a client's trace context on unchanged, as any proxy does.
import { NodeSDK } from '@opentelemetry/sdk-node';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';

let sdk: NodeSDK | undefined;
let tracingStarted = false;

/** Whether this process makes spans (startTelemetry started tracing): hot paths skip span work otherwise. */
export function tracingActive(): boolean {
  return tracingStarted;
}

/** What the SDK is started with. */
export interface TelemetryPlan {
  /** Whether the SDK starts at all (some exporter is configured and the SDK is not disabled). */
  start: boolean;
  /** Whether spans are made: a trace exporter is configured (OTEL_TRACES_EXPORTER or an OTLP endpoint). */
  tracing: boolean;
}


/** Reads the standard OTEL_* variables into a plan (pure; `startTelemetry` acts on it). */
export function telemetryPlan(env: NodeJS.ProcessEnv): TelemetryPlan {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return { start: false, tracing: false };
  // The SDK's own reading: an empty list means its default exporter (otlp), so an exporter only
  // where an OTLP endpoint is set; traces are off when the list starts with none, metrics and logs
  // when it holds none anywhere.
  const named = (kind: 'TRACES' | 'METRICS' | 'LOGS') => {
    const list = (env[`OTEL_${kind}_EXPORTER`] ?? '').split(',').map((s) => s.trim()).filter((s) => s && s !== 'null');
    if (list.length === 0) return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env[`OTEL_EXPORTER_OTLP_${kind}_ENDPOINT`]);
    return kind === 'TRACES' ? list[0] !== 'none' : !list.includes('none');
  };
  const tracing = named('TRACES');
  return { start: tracing || named('METRICS') || named('LOGS'), tracing };
}

/**
 * Starts the SDK once for `serviceName` (OTEL_SERVICE_NAME wins when set), as `telemetryPlan` says.
 * `env` is where the SDK's own OTEL_* settings live; exporters left unset are set to none so that
 * nothing dials a collector unasked.
 */
export function startTelemetry(serviceName: string, env: NodeJS.ProcessEnv = process.env): TelemetryPlan {
  const plan = telemetryPlan(env);
  if (sdk || !plan.start) return plan;
  for (const kind of ['TRACES', 'METRICS', 'LOGS']) {
    const key = `OTEL_${kind}_EXPORTER`;
    if (!env[key] && !env[`OTEL_EXPORTER_OTLP_${kind}_ENDPOINT`] && !env.OTEL_EXPORTER_OTLP_ENDPOINT) env[key] = 'none';
  }
  env.OTEL_SERVICE_NAME ??= serviceName;
  sdk = plan.tracing
    ? new NodeSDK({ instrumentations: [new GrpcInstrumentation()] })
    : // null registers no context manager: the SDK's own sentinel (setupContextManager), which its type omits.
      new NodeSDK({ instrumentations: [], contextManager: null as never, textMapPropagator: null });
  sdk.start();
  tracingStarted = plan.tracing;
  return plan;
}

/** Flushes and stops the SDK (last step of a graceful shutdown). */
export async function stopTelemetry(): Promise<void> {
  const s = sdk;
  sdk = undefined;
  await s?.shutdown().catch(() => undefined);
}
