import { telemetryPlan } from '../../../lib/telemetry';

describe('telemetryPlan', () => {
  it('starts nothing when no exporter is configured or the SDK is disabled', () => {
    expect(telemetryPlan({})).toEqual({ start: false, tracing: false });
    expect(telemetryPlan({ OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: ' none ' })).toEqual({ start: false, tracing: false });
    expect(telemetryPlan({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' })).toEqual({ start: false, tracing: false });
  });

  it('traces only when a trace exporter is named or an OTLP endpoint implies the default one', () => {
    expect(telemetryPlan({ OTEL_TRACES_EXPORTER: 'otlp' })).toEqual({ start: true, tracing: true });
    // As the SDK reads the list: none first means no traces, none later falls back to otlp.
    expect(telemetryPlan({ OTEL_TRACES_EXPORTER: 'none,console' })).toEqual({ start: false, tracing: false });
    expect(telemetryPlan({ OTEL_TRACES_EXPORTER: 'console,none' })).toEqual({ start: true, tracing: true });
    expect(telemetryPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toEqual({ start: true, tracing: true });
    expect(telemetryPlan({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toEqual({ start: true, tracing: true });
    expect(telemetryPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' })).toEqual({ start: true, tracing: false });
  });

  it('starts metrics without tracing, as the Kubernetes manifests configure it', () => {
    expect(telemetryPlan({ OTEL_METRICS_EXPORTER: 'prometheus', OTEL_TRACES_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none' })).toEqual({ start: true, tracing: false });
    expect(telemetryPlan({ OTEL_METRICS_EXPORTER: 'prometheus,none' })).toEqual({ start: false, tracing: false });
  });
});
