package gateway

import (
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

var tracer = otel.Tracer("github.com/gatehouse/gatehouse/server/gateway")

// tracedTransport makes the upstream call a child span of the request's
// and sends the trace context (W3C traceparent) upstream with it. With
// tracing off the call goes through untouched.
type tracedTransport struct {
	rt     http.RoundTripper
	family string
}

func (t tracedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !trace.SpanFromContext(r.Context()).IsRecording() {
		return t.rt.RoundTrip(r)
	}
	ctx, span := tracer.Start(r.Context(), "upstream "+t.family, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("gatehouse.family", t.family), attribute.String("http.request.method", r.Method),
			attribute.String("server.address", r.URL.Host)))
	defer span.End()
	// A RoundTripper leaves its request as it is: the headers go on a copy.
	out := r.Clone(ctx)
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(out.Header))
	resp, err := t.rt.RoundTrip(out)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "upstream call failed")
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
	}
	return resp, nil
}
