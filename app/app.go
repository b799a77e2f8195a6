// Package app assembles a gatehouse server from its configuration: it opens
// the store, loads the master key and signing keys, builds the services and
// the HTTP handler, and runs the background loops (change feed, garbage
// collection). The command line and in-process tests share it.
package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/auth/issue"
	"github.com/gatehouse/gatehouse/masterkey"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/sandbox"
	"github.com/gatehouse/gatehouse/server"
	adminhttp "github.com/gatehouse/gatehouse/server/admin"
	"github.com/gatehouse/gatehouse/server/gateway"
	"github.com/gatehouse/gatehouse/server/oauth2"
	"github.com/gatehouse/gatehouse/server/p21"
	"github.com/gatehouse/gatehouse/server/render"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/store/postgres"
	"github.com/gatehouse/gatehouse/store/sqlite"
	"github.com/gatehouse/gatehouse/token"
)

// Config is the effective configuration of a server (or of an admin command,
// which uses the store and key settings only).
type Config struct {
	Addr    string
	DataDir string
	DB      string // a PostgreSQL DSN; empty for the embedded store in DataDir
	// PublicURL is the URL clients reach the server at (see PublicURL);
	// empty: made from Addr. New sets it to the effective one.
	PublicURL string
	Dev       bool

	TokenFormat string // negotiate, json, xml
	V1          bool
	// OAuthStrict answers bad user credentials on /oauth/token with 400 as
	// RFC 6749 says, instead of APX's 401.
	OAuthStrict bool
	Auth        auth.Config

	RateLimit      float64 // token requests per second per address; 0: off
	RateBurst      int
	RateExempt     []string // CIDRs or addresses
	TrustedProxies []string

	TLSCert, TLSKey string

	ReadTimeout       time.Duration
	ReadHeaderTimeout time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration

	// FeedInterval is how often the change feed is polled.
	FeedInterval time.Duration
	// GCInterval is how often expired sessions, old feed entries and retired keys are removed.
	GCInterval time.Duration
	// SessionRetention keeps ended and expired sessions this long before deletion.
	SessionRetention time.Duration
	// AuditRetention keeps audit events this long; the periodic sweep
	// deletes older ones. 0 keeps everything.
	AuditRetention time.Duration
	AccessLog      bool
	// Tracing starts a span for every request (continuing a client's W3C
	// traceparent) on the global OpenTelemetry provider; serve sets it when
	// the OTEL_* variables turn tracing on (package tracing).
	Tracing bool
	// SQLiteSync is the embedded store's synchronous mode: full or normal.
	SQLiteSync string
	// Families is the API family table; nil means policy.DefaultFamilies.
	Families []policy.Family
	// Upstreams are the gateway's FAMILY=URL settings.
	Upstreams []string
	// UpstreamTimeout bounds the wait for an upstream's response headers.
	UpstreamTimeout time.Duration
	// UpstreamMaxBody caps request bodies the gateway sends upstream (413
	// above it); 0 for no cap.
	UpstreamMaxBody int64
	// InstallUser is the acting user of Transaction API calls without a user context.
	InstallUser string
	// UIServerURL and UIServerInternalURL are the UI router's answers;
	// default <public URL>/uiserver0.
	UIServerURL, UIServerInternalURL string

	// Sandbox serves simulated P21 resource APIs (package sandbox) behind
	// the gateway, from DataDir/sandbox.db; SandboxReset restores its
	// sample data first.
	Sandbox, SandboxReset bool

	// ConsoleIdle and ConsoleMax end an admin console session after this
	// long without a request, and this long after sign-in (0: defaults).
	ConsoleIdle, ConsoleMax time.Duration

	// Bootstrap is a setup file the command applies at start (gatehouse
	// apply's format); the app itself does not read it.
	Bootstrap string

	// MasterKey is the base64 master key (GATEHOUSE_MASTER_KEY); empty: use
	// DataDir/master.key.
	MasterKey string
}

