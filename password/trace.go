package password

import "go.opentelemetry.io/otel"

// tracer starts the span of a password check; a no-op unless tracing is on
// (package tracing).
var tracer = otel.Tracer("github.com/gatehouse/gatehouse/password")
