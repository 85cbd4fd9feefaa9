// Package telemetry sets up OpenTelemetry for scimgate: tracer and meter
// providers with their exporters, the Prometheus /metrics handler, and the
// JSON logger that stamps every line made inside a request with its trace.
//
// It is the only package besides cmd that imports the OpenTelemetry SDK and
// exporters; the rest of scimgate uses the OpenTelemetry API and is handed the
// providers built here.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// The exporters a signal can use.
const (
	ExporterNone     = "none"
	ExporterOTLPGRPC = "otlp-grpc"
	ExporterOTLPHTTP = "otlp-http"
	ExporterStdout   = "stdout"
)

// Config selects what is exported and where. Endpoints, headers and TLS of
// the OTLP exporters come from the standard OTEL_EXPORTER_OTLP_* variables,
// which the exporters read themselves; the service name and resource
// attributes from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
type Config struct {
	// ServiceName names this service unless OTEL_SERVICE_NAME does.
	ServiceName string
	// TracesExporter is one of the Exporter constants; "" reads
	// OTEL_TRACES_EXPORTER (otlp, console, none) and defaults to none.
	TracesExporter string
	// SampleRatio is the share of new traces recorded (parent-based: a
	// request that arrives in a sampled trace is recorded). The standard
	// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, when set, win.
	SampleRatio float64
	// Prometheus serves metrics for scraping at MetricsHandler.
	Prometheus bool
	// MetricsExporter pushes metrics as well: one of the Exporter constants.
	MetricsExporter string
	// MetricsInterval is how often pushed metrics are exported.
	MetricsInterval time.Duration
}

// Telemetry holds the providers the rest of scimgate instruments itself with.
type Telemetry struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagator     propagation.TextMapPropagator
	// MetricsHandler serves Prometheus metrics; nil when Prometheus is off.
	MetricsHandler http.Handler
	// Tracing tells whether spans are recorded and exported at all; when it
	// is false, instrumented code can skip the work of building spans.
	Tracing bool

	shutdown []func(context.Context) error
}

// Setup builds the providers. Call Shutdown to flush what is buffered.
func Setup(ctx context.Context, c Config) (*Telemetry, error) {
	t := &Telemetry{
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
		Propagator:     propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(c.ServiceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}

	exporter, err := traceExporter(ctx, tracesExporterName(c.TracesExporter))
	if err != nil {
		return nil, err
	}
	if exporter != nil {
		opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exporter), sdktrace.WithResource(res)}
		if os.Getenv("OTEL_TRACES_SAMPLER") == "" {
			opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))))
		}
		tp := sdktrace.NewTracerProvider(opts...)
		t.TracerProvider, t.Tracing = tp, true
		t.shutdown = append(t.shutdown, tp.Shutdown)
	}

	var readers []sdkmetric.Option
	if c.Prometheus {
		// A registry of our own: only scimgate's metrics, and a test can
		// set up twice in one process.
		reg := promclient.NewRegistry()
		prom, err := prometheus.New(prometheus.WithRegisterer(reg))
		if err != nil {
			t.Shutdown(ctx)
			return nil, fmt.Errorf("prometheus exporter: %w", err)
		}
		readers = append(readers, sdkmetric.WithReader(prom))
		t.MetricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	}
	push, err := metricExporter(ctx, c.MetricsExporter)
	if err != nil {
		t.Shutdown(ctx)
		return nil, err
	}
	if push != nil {
		interval := c.MetricsInterval
		if interval <= 0 {
			interval = time.Minute
		}
		readers = append(readers, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(push, sdkmetric.WithInterval(interval))))
	}
	if len(readers) > 0 {
		mp := sdkmetric.NewMeterProvider(append(readers, sdkmetric.WithResource(res))...)
		t.MeterProvider = mp
		t.shutdown = append(t.shutdown, mp.Shutdown)
	}
	return t, nil
}

// tracesExporterName falls back to OTEL_TRACES_EXPORTER, in its own words.
func tracesExporterName(name string) string {
	if name != "" {
		return name
	}
	switch os.Getenv("OTEL_TRACES_EXPORTER") {
	case "otlp":
		if os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")+os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL") == "grpc" {
			return ExporterOTLPGRPC
		}
		return ExporterOTLPHTTP // the OpenTelemetry default protocol
	case "console":
		return ExporterStdout
	}
	return ExporterNone
}

func traceExporter(ctx context.Context, name string) (sdktrace.SpanExporter, error) {
	var exp sdktrace.SpanExporter
	var err error
	switch name {
	case ExporterNone, "":
		return nil, nil
	case ExporterOTLPGRPC:
		exp, err = otlptracegrpc.New(ctx)
	case ExporterOTLPHTTP:
		exp, err = otlptracehttp.New(ctx)
	case ExporterStdout:
		exp, err = stdouttrace.New(stdouttrace.WithWriter(os.Stderr))
	default:
		return nil, fmt.Errorf("traces exporter %q: want one of %s", name, strings.Join(Exporters, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("traces exporter %s: %w", name, err)
	}
	return exp, nil
}

func metricExporter(ctx context.Context, name string) (sdkmetric.Exporter, error) {
	var exp sdkmetric.Exporter
	var err error
	switch name {
	case ExporterNone, "":
		return nil, nil
	case ExporterOTLPGRPC:
		exp, err = otlpmetricgrpc.New(ctx)
	case ExporterOTLPHTTP:
		exp, err = otlpmetrichttp.New(ctx)
	case ExporterStdout:
		exp, err = stdoutmetric.New(stdoutmetric.WithWriter(os.Stderr))
	default:
		return nil, fmt.Errorf("metrics exporter %q: want one of %s", name, strings.Join(Exporters, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("metrics exporter %s: %w", name, err)
	}
	return exp, nil
}

// Exporters lists the exporter names Config accepts.
var Exporters = []string{ExporterNone, ExporterOTLPGRPC, ExporterOTLPHTTP, ExporterStdout}

// Shutdown flushes buffered spans and metrics and stops the exporters.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		if err := f(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	t.shutdown = nil
	return errors.Join(errs...)
}