// DefaultConfig holds the documented defaults.
func DefaultConfig() Config {
	return Config{
		Addr: "127.0.0.1:8080", DataDir: "./gatehouse-data", TokenFormat: "negotiate", V1: true,
		Auth:      auth.Config{MaxSessions: 20, LockoutThreshold: 10}.Defaults(),
		RateLimit: 20, RateBurst: 40, RateExempt: []string{"127.0.0.0/8", "::1/128"},
		ReadTimeout: 30 * time.Second, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 60 * time.Second,
		IdleTimeout: 2 * time.Minute, ShutdownTimeout: 20 * time.Second,
		FeedInterval: store.DefaultFeedInterval, GCInterval: time.Minute, SessionRetention: 10 * time.Minute,
		AuditRetention: DefaultAuditRetention,
		SQLiteSync:     "full", UpstreamTimeout: 30 * time.Second, InstallUser: gatehouse.DefaultInstallUser,
	}
}

// DefaultAuditRetention is how long audit events are kept by default.
const DefaultAuditRetention = 90 * 24 * time.Hour

// OpenStore opens the store the configuration names: PostgreSQL when DB is
// set, else the embedded store in DataDir. With create (`gatehouse serve`)
// a missing store is created, in a data directory created 0700 if needed;
// without it (administration commands) there must be one. Neither upgrades
// a store written by an older gatehouse: that is MigrateStore's job.
func OpenStore(ctx context.Context, cfg Config, create bool) (store.Store, error) {
	mode := store.OpenExisting
	if create {
		mode = store.OpenCreate
	}
	return openStore(ctx, cfg, mode)
}

// MigrateStore opens the store the configuration names, creating it or
// upgrading its schema as needed (`gatehouse migrate`).
func MigrateStore(ctx context.Context, cfg Config) (store.Store, error) {
	return openStore(ctx, cfg, store.OpenMigrate)
}

// StoreFile is the embedded store's file in the data directory.
const StoreFile = "gatehouse.db"

func openStore(ctx context.Context, cfg Config, mode store.OpenMode) (store.Store, error) {
	if cfg.DB != "" {
		return postgres.Open(ctx, cfg.DB, postgres.Options{Mode: mode})
	}
	if cfg.DataDir == "" {
		return nil, errors.New("no store given: set --data DIR")
	}
	path := filepath.Join(cfg.DataDir, StoreFile)
	if mode == store.OpenExisting {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist: %w", path, gatehouse.ErrNoStore)
		}
	} else {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		// A write-ahead log without its database is what a store removed
		// under a running server leaves: do not start afresh over it.
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			for _, leftover := range []string{path + "-wal", path + "-journal"} {
				if _, err := os.Stat(leftover); err == nil {
					return nil, fmt.Errorf("%s is missing but %s exists: the store was removed or moved; restore it, or remove the leftover to start an empty store",
						path, leftover)
				}
			}
		}
	}
	return sqlite.Open(ctx, path, sqlite.Options{Synchronous: cfg.SQLiteSync, Mode: mode})
}

// LoadMasterKey finds the master key: GATEHOUSE_MASTER_KEY, else
// DataDir/master.key, else (when create) a new master.key.
func LoadMasterKey(cfg Config, create bool, log *slog.Logger) (*masterkey.Key, error) {
	mk, source, err := masterkey.Load(cfg.MasterKey, cfg.DataDir, create)
	if err != nil {
		return nil, err
	}
	if source == "created" && log != nil {
		log.Warn("created a master key file for this development data dir; set GATEHOUSE_MASTER_KEY in production",
			"file", filepath.Join(cfg.DataDir, "master.key"))
	}
	return mk, nil
}

