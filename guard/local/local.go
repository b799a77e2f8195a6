// Package local is the guard decider that opens the gatehouse store itself:
// it decides in-process, from memory, following the store's change feed.
// It links the store drivers; a resource server without access to the
// store uses guard.NewRemote or guard.NewJWKS instead.
package local

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/auth/verify"
	"github.com/gatehouse/gatehouse/guard"
	"github.com/gatehouse/gatehouse/policy"
)

// Decider decides in-process on the gatehouse store. It keeps signing keys,
// sessions, users and roles in memory and follows the store's change feed,
// so an ended session or a changed permission is honoured within a feed
// interval, without a store query per request.
type Decider struct {
	authz  *verify.Authorizer
	core   *app.Core
	cancel context.CancelFunc
	done   chan struct{}
}

// Config names the store and the rules. Zero fields take gatehouse's
// defaults.
type Config struct {
	// DataDir is the embedded store's directory (as `serve --data`).
	DataDir string
	// DB is a PostgreSQL URL (as `serve --db`), instead of DataDir.
	DB string
	// MasterKey is the base64 master key; "" reads DataDir/master.key.
	MasterKey string
	// Issuer is the required iss claim of P21 tokens (default P21.Soa).
	Issuer string
	// OAuthIssuer is the iss claim of tokens from /oauth/token: the
	// server's --oauth-issuer, by default its public URL (default Issuer).
	OAuthIssuer string
	// Families is the API family table (default policy.DefaultFamilies()).
	Families []policy.Family
	// InstallUser acts for Transaction API calls without a user (default admin).
	InstallUser string
	// FeedInterval is how often the change feed is read (default 250 ms).
	FeedInterval time.Duration
	Log          *slog.Logger
}

// Open opens the store and loads the keys. Close it when done.
func Open(ctx context.Context, c Config) (*Decider, error) {
	cfg := app.DefaultConfig()
	cfg.DataDir, cfg.DB, cfg.MasterKey = c.DataDir, c.DB, c.MasterKey
	if c.Issuer != "" {
		cfg.Auth.Issuer = c.Issuer
	}
	cfg.Auth.OAuthIssuer = c.OAuthIssuer
	if c.InstallUser != "" {
		cfg.InstallUser = c.InstallUser
	}
	if c.FeedInterval > 0 {
		cfg.FeedInterval = c.FeedInterval
	}
	cfg.Families = c.Families
	core, err := app.OpenCore(ctx, cfg, app.CoreOptions{Purpose: app.Deciding, Log: c.Log})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	l := &Decider{authz: core.Authorizer, core: core, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		core.Follower.Run(runCtx)
	}()
	return l, nil
}

// Decide applies the decision to r's path and Authorization header.
func (l *Decider) Decide(r *http.Request) (*guard.Identity, error) {
	a, err := l.authz.Authorize(r.Context(), guard.RequestOf(r))
	if err != nil {
		return nil, guard.RefusalFrom(err)
	}
	return &guard.Identity{User: a.ActingUser, ConsumerUID: a.Identity.ConsumerUID(), SessionID: a.Identity.Claims.SessionID,
		Scope: a.Identity.Claims.Audience, Family: a.Match.Family.Name}, nil
}

// Close stops following the feed and closes the store.
func (l *Decider) Close() error {
	l.cancel()
	<-l.done
	return l.core.Close()
}
