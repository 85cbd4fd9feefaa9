package proxy

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/scimgate/scimgate/tokens"
)

const instrumentationName = "github.com/scimgate/scimgate/proxy"

// telemetry is the proxy's tracer and instruments. With tracing off no span
// is started and the request's context is left alone. Requests are counted
// with an atomic add, which the meter reads when it collects: no lock, no
// allocation and no attribute lookup per request.
type telemetry struct {
	tracer     trace.Tracer // nil: tracing off
	propagator propagation.TextMapPropagator
	// requests[kind][status class]; kind 0 none, 1 user, 2 service; class 0
	// for a status outside 1xx–5xx.
	requests [3][6]atomic.Int64
}

func (p *Proxy) instrument(o *Options) error {
	t := &p.tel
	if o.TracerProvider != nil {
		t.tracer = o.TracerProvider.Tracer(instrumentationName)
		t.propagator = o.Propagator
		if t.propagator == nil {
			t.propagator = propagation.TraceContext{}
		}
		// The upstream call becomes a client span, and the upstream gets a
		// traceparent so that its own spans join the trace.
		o.Transport = &tracingTransport{next: o.Transport, tracer: t.tracer, propagator: t.propagator}
		if o.Activity != nil {
			o.Activity.TraceID = traceID
		}
	}
	if o.MeterProvider == nil {
		return nil
	}
	m := o.MeterProvider.Meter(instrumentationName)
	requests, err := m.Int64ObservableCounter("scimgate.proxy.requests", metric.WithUnit("{request}"),
		metric.WithDescription("Requests through the proxy, by status class and identity kind."))
	if err != nil {
		return err
	}
	var opts [3][6]metric.ObserveOption
	for k, kind := range []string{"none", string(tokens.KindUser), string(tokens.KindService)} {
		for c := range 6 {
			class := "other"
			if c > 0 {
				class = string(rune('0'+c)) + "xx"
			}
			opts[k][c] = metric.WithAttributes(attribute.String("http.response.status_class", class), attribute.String("scimgate.identity.kind", kind))
		}
	}
	_, err = m.RegisterCallback(func(_ context.Context, ob metric.Observer) error {
		for k := range t.requests {
			for c := range t.requests[k] {
				if n := t.requests[k][c].Load(); n > 0 {
					ob.ObserveInt64(requests, n, opts[k][c])
				}
			}
		}
		return nil
	}, requests)
	if err != nil {
		return err
	}
	if o.Activity != nil {
		dropped, err := m.Int64ObservableCounter("scimgate.activity_log.dropped", metric.WithUnit("{line}"),
			metric.WithDescription("Activity log lines dropped because the writer could not keep up."))
		if err != nil {
			return err
		}
		activity := o.Activity
		_, err = m.RegisterCallback(func(_ context.Context, ob metric.Observer) error {
			ob.ObserveInt64(dropped, activity.Dropped())
			return nil
		}, dropped)
		if err != nil {
			return err
		}
	}
	return nil
}

func traceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

// startSpan starts the request's server span, continuing the caller's trace
// if it sent a traceparent.
func (t *telemetry) startSpan(r *http.Request) (*http.Request, trace.Span) {
	ctx := t.propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := t.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		span.SetAttributes(
			semconv.HTTPRequestMethodKey.String(r.Method),
			semconv.URLPath(r.URL.Path),
			semconv.URLScheme(scheme(r)),
			semconv.ServerAddress(r.Host),
			semconv.UserAgentOriginal(r.UserAgent()),
		)
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			span.SetAttributes(semconv.NetworkPeerAddress(host))
		}
	}
	return r.WithContext(ctx), span
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// endSpan records the outcome on the server span: who called, with which
// token (its ID, never the token), and how it ended.
func endSpan(span trace.Span, id *tokens.Identity, refusal error, rec *recorder) {
	if span.IsRecording() {
		span.SetAttributes(semconv.HTTPResponseStatusCode(rec.status), semconv.HTTPResponseBodySize(int(rec.bytes)))
		if id != nil {
			span.SetAttributes(
				attribute.String("enduser.id", id.OwnerID),
				attribute.String("scimgate.identity.kind", string(id.Kind)),
				attribute.String("scimgate.identity.name", id.OwnerName),
				attribute.String("scimgate.org.id", id.OrgID),
				attribute.String("scimgate.token.id", id.TokenID),
				attribute.String("scimgate.token.prefix", id.DisplayPrefix),
			)
		}
		if refusal != nil {
			span.SetAttributes(attribute.String("scimgate.refusal", refusal.Error()))
		}
		if rec.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(rec.status))
		}
	}
	span.End()
}

// tracingTransport makes each upstream call a client span and sends the
// trace context upstream. otelhttp's Transport does the same but also builds
// metric attributes on every request, meter or not, which cost about 6 % of
// the proxy's throughput under load; scimgate counts requests itself.
type tracingTransport struct {
	next       http.RoundTripper
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

func (t *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, span := t.tracer.Start(req.Context(), req.Method, trace.WithSpanKind(trace.SpanKindClient))
	// req is ReverseProxy's outbound copy, ours to change; the context only
	// matters to the span, so the request keeps its own.
	t.propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	if span.IsRecording() {
		span.SetAttributes(semconv.HTTPRequestMethodKey.String(req.Method), semconv.ServerAddress(req.URL.Hostname()),
			semconv.URLFull(req.URL.Scheme+"://"+req.URL.Host+req.URL.Path))
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "upstream request failed")
		span.End()
		return nil, err
	}
	if span.IsRecording() {
		span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
		if resp.StatusCode >= 500 {
			span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
		}
	}
	// The span ends when the upstream's response headers arrive: the body
	// streams to the client under the server span.
	span.End()
	return resp, nil
}

// countRequest counts a finished request.
func (t *telemetry) countRequest(id *tokens.Identity, status int) {
	kind := 0
	if id != nil {
		kind = 1
		if id.Kind == tokens.KindService {
			kind = 2
		}
	}
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	t.requests[kind][class].Add(1)
}