// App is a running gatehouse server: its Core, and the HTTP surface and
// background loops on it.
type App struct {
	*Core
	Gateway *gateway.Gateway
	Metrics *server.Metrics
	Handler http.Handler
	// Sandbox is the simulated P21 APIs of --sandbox, nil without it.
	Sandbox *sandbox.Sandbox
	// AdminHTTP serves the admin console and REST API.
	AdminHTTP *adminhttp.Handler

	mu     sync.Mutex
	closed bool
	stop   context.CancelFunc // ends Run's loops
	loops  sync.WaitGroup     // Run and the feed follower it starts
}

// Validate checks the settings New checks before it touches anything: the
// token format, addresses, algorithms, the refresh grace, the public URL,
// the API families and the gateway's upstreams, each error naming the
// setting. serve --print-config runs it, so that what it prints is what
// serve would accept.
func Validate(cfg Config) error {
	if _, err := render.ParseFormat(cfg.TokenFormat); err != nil {
		return err
	}
	if _, err := parsePrefixes(cfg.RateExempt, "--rate-limit-exempt"); err != nil {
		return err
	}
	if _, err := parsePrefixes(cfg.TrustedProxies, "--trusted-proxies"); err != nil {
		return err
	}
	for _, alg := range []string{cfg.Auth.UserTokenAlg, cfg.Auth.ConsumerTokenAlg, cfg.Auth.OAuthTokenAlg} {
		if alg != "" && !token.ValidAlgorithm(alg) {
			return fmt.Errorf("token algorithm %q is not one of RS256, ES256, EdDSA, HS256", alg)
		}
	}
	if g := cfg.Auth.RefreshReuseGrace; g < 0 || g > auth.MaxRefreshReuseGrace {
		return fmt.Errorf("--refresh-reuse-grace %s is not between 0 and %s", g, auth.MaxRefreshReuseGrace)
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if _, err := PublicURL(cfg.PublicURL, cfg.Addr, cfg.TLSCert != ""); err != nil {
		return err
	}
	fams := cfg.Families
	if fams == nil {
		fams = policy.DefaultFamilies()
	}
	table, err := policy.NewTable(fams)
	if err != nil {
		return fmt.Errorf("API families: %w", err)
	}
	if _, err := gateway.ParseUpstreams(cfg.Upstreams, func(f string) bool { return table.Family(f) != nil }); err != nil {
		return err
	}
	return nil
}

// New opens the store, loads keys and builds the server. Call Run to start
// its background loops and Close when done.
func New(ctx context.Context, cfg Config, log *slog.Logger, clock gatehouse.Clock) (*App, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Lines logged while serving a request carry its id.
	log = slog.New(gatehouse.LogRequestIDs(log.Handler()))
	if clock == nil {
		clock = gatehouse.SystemClock
	}
	format, err := render.ParseFormat(cfg.TokenFormat)
	if err != nil {
		return nil, err
	}
	exempt, err := parsePrefixes(cfg.RateExempt, "--rate-limit-exempt")
	if err != nil {
		return nil, err
	}
	trusted, err := parsePrefixes(cfg.TrustedProxies, "--trusted-proxies")
	if err != nil {
		return nil, err
	}
	for _, alg := range []string{cfg.Auth.UserTokenAlg, cfg.Auth.ConsumerTokenAlg, cfg.Auth.OAuthTokenAlg} {
		if alg != "" && !token.ValidAlgorithm(alg) {
			return nil, fmt.Errorf("token algorithm %q is not one of RS256, ES256, EdDSA, HS256", alg)
		}
	}
	if g := cfg.Auth.RefreshReuseGrace; g < 0 || g > auth.MaxRefreshReuseGrace {
		return nil, fmt.Errorf("--refresh-reuse-grace %s is not between 0 and %s", g, auth.MaxRefreshReuseGrace)
	}
	// The public URL is computed once (serve passes the one made from the
	// bound address) and is the identity of the server everywhere.
	if cfg.PublicURL, err = PublicURL(cfg.PublicURL, cfg.Addr, cfg.TLSCert != ""); err != nil {
		return nil, err
	}
	if cfg.Auth.OAuthIssuer == "" {
		cfg.Auth.OAuthIssuer = cfg.PublicURL
	}
	cfg.Auth = cfg.Auth.Defaults()
	if cfg.Dev && cfg.DB == "" && cfg.MasterKey == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
	}
	core, err := OpenCore(ctx, cfg, CoreOptions{Purpose: Serving, Log: log, Clock: clock})
	if err != nil {
		return nil, err
	}
	a := &App{Core: core}
	ok := false
	defer func() {
		if !ok {
			core.Close()
		}
	}()
	st, ring, fams := core.Store, core.Ring, core.Families
	table := core.Authorizer.Table
	ups, err := gateway.ParseUpstreams(cfg.Upstreams, func(f string) bool { return table.Family(f) != nil })
	if err != nil {
		return nil, err
	}
	a.Metrics = server.NewMetrics(func(ctx context.Context) (int, error) {
		return st.CountActiveSessions(ctx, clock.Now())
	})
	a.Metrics.ObserveStore(st)
	// The sandbox (--sandbox): simulated P21 APIs as in-process upstreams.
	sb, sbHandlers, err := openSandbox(ctx, cfg, ups, clock, log)
	if err != nil {
		return nil, err
	}
	a.Sandbox = sb
	defer func() {
		if !ok && sb != nil {
			sb.Close()
		}
	}()
	a.Gateway = gateway.NewGateway(a.Authorizer, gateway.Options{Upstreams: ups, Handlers: sbHandlers, Timeout: cfg.UpstreamTimeout,
		MaxBody: cfg.UpstreamMaxBody, Log: log, Observe: a.Metrics.Gateway, Format: format})
	base := cfg.PublicURL
	uiExt, uiInt := cfg.UIServerURL, cfg.UIServerInternalURL
	if uiExt == "" {
		uiExt = base + "/uiserver0"
	}
	if uiInt == "" {
		uiInt = base + "/uiserver0"
	}
	clientAddr := server.ClientAddr{Trusted: trusted}
	limiter := server.NewRateLimiter(cfg.RateLimit, cfg.RateBurst, exempt)
	a.AdminHTTP = adminhttp.New(adminhttp.Options{Admin: a.Admin, Store: st, Verifier: a.Verifier, Issuer: a.Service,
		Remote: clientAddr.Of, Limited: a.Service.RateLimited, TLS: strings.HasPrefix(cfg.PublicURL, "https://"),
		Allow: func(r *http.Request) (bool, time.Duration) {
			return limiter.Allow(clientAddr.Of(r), clock.Now())
		},
		SessionIdle: cfg.ConsoleIdle, SessionMax: cfg.ConsoleMax, Clock: clock, Log: log})
	a.Handler = server.New(server.Options{
		Admin:   a.AdminHTTP,
		Gateway: a.Gateway,
		Check:   &gateway.Check{Auth: a.Authorizer, Observe: a.Metrics.Gateway, Format: format},
		Router:  &gateway.Router{Auth: a.Authorizer, External: uiExt, Internal: uiInt, Format: format},
		P21: &p21.Handler{Issuer: a.Service, Format: format, V1: cfg.V1,
			Remote: clientAddr.Of, Observe: a.Metrics.Token, Log: log},
		OAuth2: &oauth2.Handler{OAuth: issue.NewOAuth(a.Service, a.Verifier), Keys: ring,
			PublicURL: cfg.PublicURL, Issuer: cfg.Auth.OAuthIssuer, Strict: cfg.OAuthStrict,
			Remote: clientAddr.Of, Observe: a.Metrics.Token, Log: log},
		Store:       st,
		Keys:        ring,
		Format:      format,
		RateLimiter: limiter,
		Limited:     a.Service.RateLimited,
		ClientAddr:  clientAddr,
		Metrics:     a.Metrics,
		Log:         log,
		Clock:       clock,
		AccessLog:   cfg.AccessLog,
		Tracing:     cfg.Tracing,
		HSTS:        cfg.TLSCert != "",
		Published:   &policy.Configuration{Families: fams, InstallUser: cfg.InstallUser},
	})
	ok = true
	return a, nil
}

