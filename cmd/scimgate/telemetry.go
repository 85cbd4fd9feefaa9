package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/scimgate/scimgate/telemetry"
)

// TelemetryConfig configures OpenTelemetry. OTLP endpoints, headers and TLS
// come from the standard OTEL_EXPORTER_OTLP_* variables; OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// are honoured too.
type TelemetryConfig struct {
	ServiceName string                 `yaml:"service_name"`
	Traces      TelemetryTracesConfig  `yaml:"traces"`
	Metrics     TelemetryMetricsConfig `yaml:"metrics"`
}

// TelemetryTracesConfig selects the trace exporter and sampling.
type TelemetryTracesConfig struct {
	// Exporter: none, otlp-grpc, otlp-http or stdout; "" follows
	// OTEL_TRACES_EXPORTER and is none without it.
	Exporter string `yaml:"exporter"`
	// SampleRatio is the share of new traces recorded, 0 to 1; requests that
	// arrive in a sampled trace are always recorded (parent-based).
	SampleRatio float64 `yaml:"sample_ratio"`
}

// TelemetryMetricsConfig selects where metrics go.
type TelemetryMetricsConfig struct {
	// Prometheus serves /metrics on the management listener.
	Prometheus bool `yaml:"prometheus"`
	// Exporter pushes metrics too: none, otlp-grpc, otlp-http or stdout.
	Exporter string `yaml:"exporter"`
	// Interval between pushes.
	Interval time.Duration `yaml:"interval"`
}

func defaultTelemetryConfig() TelemetryConfig {
	return TelemetryConfig{
		ServiceName: "scimgate",
		Traces:      TelemetryTracesConfig{Exporter: "", SampleRatio: 1},
		Metrics:     TelemetryMetricsConfig{Prometheus: true, Exporter: telemetry.ExporterNone, Interval: time.Minute},
	}
}

func (c *TelemetryConfig) validate() error {
	var errs []error
	if strings.TrimSpace(c.ServiceName) == "" {
		errs = append(errs, errors.New("telemetry.service_name: must not be empty"))
	}
	known := strings.Join(telemetry.Exporters, ", ")
	if c.Traces.Exporter != "" && !slices.Contains(telemetry.Exporters, c.Traces.Exporter) {
		errs = append(errs, fmt.Errorf("telemetry.traces.exporter: %q is not one of %s", c.Traces.Exporter, known))
	}
	if c.Traces.SampleRatio < 0 || c.Traces.SampleRatio > 1 {
		errs = append(errs, fmt.Errorf("telemetry.traces.sample_ratio: %v is not between 0 and 1", c.Traces.SampleRatio))
	}
	if !slices.Contains(telemetry.Exporters, c.Metrics.Exporter) {
		errs = append(errs, fmt.Errorf("telemetry.metrics.exporter: %q is not one of %s", c.Metrics.Exporter, known))
	}
	if c.Metrics.Exporter != telemetry.ExporterNone && c.Metrics.Interval <= 0 {
		errs = append(errs, errors.New("telemetry.metrics.interval: must be positive when metrics are pushed"))
	}
	return errors.Join(errs...)
}

func (c *TelemetryConfig) setup(ctx context.Context) (*telemetry.Telemetry, error) {
	return telemetry.Setup(ctx, telemetry.Config{
		ServiceName:     c.ServiceName,
		TracesExporter:  c.Traces.Exporter,
		SampleRatio:     c.Traces.SampleRatio,
		Prometheus:      c.Metrics.Prometheus,
		MetricsExporter: c.Metrics.Exporter,
		MetricsInterval: c.Metrics.Interval,
	})
}
