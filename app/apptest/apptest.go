// Package apptest starts a complete gatehouse server in-process for tests:
// a real store in a temporary directory, real keys, real HTTP through
// httptest, and a log buffer the test can inspect.
package apptest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/auth/admin"
)

// Env is a running test server.
type Env struct {
	T      testing.TB
	App    *app.App
	Server *httptest.Server
	URL    string
	Cfg    app.Config
	// Log holds everything the server logged (at debug level).
	Log *SyncBuffer

	cancel context.CancelFunc
	done   chan struct{}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMasterKey is a fixed master key for tests (32 bytes, base64).
var TestMasterKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// Config returns a test configuration on a fresh data dir: no rate limit,
// a fast change feed, debug logging.
func Config(t testing.TB) app.Config {
	cfg := app.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Dev = true
	cfg.MasterKey = TestMasterKey
	cfg.RateLimit = 0
	cfg.FeedInterval = 50 * 1e6 // 50 ms
	cfg.SQLiteSync = "normal"
	return cfg
}

// Start runs a server with cfg (see Config) until the test ends.
func Start(t testing.TB, cfg app.Config) *Env {
	t.Helper()
	return StartWithClock(t, cfg, nil)
}

// StartWithClock is Start with the server reading the time from clock (the
// system clock if nil), so that the test decides when things happen.
func StartWithClock(t testing.TB, cfg app.Config, clock gatehouse.Clock) *Env {
	t.Helper()
	logBuf := &SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	// Bound first, as serve does, so that the public URL is the real one.
	srv := httptest.NewUnstartedServer(nil)
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + srv.Listener.Addr().String()
	}
	a, err := app.New(ctx, cfg, log, clock)
	if err != nil {
		cancel()
		srv.Close()
		t.Fatalf("app.New: %v", err)
	}
	srv.Config.Handler = a.Handler
	srv.Start()
	e := &Env{T: t, App: a, Server: srv, URL: srv.URL, Cfg: a.Cfg, Log: logBuf, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		a.Run(ctx)
	}()
	t.Cleanup(e.Close)
	return e
}

// New starts a server on a fresh data dir; mutate may adjust the config.
func New(t testing.TB, mutate ...func(*app.Config)) *Env {
	t.Helper()
	cfg := Config(t)
	for _, m := range mutate {
		m(&cfg)
	}
	return Start(t, cfg)
}

// Close stops the server; tests need not call it.
func (e *Env) Close() {
	select {
	case <-e.done:
		return
	default:
	}
	e.Server.Close()
	e.cancel()
	<-e.done
	e.App.Close()
}

const actor = "test"

// AddUser creates a user with a password.
func (e *Env) AddUser(name, password string, allowOData bool, role string) gatehouse.User {
	e.T.Helper()
	u, err := e.App.Admin.AddUser(context.Background(), actor, admin.NewUser{Name: name, Password: password, AllowOData: allowOData, Role: role})
	if err != nil {
		e.T.Fatalf("AddUser %s: %v", name, err)
	}
	return u
}

// AddRole creates a role.
func (e *Env) AddRole(name string) {
	e.T.Helper()
	if _, err := e.App.Admin.AddRole(context.Background(), actor, name); err != nil {
		e.T.Fatalf("AddRole %s: %v", name, err)
	}
}

// AddConsumer registers a consumer and returns it with its key.
func (e *Env) AddConsumer(in admin.NewConsumer) (gatehouse.Consumer, string) {
	e.T.Helper()
	c, key, err := e.App.Admin.AddConsumer(context.Background(), actor, in)
	if err != nil {
		e.T.Fatalf("AddConsumer %s: %v", in.Name, err)
	}
	return c, key
}

// Do sends a request and returns the response with its body read.
func (e *Env) Do(req *http.Request) (*http.Response, []byte) {
	e.T.Helper()
	resp, err := e.Server.Client().Do(req)
	if err != nil {
		e.T.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.T.Fatalf("read body: %v", err)
	}
	return resp, b
}

// Post sends a POST with a body and content type, plus header pairs.
func (e *Env) Post(path, contentType, body string, headers ...string) (*http.Response, []byte) {
	e.T.Helper()
	req, err := http.NewRequest(http.MethodPost, e.URL+path, strings.NewReader(body))
	if err != nil {
		e.T.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return e.Do(req)
}

// Token sends a V2 token request with a JSON body and returns the access
// token; anything but a 200 fails the test.
func (e *Env) Token(body string) string {
	e.T.Helper()
	resp, b := e.Post("/api/security/token/v2", "application/json", body)
	if resp.StatusCode != http.StatusOK {
		e.T.Fatalf("token request: %d %s", resp.StatusCode, b)
	}
	var r struct{ AccessToken string }
	if err := json.Unmarshal(b, &r); err != nil || r.AccessToken == "" {
		e.T.Fatalf("token response without an access token: %s", b)
	}
	return r.AccessToken
}
