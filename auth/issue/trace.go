package issue

import (
	"context"

	"github.com/gatehouse/gatehouse"

	"github.com/gatehouse/gatehouse/store"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracer starts the spans of the store write and the signature; a no-op
// unless tracing is on (package tracing).
var tracer = otel.Tracer("github.com/gatehouse/gatehouse/auth/issue")

// startSpan starts a child of the request's span, when that is recorded;
// with tracing off it costs nothing.
func startSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, noSpan
	}
	return tracer.Start(ctx, name)
}

var noSpan = trace.SpanFromContext(context.Background())

// createSession is the store's CreateSession in a span of its own.
func (s *Service) createSession(ctx context.Context, n store.NewSession) ([]string, error) {
	withRequestID(ctx, n.Audit)
	ctx, span := startSpan(ctx, "store.create_session")
	ended, err := s.store.CreateSession(ctx, n)
	endSpan(span, err)
	return ended, err
}

// withRequestID gives events without a request id that of ctx's request.
func withRequestID(ctx context.Context, evs []gatehouse.AuditEvent) {
	id := gatehouse.RequestID(ctx)
	for i := range evs {
		if evs[i].RequestID == "" {
			evs[i].RequestID = id
		}
	}
}

// endSpan ends a span, marked as failed when err is not nil.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, "store write failed")
	}
	span.End()
}
