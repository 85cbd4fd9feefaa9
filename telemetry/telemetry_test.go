package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/scimgate/scimgate/proxy"
	"github.com/scimgate/scimgate/telemetry"
	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// stack is the real proxy, authenticator and store, instrumented with an
// in-memory span recorder and a manual metric reader.
type stack struct {
	spans    *tracetest.SpanRecorder
	metrics  *sdkmetric.ManualReader
	svc      *tokens.Service
	auth     *tokens.Authenticator
	front    *httptest.Server
	org      *tokens.Org
	token    string
	tokenID  string
	upstream struct {
		sync.Mutex
		traceparent string
	}
}

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{spans: tracetest.NewSpanRecorder(), metrics: sdkmetric.NewManualReader()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.metrics))
	store, err := sqlstore.Open(context.Background(), sqltest.SQLitePath(t), sqlstore.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	policy, _ := tokens.NewPolicy(tokens.PolicyConfig{})
	s.svc = tokens.NewService(store, policy)
	s.auth = tokens.NewAuthenticator(store, policy, tokens.AuthOptions{})
	s.svc.OnCommit = s.auth.Apply
	if err := s.auth.Instrument(tp, mp); err != nil {
		t.Fatal(err)
	}
	if err := s.svc.Instrument(tp, mp); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s.org, _ = s.svc.CreateOrg(ctx, tokens.Operator, "acme", 0)
	st, sec, err := s.svc.CreateServiceToken(ctx, tokens.Operator, s.org.ID, tokens.ServiceTokenSpec{Name: "sync"})
	if err != nil {
		t.Fatal(err)
	}
	s.token, s.tokenID = sec.Plaintext(), st.ID

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.upstream.Lock()
		s.upstream.traceparent = r.Header.Get("Traceparent")
		s.upstream.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	p, err := proxy.New(s.auth, proxy.Options{Upstream: u, HeaderPrefix: "X-Scimgate-",
		TracerProvider: tp, MeterProvider: mp, Propagator: propagation.TraceContext{}})
	if err != nil {
		t.Fatal(err)
	}
	s.front = httptest.NewServer(p)
	t.Cleanup(s.front.Close)
	s.spans.Reset()
	return s
}

func (s *stack) get(t *testing.T, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", s.front.URL+"/orders", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func attr(span sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range span.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func TestProxiedRequestSpanTree(t *testing.T) {
	s := newStack(t)
	for i, wantHit := range []bool{false, true} {
		s.spans.Reset()
		if code := s.get(t, s.token); code != 200 {
			t.Fatalf("status %d", code)
		}
		spans := s.spans.Ended()
		var server, auth, client sdktrace.ReadOnlySpan
		var queries []sdktrace.ReadOnlySpan
		for _, sp := range spans {
			switch {
			case sp.SpanKind() == trace.SpanKindServer:
				server = sp
			case sp.Name() == "scimgate.auth":
				auth = sp
			case sp.SpanKind() == trace.SpanKindClient && sp.Name() == "GET":
				client = sp
			case strings.HasPrefix(sp.Name(), "sql."):
				queries = append(queries, sp)
			}
		}
		if server == nil || auth == nil || client == nil {
			names := []string{}
			for _, sp := range spans {
				names = append(names, sp.Name()+"/"+sp.SpanKind().String())
			}
			t.Fatalf("request %d: spans %v, want a server span, scimgate.auth and an upstream client span", i, names)
		}
		if auth.Parent().SpanID() != server.SpanContext().SpanID() || client.Parent().SpanID() != server.SpanContext().SpanID() {
			t.Errorf("request %d: auth and upstream spans are not children of the server span", i)
		}
		if v, _ := attr(auth, "scimgate.auth.cache_hit"); v.AsBool() != wantHit {
			t.Errorf("request %d: cache_hit = %v, want %v", i, v.AsBool(), wantHit)
		}
		if v, _ := attr(auth, "scimgate.auth.outcome"); v.AsString() != "allowed" {
			t.Errorf("request %d: outcome = %q, want allowed", i, v.AsString())
		}
		for key, want := range map[string]string{"scimgate.token.id": s.tokenID, "scimgate.identity.kind": "service", "scimgate.identity.name": "sync", "http.request.method": "GET"} {
			if v, _ := attr(server, key); v.AsString() != want {
				t.Errorf("request %d: server span %s = %q, want %q", i, key, v.AsString(), want)
			}
		}
		if v, ok := attr(server, "enduser.id"); !ok || v.AsString() == "" {
			t.Errorf("request %d: server span has no enduser.id", i)
		}
		for _, sp := range spans {
			for _, kv := range sp.Attributes() {
				if strings.Contains(kv.Value.Emit(), s.token[8:]) {
					t.Errorf("span %s attribute %s holds the token", sp.Name(), kv.Key)
				}
			}
		}
		// On a miss the store query is traced under the auth span; on a hit there is none.
		if wantHit && len(queries) > 0 || !wantHit && len(queries) == 0 {
			t.Errorf("request %d (cache hit %v): %d store query spans", i, wantHit, len(queries))
		}
		for _, q := range queries {
			if q.Parent().SpanID() != auth.SpanContext().SpanID() {
				t.Errorf("store query span %s is not a child of scimgate.auth", q.Name())
			}
		}
		s.upstream.Lock()
		tp := s.upstream.traceparent
		s.upstream.Unlock()
		if !strings.Contains(tp, server.SpanContext().TraceID().String()) {
			t.Errorf("upstream got traceparent %q, want one in trace %s", tp, server.SpanContext().TraceID())
		}
	}
}

