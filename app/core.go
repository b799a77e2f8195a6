package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/auth/issue"
	"github.com/gatehouse/gatehouse/auth/verify"
	"github.com/gatehouse/gatehouse/masterkey"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// Purpose says what a Core is opened for, and so which of its parts are
// built and whether a store or keys may be created.
type Purpose int

const (
	// Serving (gatehouse serve): the store and signing keys are created
	// when missing (the master key too, in a --dev data dir); every part is
	// built and follows the change feed.
	Serving Purpose = iota
	// Deciding (guard/local): an existing store and its keys; the
	// verifier, directory and authorizer follow the change feed.
	Deciding
	// Administering (the admin commands): an existing store; the
	// administration service, with the master key when NeedKey.
	Administering
)

// Core is gatehouse's components over one store: the master key, the
// signing keys, the token service, the administration service, the
// verifier and the authorization decision, with the change-feed follower
// that keeps their caches current. OpenCore is the one place that builds
// and connects them, for the server, the admin commands and guard/local.
type Core struct {
	Cfg       Config
	Log       *slog.Logger
	Clock     gatehouse.Clock
	Store     store.Store
	MasterKey *masterkey.Key // nil when Administering without NeedKey
	Ring      *token.Ring
	Keys      *auth.KeyManager // nil without a master key
	Admin     *admin.Admin
	// Hasher checks and makes password hashes (see GovernMemory).
	Hasher *password.Hasher
	// Service issues tokens (Serving only).
	Service *issue.Service
	// Verifier, Directory, Authorizer and Follower decide (Serving and
	// Deciding).
	Verifier   *verify.Verifier
	Directory  *verify.Directory
	Authorizer *verify.Authorizer
	Follower   *store.Follower
	// Families is the API family table in effect (the defaults when
	// Cfg.Families is nil).
	Families []policy.Family
}

// CoreOptions tune OpenCore.
type CoreOptions struct {
	Purpose Purpose
	// NeedKey: Administering needs the master key (consumer keys, signing
	// keys); the other purposes always load it.
	NeedKey bool
	Log     *slog.Logger
	Clock   gatehouse.Clock
}

// OpenCore opens the store cfg names and builds the components o.Purpose
// needs, each with the defaults of cfg (see DefaultConfig). Close it when
// done, unless an App owns it.
func OpenCore(ctx context.Context, cfg Config, o CoreOptions) (*Core, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = gatehouse.SystemClock
	}
	cfg.Auth = cfg.Auth.Defaults()
	c := &Core{Cfg: cfg, Log: o.Log, Clock: o.Clock, Ring: &token.Ring{}}
	var err error
	c.Families = cfg.Families
	if c.Families == nil {
		c.Families = policy.DefaultFamilies()
	}
	table, err := policy.NewTable(c.Families)
	if err != nil {
		return nil, fmt.Errorf("API families: %w", err)
	}
	serving := o.Purpose == Serving
	needKey := serving || o.Purpose == Deciding || o.NeedKey
	// Serving loads the master key first, so that a server that cannot
	// start leaves no empty store behind; the others look for the store
	// first, so that a missing one is what they report.
	if serving {
		if c.MasterKey, err = LoadMasterKey(cfg, cfg.Dev, o.Log); err != nil {
			return nil, err
		}
	}
	if c.Store, err = OpenStore(ctx, cfg, serving); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.Store.Close()
		}
	}()
	if needKey && c.MasterKey == nil {
		if c.MasterKey, err = LoadMasterKey(cfg, false, o.Log); err != nil {
			return nil, err
		}
	}
	hasher := password.NewHasher(password.DefaultParams())
	c.Hasher = hasher
	var ck *auth.ConsumerKeys
	if c.MasterKey != nil {
		ck = auth.NewConsumerKeys(c.MasterKey)
		c.Keys = auth.NewKeyManager(c.Store, c.MasterKey, c.Ring, c.Clock, o.Log)
		switch {
		case serving:
			err = c.Keys.Ensure(ctx, cfg.Auth.Algorithms()...)
		case o.Purpose == Deciding:
			err = c.Keys.Reload(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("signing keys: %w", err)
		}
	}
	c.Admin = admin.New(c.Store, hasher, ck, c.Keys, cfg.Auth, c.Clock)
	if o.Purpose == Administering {
		ok = true
		return c, nil
	}
	c.Verifier = verify.NewVerifier(cfg.Auth, c.Ring, c.Store, c.Clock)
	c.Directory = verify.NewDirectory(c.Store)
	c.Authorizer = &verify.Authorizer{Verifier: c.Verifier, Directory: c.Directory, Table: table, InstallUser: cfg.InstallUser}
	// Sessions this process ends are refused here at once, not at the next
	// feed poll.
	c.Admin.OnSessionsEnded(c.Verifier.SessionEnded)
	c.Follower = store.NewFollower(c.Store, cfg.FeedInterval, o.Log)
	if serving {
		c.Service = issue.NewService(cfg.Auth, issue.Deps{Store: c.Store, Keys: c.Ring, Passwords: hasher, ConsumerKeys: ck,
			NameTags: issue.NewNameTags(c.MasterKey), RefreshTokens: issue.NewRefreshTokens(c.MasterKey), Clock: c.Clock, Log: o.Log})
		c.Service.OnSessionsEnded(c.Verifier.SessionEnded)
		c.Follower.Subscribe(c.Service.Listener())
	}
	c.Follower.Subscribe(c.Verifier.Listener())
	c.Verifier.FollowHealth(c.Follower.Healthy)
	c.Follower.Subscribe(c.Directory.Listener())
	c.Follower.Subscribe(c.Keys)
	if err := c.Follower.Start(ctx); err != nil {
		return nil, fmt.Errorf("change feed: %w", err)
	}
	ok = true
	return c, nil
}

// Close closes the store. A Core that follows the feed must have its
// follower stopped first (App.Close and guard/local do).
func (c *Core) Close() error { return c.Store.Close() }
