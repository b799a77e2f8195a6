package tracing_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/tracing"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestEnabled(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_SERVICE_NAME": "x"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, false},
		{map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, false},
	}
	for _, c := range cases {
		if got := tracing.Enabled(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("%v: %v, want %v", c.env, got, c.want)
		}
	}
	// Off: Setup installs nothing.
	stop, err := tracing.Setup(context.Background(), func(string) string { return "" }, "test")
	if err != nil || stop(context.Background()) != nil {
		t.Fatal(err)
	}
	if _, isSDK := otel.GetTracerProvider().(*sdktrace.TracerProvider); isSDK {
		t.Fatal("a provider was installed without OTEL_* variables")
	}
	for _, env := range []map[string]string{
		{"OTEL_TRACES_EXPORTER": "console"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
	} {
		if _, err := tracing.Setup(context.Background(), func(k string) string { return env[k] }, "test"); err == nil {
			t.Errorf("%v: accepted", env)
		}
	}
}

var (
	memOnce sync.Once
	mem     *tracetest.InMemoryExporter
)

// memoryTracing installs, once for this test binary, a provider that
// records every span in memory (the SDK's in-memory exporter).
func memoryTracing() *tracetest.InMemoryExporter {
	memOnce.Do(func() {
		mem = tracetest.NewInMemoryExporter()
		otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(mem)))
		otel.SetTextMapPropagator(tracing.Propagator)
	})
	mem.Reset()
	return mem
}

const (
	traceID      = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID = "00f067aa0ba902b7"
	traceparent  = "00-" + traceID + "-" + clientSpanID + "-01"
)

func byName(spans tracetest.SpanStubs) map[string]tracetest.SpanStub {
	m := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		m[s.Name] = s
	}
	return m
}

// TestSpans: with tracing on, a token request continues the client's
// trace (W3C traceparent) with one span for the request and children for
// the password hash, the signature and the store write; a request through
// the gateway has a child span for the upstream call, and the upstream
// receives the same trace id (and the request id).
func TestSpans(t *testing.T) {
	exp := memoryTracing()
	var mu sync.Mutex
	var upstream http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstream = r.Header.Clone()
		mu.Unlock()
		w.Write([]byte(`{}`))
	}))
	defer up.Close()
	e := apptest.New(t, func(c *app.Config) { c.Upstreams = []string{"api=" + up.URL}; c.Tracing = true })
	e.AddUser("api_user", "pw-one-two", true, "")
	exp.Reset() // the fixture's own work

	resp, body := e.Post("/api/security/token/v2", "application/json", `{"username":"api_user","password":"pw-one-two"}`, "traceparent", traceparent)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	spans := byName(exp.GetSpans())
	root, ok := spans["POST p21_token_v2"]
	if !ok {
		t.Fatalf("no span for the request: %v", names(exp.GetSpans()))
	}
	if root.SpanContext.TraceID().String() != traceID || root.Parent.SpanID().String() != clientSpanID || !root.Parent.IsRemote() {
		t.Errorf("request span %s, parent %s: not the client's trace", root.SpanContext.TraceID(), root.Parent.SpanID())
	}
	if root.SpanKind != trace.SpanKindServer || attr(root, "http.response.status_code") != "200" || attr(root, "gatehouse.request_id") != resp.Header.Get("X-Request-Id") {
		t.Errorf("request span: %v %v", root.SpanKind, root.Attributes)
	}
	for _, child := range []string{"password.check", "token.sign", "store.create_session"} {
		s, ok := spans[child]
		if !ok {
			t.Errorf("no %s span: %v", child, names(exp.GetSpans()))
			continue
		}
		if s.Parent.SpanID() != root.SpanContext.SpanID() || s.SpanContext.TraceID().String() != traceID {
			t.Errorf("%s is not a child of the request span", child)
		}
	}
	if attr(spans["token.sign"], "gatehouse.algorithm") != "RS256" {
		t.Errorf("token.sign: %v", spans["token.sign"].Attributes)
	}
	var tok struct{ AccessToken string }
	json.Unmarshal(body, &tok)

	// Through the gateway.
	exp.Reset()
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/api/entity/customer", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("traceparent", traceparent)
	req.Header.Set("X-Request-Id", "client-chosen-id-1")
	resp, body = e.Do(req)
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") != "client-chosen-id-1" {
		t.Fatalf("gateway: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	spans = byName(exp.GetSpans())
	gw, call := spans["GET gateway"], spans["upstream api"]
	if gw.SpanContext.TraceID().String() != traceID || call.Parent.SpanID() != gw.SpanContext.SpanID() || call.SpanKind != trace.SpanKindClient {
		t.Fatalf("gateway spans: %v", names(exp.GetSpans()))
	}
	mu.Lock()
	defer mu.Unlock()
	want := "00-" + traceID + "-" + call.SpanContext.SpanID().String() + "-01"
	if got := upstream.Get("Traceparent"); got != want {
		t.Errorf("the upstream received traceparent %q, want %q (the upstream call's span)", got, want)
	}
	if upstream.Get("X-Request-Id") != "client-chosen-id-1" {
		t.Errorf("the upstream received X-Request-Id %q", upstream.Get("X-Request-Id"))
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}

// TestRequestIDWithoutTraceparent: a malformed client request id is
// replaced, upstream too; a request without traceparent starts a trace of
// its own, which the upstream continues.
func TestRequestIDWithoutTraceparent(t *testing.T) {
	memoryTracing()
	var got http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer up.Close()
	e := apptest.New(t, func(c *app.Config) { c.Upstreams = []string{"api=" + up.URL}; c.Tracing = true })
	_, key := e.AddConsumer(admin.NewConsumer{Name: "c", Scope: "/api"})
	tok := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`)
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/api/entity/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Request-Id", "bad id with spaces")
	resp, _ := e.Do(req)
	id := resp.Header.Get("X-Request-Id")
	if !gatehouse.ValidRequestID(id) || strings.Contains(id, " ") || got.Get("X-Request-Id") != id {
		t.Errorf("request id %q, upstream %q", id, got.Get("X-Request-Id"))
	}
	// A new trace: the upstream still gets a traceparent of gatehouse's span.
	if tp := got.Get("Traceparent"); !strings.HasPrefix(tp, "00-") || strings.Contains(tp, traceID) {
		t.Errorf("traceparent %q", tp)
	}
}