func TestRefusalIsTracedWithItsReason(t *testing.T) {
	s := newStack(t)
	s.get(t, tokens.NewSecret(tokens.KindUser).Plaintext())
	for _, sp := range s.spans.Ended() {
		if sp.Name() == "scimgate.auth" {
			if v, _ := attr(sp, "scimgate.auth.reason"); v.AsString() != "unknown" {
				t.Errorf("auth span reason = %q, want unknown", v.AsString())
			}
			return
		}
	}
	t.Fatal("no scimgate.auth span for a refused token")
}

func TestDeactivationSpanRecordsExpiredTokens(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	u := &tokens.User{OrgID: s.org.ID, UserName: "alice", Active: true}
	s.svc.CreateUser(ctx, tokens.Operator, u)
	s.svc.CreateUserToken(ctx, tokens.Operator, s.org.ID, u.ID, "a")
	s.svc.CreateUserToken(ctx, tokens.Operator, s.org.ID, u.ID, "b")
	s.spans.Reset()
	if _, err := s.svc.DeactivateUser(ctx, tokens.Operator, s.org.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	for _, sp := range s.spans.Ended() {
		if sp.Name() != "scimgate.user.deactivate" {
			continue
		}
		for _, ev := range sp.Events() {
			if ev.Name == "tokens expired" {
				for _, kv := range ev.Attributes {
					if kv.Key == "scimgate.tokens.expired" && kv.Value.AsInt64() == 2 {
						return
					}
				}
			}
		}
		t.Fatalf("deactivation span events %v, want tokens expired = 2", sp.Events())
	}
	t.Fatal("no scimgate.user.deactivate span")
}

// collect reads every metric point into name → list of (attributes, value).
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string][]point {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string][]point{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					out[m.Name] = append(out[m.Name], point{dp.Attributes, float64(dp.Value)})
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					out[m.Name] = append(out[m.Name], point{dp.Attributes, float64(dp.Value)})
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					out[m.Name] = append(out[m.Name], point{dp.Attributes, float64(dp.Count)})
				}
			case metricdata.Histogram[int64]:
				for _, dp := range d.DataPoints {
					out[m.Name] = append(out[m.Name], point{dp.Attributes, float64(dp.Count)})
				}
			}
		}
	}
	return out
}

type point struct {
	attrs attribute.Set
	value float64
}

func value(points []point, kv ...attribute.KeyValue) float64 {
	want := attribute.NewSet(kv...)
	for _, p := range points {
		if p.attrs.Equals(&want) {
			return p.value
		}
	}
	return -1
}

