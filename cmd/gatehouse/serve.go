package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/masterkey"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/sandbox"
	"github.com/gatehouse/gatehouse/sandbox/data"
	"github.com/gatehouse/gatehouse/tracing"
	"github.com/spf13/cobra"
)

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func newServeCmd(e *env, g *globals) *cobra.Command {
	cfg := app.DefaultConfig()
	var printCfg bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the token server",
		Long: `Run the token server on the embedded store in --data DIR (or on --db).

A missing or empty data directory (or database schema) gets a new store;
a store written by an older gatehouse is refused: run gatehouse migrate.
With --dev, a master key file and signing keys are created as needed, and —
only when the store has no users yet — a demo user and a demo consumer,
whose credentials are printed once.

The server is known by one URL: --public-url, or else the address it is
bound to (localhost for an address bound on every interface).

In production set GATEHOUSE_MASTER_KEY (32 random bytes, base64), which
encrypts the signing keys at rest and keys the consumer-key hashes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.DataDir, cfg.DB = g.dataDir, g.db
			cfg.MasterKey = e.getenv("GATEHOUSE_MASTER_KEY")
			sec, err := loadSections(configFile(cmd, e.getenv))
			if err != nil {
				return err
			}
			cfg.Families = mergeFamilies(policy.DefaultFamilies(), sec.Families)
			cfg.Upstreams = mergeUpstreams(cfg.Upstreams, sec.Gateway.Upstreams)
			if printCfg {
				// What serve would refuse is refused here too.
				if err := app.Validate(cfg); err != nil {
					return &admin.InputError{Msg: err.Error()}
				}
				if cfg.TLSCert != "" {
					if _, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
						return &admin.InputError{Msg: "TLS: " + plainTLSError(cfg.TLSCert, cfg.TLSKey, err)}
					}
				}
				mk := "master key: GATEHOUSE_MASTER_KEY is not set; " + cfg.DataDir + "/master.key is used"
				if cfg.MasterKey != "" {
					mk = "master key: GATEHOUSE_MASTER_KEY is set (not shown)"
				}
				return printConfig(cmd, map[string]any{"upstream": cfg.Upstreams, "families": cfg.Families},
					"gatehouse serve --print-config: the effective configuration; --config reads it back.\n"+mk)
			}
			log, err := g.logger(e.stderr)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), e, cfg, log)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&printCfg, "print-config", false, "print the effective configuration (secrets masked) and exit")
	f.StringVar(&cfg.Addr, "addr", cfg.Addr, "address to listen on")
	f.StringVar(&cfg.PublicURL, "public-url", "", "URL clients reach this server at (default http(s)://ADDR as bound; localhost for 0.0.0.0 and ::)")
	f.BoolVar(&cfg.Dev, "dev", false, "development mode: create the data dir, keys and demo credentials as needed")
	f.StringVar(&cfg.TokenFormat, "token-format", cfg.TokenFormat, "token response format: negotiate (by Accept), json or xml")
	f.BoolVar(&cfg.V1, "v1", cfg.V1, "serve the deprecated V1 token endpoint (credentials in headers); false answers 410")
	f.BoolVar(&cfg.OAuthStrict, "oauth-strict", false, "answer bad user credentials on /oauth/token with 400 as RFC 6749 says (default: 401, as APX does)")
	f.StringVar(&cfg.Auth.Issuer, "issuer", cfg.Auth.Issuer, "iss claim of P21 tokens")
	f.StringVar(&cfg.Auth.OAuthIssuer, "oauth-issuer", "", "iss claim of /oauth/token tokens and issuer of the RFC 8414 metadata (default: the public URL)")
	f.StringVar(&cfg.Auth.UserScope, "user-scope", cfg.Auth.UserScope, "scope (aud claim) of user-credential tokens")
	f.DurationVar(&cfg.Auth.UserTokenTTL, "user-token-ttl", cfg.Auth.UserTokenTTL, "lifetime of user access tokens")
	f.DurationVar(&cfg.Auth.RefreshTTL, "refresh-token-ttl", cfg.Auth.RefreshTTL, "how long a user session can be refreshed after its last refresh")
	f.DurationVar(&cfg.Auth.RefreshReuseGrace, "refresh-reuse-grace", 0, "how long after a refresh a retry with the spent refresh token gets the same new pair instead of ending the session (0: never)")
	f.StringVar(&cfg.Auth.UserTokenAlg, "user-token-alg", cfg.Auth.UserTokenAlg, "signing algorithm of user tokens: RS256, ES256, EdDSA, HS256")
	f.StringVar(&cfg.Auth.ConsumerTokenAlg, "consumer-token-alg", cfg.Auth.ConsumerTokenAlg, "signing algorithm of P21 consumer tokens: RS256, ES256, EdDSA, HS256")
	f.StringVar(&cfg.Auth.OAuthTokenAlg, "oauth-token-alg", cfg.Auth.OAuthTokenAlg, "signing algorithm of /oauth/token tokens: ES256, RS256, EdDSA (HS256 cannot be checked with the JWKS)")
	f.IntVar(&cfg.Auth.MaxSessions, "max-sessions", cfg.Auth.MaxSessions, "active sessions per principal; one more ends the oldest (0: no cap)")
	f.IntVar(&cfg.Auth.LockoutThreshold, "lockout-threshold", cfg.Auth.LockoutThreshold, "failed sign-ins within --lockout-window that lock a username (0: no lockout)")
	f.DurationVar(&cfg.Auth.LockoutWindow, "lockout-window", cfg.Auth.LockoutWindow, "window in which failed sign-ins are counted")
	f.Float64Var(&cfg.RateLimit, "rate-limit", cfg.RateLimit, "token requests per second per client address (0: no limit)")
	f.IntVar(&cfg.RateBurst, "rate-limit-burst", cfg.RateBurst, "burst of token requests per client address")
	f.StringSliceVar(&cfg.RateExempt, "rate-limit-exempt", cfg.RateExempt, "addresses or CIDRs not rate limited (comma-separated)")
	f.StringSliceVar(&cfg.TrustedProxies, "trusted-proxies", nil, "proxies whose X-Forwarded-For is believed (addresses or CIDRs)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate file (PEM); serve HTTPS with --tls-key")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	f.DurationVar(&cfg.ReadTimeout, "read-timeout", cfg.ReadTimeout, "maximum time to read a request")
	f.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", cfg.ReadHeaderTimeout, "maximum time to read request headers")
	f.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, "maximum time to write a response")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "how long idle keep-alive connections stay open")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long in-flight requests may finish after SIGTERM")
	f.DurationVar(&cfg.FeedInterval, "feed-interval", cfg.FeedInterval, "how often the store's change feed is polled")
	f.DurationVar(&cfg.GCInterval, "gc-interval", cfg.GCInterval, "how often expired sessions are removed")
	f.DurationVar(&cfg.SessionRetention, "session-retention", cfg.SessionRetention, "how long ended or expired sessions are kept before removal")
	f.Var((*ageValue)(&cfg.AuditRetention), "audit-retention", "how long audit events are kept before the periodic sweep removes them (90d, 720h; 0: keep everything)")
	f.BoolVar(&cfg.AccessLog, "access-log", false, "log every request at info level (else at debug level)")
	f.StringArrayVar(&cfg.Upstreams, "upstream", nil, "gateway upstream of an API family, FAMILY=URL (repeatable; YAML gateway.upstreams)")
	f.DurationVar(&cfg.UpstreamTimeout, "upstream-timeout", cfg.UpstreamTimeout, "how long the gateway waits for an upstream's response headers (then 504)")
	f.Int64Var(&cfg.UpstreamMaxBody, "upstream-max-body", 0, "largest request body, in bytes, the gateway sends upstream (then 413; 0: no cap)")
	f.BoolVar(&cfg.Sandbox, "sandbox", false, "serve simulated P21 APIs (OData, Entity, Transaction, Interactive) with sample data behind the gateway (DATA/sandbox.db)")
	f.BoolVar(&cfg.SandboxReset, "sandbox-reset", false, "with --sandbox: restore the sandbox's sample data at start-up")
	f.StringVar(&cfg.InstallUser, "install-user", cfg.InstallUser, "user that Transaction API calls without a user context act as")
	f.StringVar(&cfg.UIServerURL, "ui-server-url", "", "UI server URL the router answers for urlType=external (default <public URL>/uiserver0)")
	f.StringVar(&cfg.UIServerInternalURL, "ui-server-internal-url", "", "UI server URL the router answers for urlType=internal (default <public URL>/uiserver0)")
	f.DurationVar(&cfg.ConsoleIdle, "console-idle", 30*time.Minute, "admin console sessions end after this long without a request")
	f.DurationVar(&cfg.ConsoleMax, "console-max", 12*time.Hour, "admin console sessions end this long after sign-in")
	f.StringVar(&cfg.Bootstrap, "bootstrap", "", "setup file applied at start, as gatehouse apply does (users, roles, catalog, consumers)")
	f.StringVar(&cfg.SQLiteSync, "sqlite-sync", cfg.SQLiteSync, "embedded store durability: full (survives power loss) or normal (survives process crashes)")
	return cmd
}

// serve runs the server until ctx ends (SIGINT/SIGTERM), then shuts down
// gracefully: stop accepting, let in-flight requests finish (bounded by
// --shutdown-timeout), stop the background loops, close the store.
func serve(ctx context.Context, e *env, cfg app.Config, log *slog.Logger) error {
	return serveWith(ctx, e, cfg, log, nil)
}

// serveWith is serve that reports the bound address on ready (for tests).
func serveWith(ctx context.Context, e *env, cfg app.Config, log *slog.Logger, ready chan<- string) error {
	start := time.Now()
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return &admin.InputError{Msg: "--tls-cert and --tls-key go together"}
	}
	if cfg.TLSCert != "" {
		// Before anything listens or says "serving": a server that cannot
		// serve TLS must not look started.
		if _, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			return &admin.InputError{Msg: "TLS: " + plainTLSError(cfg.TLSCert, cfg.TLSKey, err)}
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	bound := ln.Addr().String()
	explicitURL := cfg.PublicURL != ""
	// The one URL the server is known by, from the address actually bound.
	if cfg.PublicURL, err = app.PublicURL(cfg.PublicURL, bound, cfg.TLSCert != ""); err != nil {
		ln.Close()
		return &admin.InputError{Msg: err.Error()}
	}
	base := cfg.PublicURL
	// Tracing, when the OTEL_* variables ask for it; its spans are flushed
	// after the last request.
	stopTracing, err := tracing.Setup(ctx, e.getenv, version())
	if err != nil {
		ln.Close()
		return &admin.InputError{Msg: err.Error()}
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(fctx); err != nil {
			log.Warn("flushing traces failed", "err", err)
		}
	}()
	if cfg.Tracing = tracing.Enabled(e.getenv); cfg.Tracing {
		log.Info("tracing on: spans go to the OTLP endpoint of the OTEL_* variables")
	}
	var setup *Setup
	if cfg.Bootstrap != "" {
		if setup, err = loadSetup(cfg.Bootstrap); err != nil {
			ln.Close()
			return err
		}
	}
	// The process's memory limit is serve's while it runs (a test that
	// serves in-process gets its own back).
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	app.LimitMemory()
	a, err := app.New(ctx, cfg, log, nil)
	if err != nil {
		ln.Close()
		return storeOpenErr(serveStoreName(cfg), err)
	}
	defer a.Close()
	defer app.GovernMemory(a.Hasher)()
	if cfg.DB == "" {
		warnFileModes(log, cfg.DataDir)
	}
	if !explicitURL && !isLoopback(bound) {
		log.Warn("no --public-url: the metadata, OAuth2 token issuer and UI router URLs name "+base+
			", which other machines cannot use; set --public-url to the URL clients reach this server at", "url", base)
	}
	if cfg.Dev {
		d, err := a.SeedDemo(ctx)
		if err != nil {
			ln.Close()
			return fmt.Errorf("create demo credentials: %w", err)
		}
		if d != nil {
			d.Print(e.stdout, base)
		} else {
			printDemoHint(e.stdout, base, cfg.DataDir)
		}
	}
	if setup != nil {
		n, err := applySetup(ctx, a.Store, a.Admin, "system:bootstrap", setup, e.getenv, false, e.stdout)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--bootstrap %s: %w", cfg.Bootstrap, err)
		}
		log.Info("bootstrap file applied", "file", cfg.Bootstrap, "changes", n)
	}
	if a.Sandbox != nil {
		log.Info("sandbox: simulated P21 APIs with sample data behind the gateway", "families", strings.Join(sandbox.Families, ","),
			"database", filepath.Join(cfg.DataDir, data.FileName), "try", base+"/odataservice/odata/table/supplier")
	}
	srv := &http.Server{
		Handler:           a.Handler,
		ReadTimeout:       cfg.ReadTimeout,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if cfg.TLSCert != "" {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	} else if !isLoopback(bound) {
		log.Warn("serving plain HTTP on a non-loopback address: credentials cross the network in clear; use --tls-cert/--tls-key or a TLS proxy", "addr", bound)
	}
	bg, stopBG := context.WithCancel(context.Background())
	bgDone := make(chan struct{})
	go func() {
		defer close(bgDone)
		a.Run(bg)
	}()
	errc := make(chan error, 1)
	go func() {
		if cfg.TLSCert != "" {
			errc <- srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	log.Info("gatehouse serving", "addr", bound, "url", base, "oauth_issuer", a.Cfg.Auth.OAuthIssuer,
		"store", serveStoreName(cfg), "version", version(),
		"startup", time.Since(start).Round(time.Millisecond))
	if ready != nil {
		ready <- bound
	}
	select {
	case err := <-errc:
		stopBG()
		<-bgDone
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	stopBG()
	<-bgDone
	if err != nil {
		log.Warn("in-flight requests did not finish in time", "err", err)
		srv.Close()
	}
	log.Info("stopped")
	return nil
}

// mergeUpstreams adds the YAML file's upstreams for families the flags
// (or environment) did not name.
func mergeUpstreams(flags []string, file map[string]string) []string {
	out := append([]string(nil), flags...)
	named := map[string]bool{}
	for _, s := range flags {
		fam, _, _ := strings.Cut(s, "=")
		named[strings.ToLower(strings.TrimSpace(fam))] = true
	}
	fams := make([]string, 0, len(file))
	for fam := range file {
		fams = append(fams, fam)
	}
	sort.Strings(fams)
	for _, fam := range fams {
		if !named[strings.ToLower(fam)] {
			out = append(out, fam+"="+file[fam])
		}
	}
	return out
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// serveStoreName names the server's store for messages, its password masked.
func serveStoreName(cfg app.Config) string {
	if cfg.DB != "" {
		return maskDSN(cfg.DB)
	}
	return cfg.DataDir
}

// warnFileModes warns when the data directory or the files of the store
// in it can be read or written by the group or others: they hold password
// hashes, sessions and the sealed signing keys (and master.key, in
// development), which only the server's user should reach.
func warnFileModes(log *slog.Logger, dir string) {
	var loose []string
	for _, name := range []string{"", app.StoreFile, app.StoreFile + "-wal", app.StoreFile + "-shm", masterkey.FileName} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		if fi.Mode().Perm()&0o077 != 0 {
			n := name
			if n == "" {
				n = dir
			}
			loose = append(loose, fmt.Sprintf("%s (%04o)", n, fi.Mode().Perm()))
		}
	}
	if len(loose) > 0 {
		log.Warn("data directory or store files are accessible to group or others; chmod 700 the directory and 600 its files",
			"dir", dir, "files", strings.Join(loose, ", "))
	}
}
