import { context, propagation, trace, SpanStatusCode, type Span } from "@opentelemetry/api";
import type { TraceCarrier } from "./ports.js";

/**
 * Tracing through @opentelemetry/api: a no-op unless the SDK was started (main.ts starts it when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set). A message's trace spans send → store → deliver: the
 * context travels in AMQP headers (W3C traceparent).
 */
const tracer = trace.getTracer("vibetalk-chat-node");

export function inject(span: Span | undefined): TraceCarrier {
  const carrier: TraceCarrier = {};
  if (span) propagation.inject(trace.setSpan(context.active(), span), carrier);
  return carrier;
}

export function startSpan(
  name: string,
  parent?: TraceCarrier,
  attributes?: Record<string, string | number>,
): Span {
  const ctx =
    parent && Object.keys(parent).length > 0
      ? propagation.extract(context.active(), parent)
      : context.active();
  return tracer.startSpan(name, attributes ? { attributes } : {}, ctx);
}

export function endSpan(span: Span, error?: unknown): void {
  if (error) {
    span.recordException(error instanceof Error ? error : new Error(String(error)));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
}

let sdkStarted: Promise<{ shutdown(): Promise<void> }> | null = null;

/** Starts the OpenTelemetry SDK once per process (OTLP over HTTP). */
export function startTracing(endpoint: string, serviceName: string): Promise<{ shutdown(): Promise<void> }> {
  sdkStarted ??= (async () => {
    const [{ NodeSDK }, { OTLPTraceExporter }] = await Promise.all([
      import("@opentelemetry/sdk-node"),
      import("@opentelemetry/exporter-trace-otlp-http"),
    ]);
    const base = endpoint.replace(/\/+$/, "");
    const url = base.endsWith("/v1/traces") ? base : `${base}/v1/traces`;
    const sdk = new NodeSDK({ serviceName, traceExporter: new OTLPTraceExporter({ url }) });
    sdk.start();
    return sdk;
  })();
  return sdkStarted;
}
