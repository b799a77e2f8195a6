package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is a loopback OTLP/HTTP trace receiver.
type otlpReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "not an OTLP/HTTP trace export", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(req.Body)
		var ex coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &ex); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range ex.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					r.services = append(r.services, a.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(r.Close)
	return r
}

// TestServeExportsTraces is the tracing acceptance test: gatehouse serve
// with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a loopback receiver sends
// one trace for a client's token request and its call through the gateway
// (the client's traceparent), with the hash, signature, store and upstream
// spans linked to the requests' spans, and the upstream sees the same
// trace id.
func TestServeExportsTraces(t *testing.T) {
	recv := newOTLPReceiver(t)
	// The SDK reads its settings from the process environment.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "gatehouse-test")
	var upMu sync.Mutex
	var upTrace string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upMu.Lock()
		upTrace = r.Header.Get("Traceparent")
		upMu.Unlock()
	}))
	defer up.Close()

	cfg := app.DefaultConfig()
	cfg.Addr, cfg.Dev = "127.0.0.1:0", true
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.MasterKey = apptest.TestMasterKey
	cfg.SQLiteSync = "normal"
	cfg.Upstreams = []string{"api=" + up.URL}
	var out, errb syncBuf
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: os.Getenv}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- serveWith(ctx, e, cfg, slog.New(slog.NewTextHandler(&errb, nil)), ready) }()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	m := regexp.MustCompile(`user\s+demo / (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no demo password in:\n%s", out.String())
	}
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	tp := "00-" + traceID + "-b7ad6b7169203331-01"
	req, _ := http.NewRequest(http.MethodPost, base+"/api/security/token/v2", strings.NewReader(`{"username":"demo","password":"`+m[1]+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", tp)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ AccessToken string }
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodGet, base+"/api/entity/customer", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("traceparent", tp)
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("through the gateway: %v %v", err, resp)
	}
	resp.Body.Close()

	// Stopping the server flushes the spans.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	byName := map[string]*tracepb.Span{}
	for _, s := range recv.spans {
		if hex.EncodeToString(s.TraceId) != traceID {
			t.Errorf("span %s in trace %x, not the client's", s.Name, s.TraceId)
		}
		byName[s.Name] = s
	}
	parentOf := map[string]string{"password.check": "POST p21_token_v2", "token.sign": "POST p21_token_v2",
		"store.create_session": "POST p21_token_v2", "upstream api": "GET gateway"}
	for child, parent := range parentOf {
		c, p := byName[child], byName[parent]
		if c == nil || p == nil {
			t.Fatalf("spans received: %v; want %s under %s", keysOf(byName), child, parent)
		}
		if hex.EncodeToString(c.ParentSpanId) != hex.EncodeToString(p.SpanId) {
			t.Errorf("%s is not a child of %s", child, parent)
		}
	}
	for _, s := range recv.services {
		if s != "gatehouse-test" {
			t.Errorf("service.name %q, want OTEL_SERVICE_NAME's", s)
		}
	}
	upMu.Lock()
	defer upMu.Unlock()
	if want := "00-" + traceID + "-" + hex.EncodeToString(byName["upstream api"].SpanId) + "-01"; upTrace != want {
		t.Errorf("the upstream received traceparent %q, want %q", upTrace, want)
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
