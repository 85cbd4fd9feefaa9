package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

// otelcolPath finds the OpenTelemetry Collector that .ci/otelcol.sh builds.
func otelcolPath(t *testing.T) string {
	if p := os.Getenv("SCIMGATE_OTELCOL"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, ".cache", "scimgate", "otelcol-0.140.0", "otelcol-scimgate")
	if _, err := os.Stat(p); err != nil {
		t.Skip("no OpenTelemetry Collector: run .ci/otelcol.sh (CI does) or set SCIMGATE_OTELCOL")
	}
	return p
}

// collector is a real OpenTelemetry Collector receiving OTLP over gRPC and
// writing every span it gets to its log.
type collector struct {
	endpoint string
	syncBuffer
}

func startCollector(t *testing.T) *collector {
	bin := otelcolPath(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	config := filepath.Join(t.TempDir(), "otelcol.yaml")
	os.WriteFile(config, []byte(fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
exporters:
  debug:
    verbosity: detailed
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
`, addr)), 0o600)
	c := &collector{endpoint: addr}
	cmd := exec.Command(bin, "--config", config)
	cmd.Stdout, cmd.Stderr = c, c
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("the collector did not listen on %s:\n%s", addr, c)
		}
	}
}

// TestTraceReachesARealCollector sends one request through scimgate to an
// upstream that is itself traced, and reads both services' spans back from
// an OpenTelemetry Collector, in one trace.
func TestTraceReachesARealCollector(t *testing.T) {
	col := startCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+col.endpoint)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")

	// The upstream: another service with its own tracer, exporting to the
	// same collector and joining the trace through traceparent.
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(col.endpoint), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	upTP := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("orders-api"))))
	up := httptest.NewServer(otelhttp.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "orders")
	}), "orders", otelhttp.WithTracerProvider(upTP), otelhttp.WithPropagators(propagation.TraceContext{})))
	defer up.Close()

	c := newTestCLI(t, "sqlite")
	c.dsn = newSQLiteDB(t)
	c.ok("org", "create", "--name", "acme")
	var tok createdToken
	c.okJSON(&tok, "service-token", "create", "--org", "acme", "--name", "traced")
	config := filepath.Join(t.TempDir(), "scimgate.yaml")
	os.WriteFile(config, []byte("telemetry:\n  traces:\n    exporter: otlp-grpc\n    sample_ratio: 1\n"), 0o600)
	s := startServe(t, c.dsn, nil, "--config", config, "--upstream", up.URL)

	req, _ := http.NewRequest("GET", "http://"+s.addrs["proxy"]+"/orders", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if err := s.stop(); err != nil { // flushes scimgate's spans
		t.Fatal(err)
	}
	upTP.Shutdown(context.Background())

	// The debug exporter prints each batch under its resource's service.name.
	spanRe := regexp.MustCompile(`(?m)Trace ID\s*: ([0-9a-f]{32})\n.*\n\s*ID\s*: [0-9a-f]{16}\n\s*Name\s*: (.+)\n\s*Kind\s*: (\w+)`)
	// service/name/kind → trace IDs: other work (the bootstrap, the sweep
	// of inactive tokens) makes spans of the same name in traces of its own.
	var found map[string]map[string]bool
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		found = map[string]map[string]bool{}
		for _, batch := range strings.Split(col.String(), "ResourceSpans #")[1:] {
			service := "?"
			if m := regexp.MustCompile(`service\.name: Str\(([^)]*)\)`).FindStringSubmatch(batch); m != nil {
				service = m[1]
			}
			for _, m := range spanRe.FindAllStringSubmatch(batch, -1) {
				key := service + "/" + m[2] + "/" + m[3]
				if found[key] == nil {
					found[key] = map[string]bool{}
				}
				found[key][m[1]] = true
			}
		}
		if len(found["scimgate/GET/Server"]) > 0 && len(found["orders-api/GET/Server"]) > 0 {
			break
		}
	}
	only := func(key string) string { // the one trace of a span made once
		for id := range found[key] {
			if len(found[key]) == 1 {
				return id
			}
		}
		return ""
	}
	gate, upstream := only("scimgate/GET/Server"), only("orders-api/GET/Server")
	if gate == "" || upstream == "" {
		t.Fatalf("spans in the collector %v, want scimgate's server span and the upstream's; collector log:\n%s", found, col)
	}
	if gate != upstream {
		t.Errorf("scimgate's span is in trace %s, the upstream's in %s: want one trace", gate, upstream)
	}
	for _, want := range []string{"scimgate/scimgate.auth/Internal", "scimgate/GET/Client", "scimgate/sql.conn.query/Client"} {
		if !found[want][gate] {
			t.Errorf("span %s in traces %v, want one in %s", want, found[want], gate)
		}
	}
}

// TestMetricsEndpoint scrapes /metrics on the real server after traffic and
// a revocation made by another process.
func TestMetricsEndpoint(t *testing.T) {
	up := newRecordingUpstream(t)
	c := newTestCLI(t, "sqlite")
	c.ok("org", "create", "--name", "acme")
	var tok createdToken
	c.okJSON(&tok, "service-token", "create", "--org", "acme", "--name", "scraped")
	s := startServe(t, c.dsn, nil, "--upstream", up.URL)
	call := func() int {
		code, _ := proxyGet(t, http.DefaultClient, "http://"+s.addrs["proxy"]+"/x", tok.Token, nil)
		return code
	}
	for range 5 {
		call()
	}
	c.ok("service-token", "revoke", tok.ID)
	for deadline := time.Now().Add(5 * time.Second); call() != 401; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the revocation did not reach the server")
		}
	}
	_, body := get(t, "http://"+s.addrs["management"]+"/metrics")
	for _, want := range []string{
		`scimgate_proxy_requests_total{http_response_status_class="2xx",`,
		`outcome="refused",reason="revoked"} 1`,
		"scimgate_auth_cache_hits_total",
		"scimgate_auth_cache_size",
		"scimgate_changelog_applied_total",
		"scimgate_changelog_propagation_lag_seconds_count",
		"scimgate_auth_duration_seconds_bucket",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}
