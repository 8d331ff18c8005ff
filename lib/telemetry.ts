// OpenTelemetry: the Node SDK with the gRPC instrumentation. It must start before grpc-js is
// loaded, so services load lib/telemetry-register.js with `node --require` (see services/*/main.ts).
// Exporters come from the standard OTEL_* variables; with none configured, spans are created
// (so context propagates through every call) but nothing is exported.
import { NodeSDK } from '@opentelemetry/sdk-node';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';

let sdk: NodeSDK | undefined;

/** The OTEL_* variables that turn an exporter on. */
const EXPORTER_VARIABLES = [
  'OTEL_TRACES_EXPORTER', 'OTEL_METRICS_EXPORTER', 'OTEL_LOGS_EXPORTER',
  'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT',
];

/**
 * Starts the SDK once for `serviceName` (OTEL_SERVICE_NAME wins when set). `env` is where the SDK's
 * own OTEL_* settings live; unset exporters are set to none so nothing dials a collector unasked.
 */
export function startTelemetry(serviceName: string, env: NodeJS.ProcessEnv = process.env): void {
  if (sdk) return;
  if (!EXPORTER_VARIABLES.some((v) => env[v])) {
    env.OTEL_TRACES_EXPORTER = 'none';
    env.OTEL_METRICS_EXPORTER = 'none';
    env.OTEL_LOGS_EXPORTER = 'none';
  }
  env.OTEL_SERVICE_NAME ??= serviceName;
  sdk = new NodeSDK({ instrumentations: [new GrpcInstrumentation()] });
  sdk.start();
}

/** Flushes and stops the SDK (last step of a graceful shutdown). */
export async function stopTelemetry(): Promise<void> {
  const s = sdk;
  sdk = undefined;
  await s?.shutdown().catch(() => undefined);
}