// Run runs the background loops until ctx ends or Close is called; Close
// waits for them.
func (a *App) Run(ctx context.Context) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	a.stop = cancel
	a.loops.Add(2)
	a.mu.Unlock()
	defer a.loops.Done()
	go func() {
		defer a.loops.Done()
		a.Follower.Run(ctx)
	}()
	if n, err := a.Service.AdoptLockouts(ctx); err != nil {
		a.Log.Warn("adopting lockouts begun before they were recorded failed", "err", err)
	} else if n > 0 {
		a.Log.Info("adopted lockouts begun before they were recorded", "count", n)
	}
	interval := a.Cfg.GCInterval
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// The refusals counted since the last sweep.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := a.Service.FlushRefusals(fctx); err != nil {
				a.Log.Warn("writing refusal counts failed", "err", err)
			}
			cancel()
			return
		case <-t.C:
			a.GC(ctx)
		}
	}
}

// GC removes sessions that ended or expired more than SessionRetention ago,
// old change-feed entries and retired keys past their horizon, audits the
// end of lockouts that are over, writes the refusal counts, and removes
// failed sign-ins no lockout can count any more and audit events older
// than AuditRetention.
func (a *App) GC(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	now := a.Clock.Now()
	if n, err := a.Store.DeleteSessions(ctx, now.Add(-a.Cfg.SessionRetention)); err != nil {
		a.Log.Warn("session garbage collection failed", "err", err)
	} else if n > 0 {
		a.Log.Debug("garbage-collected sessions", "count", n)
	}
	// Followers poll every FeedInterval; ten minutes of history is ample.
	if _, err := a.Store.PruneChanges(ctx, now.Add(-10*time.Minute)); err != nil {
		a.Log.Warn("change feed pruning failed", "err", err)
	}
	if n, err := a.Keys.GC(ctx); err != nil {
		a.Log.Warn("retired key cleanup failed", "err", err)
	} else if n > 0 {
		a.Log.Info("deleted retired signing keys", "count", n)
	}
	if n, err := a.Service.CloseLockouts(ctx); err != nil {
		a.Log.Warn("closing ended lockouts failed", "err", err)
	} else if n > 0 {
		a.Log.Info("lockouts ended", "count", n)
	}
	if err := a.Service.FlushRefusals(ctx); err != nil {
		a.Log.Warn("writing refusal counts failed", "err", err)
	}
	// After CloseLockouts, and a window late, so that a lockout's end is
	// still found among the failures kept.
	if n, err := a.Store.PruneAuthFailures(ctx, now.Add(-2*a.Service.Config().LockoutWindow)); err != nil {
		a.Log.Warn("failed sign-in cleanup failed", "err", err)
	} else if n > 0 {
		a.Log.Debug("forgot failed sign-ins outside the lockout window", "count", n)
	}
	if a.Cfg.AuditRetention > 0 {
		if n, err := a.Store.PruneAudit(ctx, now.Add(-a.Cfg.AuditRetention)); err != nil {
			a.Log.Warn("audit retention sweep failed", "err", err)
		} else if n > 0 {
			a.Log.Info("deleted audit events past --audit-retention", "count", n, "retention", a.Cfg.AuditRetention)
		}
	}
}

// Close stops the background loops, waits for them, and releases the
// store (and the sandbox's database), so that no poll or sweep runs on a
// closed store.
func (a *App) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	if a.stop != nil {
		a.stop()
	}
	a.mu.Unlock()
	a.loops.Wait()
	if a.Sandbox != nil {
		a.Sandbox.Close()
	}
	return a.Store.Close()
}

func parsePrefixes(ss []string, flag string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not an address or CIDR prefix", flag, s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
