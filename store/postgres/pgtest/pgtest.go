// Package pgtest gives tests a PostgreSQL database to work in: a fresh
// schema per test, dropped when the test ends, and a TCP proxy that can cut
// the connection to simulate an outage without touching the server.
//
// The server is named by GATEHOUSE_TEST_PG (default DefaultDSN). When it
// cannot be reached, tests are skipped, except in CI (CI=true), where they
// fail: there the database is part of the test environment (see
// internal/testenv, whose Main a package using pgtest runs in its TestMain).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// DefaultDSN is the test database when GATEHOUSE_TEST_PG is not set.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	probeOnce sync.Once
	probeErr  error
)

// BaseDSN returns the test server's DSN, or skips (fails in CI) the test
// when the server cannot be reached.
func BaseDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("GATEHOUSE_TEST_PG")
	if dsn == "" {
		dsn = DefaultDSN
	}
	probeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			probeErr = err
			return
		}
		probeErr = conn.Ping(ctx)
		conn.Close(ctx)
	})
	if probeErr != nil {
		testenv.Skip(t, "PostgreSQL", fmt.Sprintf("unreachable at GATEHOUSE_TEST_PG (default %s): %v", DefaultDSN, probeErr))
	}
	return dsn
}

// Schema creates a fresh schema gh_<random> and returns it with a DSN whose
// connections use it. The schema is dropped when the test ends, after
// cleanups registered later (stores opened on it) have run.
func Schema(t testing.TB) (dsn, schema string) {
	t.Helper()
	base := BaseDSN(t)
	b := make([]byte, 6)
	rand.Read(b)
	schema = "gh_" + hex.EncodeToString(b)
	exec(t, base, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize())
	t.Cleanup(func() { exec(t, base, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE") })
	return WithParam(base, "search_path", schema), schema
}

// Exec runs sql (no arguments) on the test server, in the schema of dsn.
func Exec(t testing.TB, dsn, sql string) {
	t.Helper()
	exec(t, dsn, sql)
}

func exec(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// WithParam returns dsn (a URL or key=value string) with a connection
// parameter set.
func WithParam(dsn, key, value string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(value) + "'"
}

// ViaProxy returns dsn (a URL) with its host and port replaced by addr.
func ViaProxy(t testing.TB, dsn, addr string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("the test DSN must be a postgres:// URL with a host to go through a proxy")
	}
	u.Host = addr
	return u.String()
}

// Proxy forwards TCP connections to the database until cut.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

// NewProxy starts a proxy on a loopback port in front of the host:port of
// dsn (a URL); it stops when the test ends.
func NewProxy(t testing.TB, dsn string) *Proxy {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("the test DSN must be a postgres:// URL with a host to go through a proxy")
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
	})
	return p
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every forwarded connection and refuses new ones (they are
// accepted and closed at once) until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore forwards new connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *Proxy) forward(c net.Conn) {
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}
