package scim

import (
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

const instrumentationName = "github.com/scimgate/scimgate/scim"

// instrumented traces every SCIM operation as a server span (the domain's
// spans, such as a deactivation with the count of tokens it expired, are its
// children) and counts operations by resource, method and status.
type instrumented struct {
	next       http.Handler
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	operations metric.Int64Counter
}

func instrument(next http.Handler, o Options) (http.Handler, error) {
	if o.TracerProvider == nil && o.MeterProvider == nil {
		return next, nil
	}
	i := &instrumented{next: next, propagator: o.Propagator}
	if o.TracerProvider != nil {
		i.tracer = o.TracerProvider.Tracer(instrumentationName)
		if i.propagator == nil {
			i.propagator = propagation.TraceContext{}
		}
	}
	if o.MeterProvider != nil {
		var err error
		i.operations, err = o.MeterProvider.Meter(instrumentationName).Int64Counter("scimgate.scim.operations",
			metric.WithUnit("{operation}"), metric.WithDescription("SCIM operations by resource, method and status."))
		if err != nil {
			return nil, err
		}
	}
	return i, nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (i *instrumented) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resource := scimResource(r.URL.Path)
	sw := &statusWriter{ResponseWriter: w}
	var span trace.Span
	if i.tracer != nil {
		ctx := i.propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span = i.tracer.Start(ctx, "SCIM "+r.Method+" "+resource, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path),
				attribute.String("scim.resource", resource)))
		r = r.WithContext(ctx)
	}
	i.next.ServeHTTP(sw, r)
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	if span != nil {
		span.SetAttributes(semconv.HTTPResponseStatusCode(sw.status))
		if sw.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
		span.End()
	}
	if i.operations != nil {
		i.operations.Add(r.Context(), 1, metric.WithAttributes(attribute.String("scim.resource", resource),
			attribute.String("http.request.method", r.Method), attribute.String("http.response.status_code", strconv.Itoa(sw.status))))
	}
}

// scimResource is the resource type a path names: Users, Groups, Schemas, …
func scimResource(path string) string {
	rest := strings.TrimPrefix(strings.TrimPrefix(path, Prefix), "/v2")
	rest = strings.TrimPrefix(rest, "/")
	name, _, _ := strings.Cut(rest, "/")
	switch name {
	case "Users", "Groups", "Schemas", "ResourceTypes", "ServiceProviderConfig", "Me", "Bulk":
		return name
	case ".search":
		return "search"
	}
	return "other"
}