func TestMetrics(t *testing.T) {
	s := newStack(t)
	for range 3 {
		s.get(t, s.token)
	}
	s.get(t, "garbage")
	if err := s.svc.RevokeServiceToken(context.Background(), tokens.Operator, "", s.tokenID); err != nil {
		t.Fatal(err)
	}
	s.get(t, s.token)
	m := collect(t, s.metrics)
	checks := []struct {
		name  string
		attrs []attribute.KeyValue
		want  float64
	}{
		{"scimgate.proxy.requests", []attribute.KeyValue{attribute.String("http.response.status_class", "2xx"), attribute.String("scimgate.identity.kind", "service")}, 3},
		{"scimgate.proxy.requests", []attribute.KeyValue{attribute.String("http.response.status_class", "4xx"), attribute.String("scimgate.identity.kind", "none")}, 2},
		{"scimgate.auth.decisions", []attribute.KeyValue{attribute.String("outcome", "allowed")}, 3},
		{"scimgate.auth.decisions", []attribute.KeyValue{attribute.String("outcome", "refused"), attribute.String("reason", "malformed")}, 1},
		{"scimgate.auth.decisions", []attribute.KeyValue{attribute.String("outcome", "refused"), attribute.String("reason", "revoked")}, 1},
		{"scimgate.auth.cache.hits", nil, 2},
		{"scimgate.auth.cache.misses", nil, 2},
		{"scimgate.auth.cache.invalidations", nil, 1},
		{"scimgate.auth.duration", nil, 5},
	}
	for _, c := range checks {
		if got := value(m[c.name], c.attrs...); got != c.want {
			t.Errorf("%s%v = %v, want %v (all: %v)", c.name, c.attrs, got, c.want, m[c.name])
		}
	}
}

func TestHotPathMetricsDoNotAllocate(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	if _, err := s.auth.Authenticate(ctx, s.token); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { s.auth.Authenticate(ctx, s.token) }); n != 0 {
		t.Errorf("a cached, instrumented Authenticate allocates %v times, want 0", n)
	}
	counter, _ := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())).Meter("t").Int64Counter("c")
	opts := []metric.AddOption{metric.WithAttributes(attribute.String("k", "v"))}
	if n := testing.AllocsPerRun(1000, func() { counter.Add(ctx, 1, opts...) }); n != 0 {
		t.Errorf("a counter with prebuilt attribute options allocates %v times, want 0", n)
	}
}

func TestPrometheusEndpoint(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "scimgate-test", Prometheus: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	c, _ := tel.MeterProvider.Meter("t").Int64Counter("scimgate.test.things")
	c.Add(context.Background(), 7)
	srv := httptest.NewServer(tel.MetricsHandler)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "scimgate_test_things_total") || !strings.Contains(string(body), " 7") {
		t.Errorf("/metrics lacks the counter:\n%s", body)
	}
}

func TestSetupRejectsUnknownExporter(t *testing.T) {
	_, err := telemetry.Setup(context.Background(), telemetry.Config{TracesExporter: "zipkin"})
	if err == nil || !strings.Contains(err.Error(), "otlp-grpc") {
		t.Errorf("Setup with an unknown exporter = %v, want an error listing the known ones", err)
	}
}

func TestLogLinesCarryTheTrace(t *testing.T) {
	var buf bytes.Buffer
	log := telemetry.NewLogger(&buf, slog.LevelInfo)
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "op")
	log.InfoContext(ctx, "inside")
	log.Info("outside")
	span.End()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var inside, outside map[string]any
	json.Unmarshal([]byte(lines[0]), &inside)
	json.Unmarshal([]byte(lines[1]), &outside)
	if inside["trace_id"] != span.SpanContext().TraceID().String() || inside["span_id"] != span.SpanContext().SpanID().String() {
		t.Errorf("a line inside a span = %s, want its trace_id and span_id", lines[0])
	}
	if _, ok := outside["trace_id"]; ok {
		t.Errorf("a line outside any span has a trace_id: %s", lines[1])
	}
}
