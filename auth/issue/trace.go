package issue

import (
	"context"

	"github.com/gatehouse/gatehouse/store"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracer starts the spans of the store write and the signature; a no-op
// unless tracing is on (package tracing).
var tracer = otel.Tracer("github.com/gatehouse/gatehouse/auth/issue")

// createSession is the store's CreateSession in a span of its own.
func (s *Service) createSession(ctx context.Context, n store.NewSession) ([]string, error) {
	ctx, span := tracer.Start(ctx, "store.create_session")
	ended, err := s.store.CreateSession(ctx, n)
	endSpan(span, err)
	return ended, err
}

// endSpan ends a span, marked as failed when err is not nil.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, "store write failed")
	}
	span.End()
}
