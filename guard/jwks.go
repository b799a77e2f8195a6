package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/scope"
	"github.com/gatehouse/gatehouse/token"
	"github.com/gatehouse/gatehouse/wire"
	"github.com/golang-jwt/jwt/v5"
)

// JWKS decides in-process with what a gatehouse server publishes, without
// its store or master key:
//
//   - Signatures of RS256, ES256 and EdDSA tokens are verified locally with
//     the server's JWKS, the algorithm pinned to the key the token's kid
//     names; issuer, expiry and not-before are checked locally too.
//   - HS256 tokens (gatehouse's default for consumer tokens) cannot be
//     verified from a JWKS, whose keys are public: the server verifies
//     them by introspection, and the decision uses the claims it reports,
//     never the token's own payload.
//   - Session state comes from RFC 7662 introspection, cached for TTL, so
//     an ended session is refused at most TTL later.
//   - Requests whose decision rests on the token alone are decided here
//     with package policy: tokens issued through a consumer key or an OAuth
//     client (scope only), except on the Interactive API when they carry a
//     user; any token on a family with users: none. Requests that need the
//     user's record, role or the catalog (P21 user-credential tokens on
//     every default family; the Interactive API for a token with a user)
//     are handed to the server's /auth/check, as Remote does, since that
//     state is only in the store.
type JWKS struct {
	keys        *keySet
	intro       *introspector
	check       *Remote
	table       *policy.Table
	issuer      string
	oauthIssuer string
	installUser string
	leeway      time.Duration
	clock       gatehouse.Clock
	log         *slog.Logger
}

// JWKSConfig names the gatehouse server and the rules. Zero fields take
// gatehouse's defaults; Issuer and Leeway must match
// the server's configuration.
type JWKSConfig struct {
	// BaseURL is the gatehouse server, e.g. http://127.0.0.1:8080
	// (required). /auth/check is asked under it.
	BaseURL string
	// JWKSURL is the key set (default BaseURL + /.well-known/jwks.json).
	JWKSURL string
	// IntrospectionURL is the RFC 7662 endpoint (default BaseURL +
	// /oauth/introspect).
	IntrospectionURL string
	// ClientID and ClientSecret authenticate to introspection (required):
	// a consumer registered for this resource server, its name or uid and
	// its consumer key.
	ClientID, ClientSecret string
	// Client sends every request (default: 5 s timeout).
	Client *http.Client
	// Issuer is the required iss claim of P21 tokens (default P21.Soa).
	Issuer string
	// OAuthIssuer is the iss claim of tokens from /oauth/token, the issuer
	// of the server's metadata (default BaseURL, which is the server's
	// public URL unless --public-url or --oauth-issuer say otherwise).
	OAuthIssuer string
	// Families is the API family table. Nil (the default) takes the
	// server's own table, YAML-added families included, from
	// wire.PathConfiguration, so that the decisions are the server's.
	Families []policy.Family
	// InstallUser acts for Transaction API calls without a user (default:
	// the server's, from wire.PathConfiguration, when Families is nil; else
	// admin).
	InstallUser string
	// Leeway is the clock skew tolerated on exp and nbf (default 30 s).
	Leeway time.Duration
	// TTL is how long an introspection answer, and an allowed /auth/check
	// answer, is reused per token (default 2 s; a negative value disables
	// caching). A session ended in gatehouse is refused here at most this
	// much later.
	TTL time.Duration
	// MaxCached bounds the introspection cache (default 50,000 tokens).
	MaxCached int
	// KeysMaxAge is how old the fetched JWKS may get before it is fetched
	// again in the background (default 5 min, the server's max-age).
	KeysMaxAge time.Duration
	// KeysMinInterval is the least time between two JWKS fetches (default
	// 30 s): tokens with unknown kids cause at most one fetch per interval.
	KeysMinInterval time.Duration
	// Clock tells the time (default: the system clock).
	Clock gatehouse.Clock
	Log   *slog.Logger
}

// Algorithms verified locally; everything else is refused, but HS256,
// which goes to introspection.
const (
	algRS256 = "RS256"
	algES256 = "ES256"
	algEdDSA = "EdDSA"
	algHS256 = "HS256"
)

// NewJWKS fetches the server's JWKS and checks the introspection client
// credentials (by introspecting a dummy token), so that a wrong URL or
// secret fails here rather than on every request. It starts no goroutine
// that outlives a fetch; there is nothing to close.
func NewJWKS(ctx context.Context, c JWKSConfig) (*JWKS, error) {
	base := strings.TrimSuffix(c.BaseURL, "/")
	if base == "" {
		return nil, errors.New("guard: JWKSConfig.BaseURL is required")
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return nil, errors.New("guard: JWKSConfig.ClientID and ClientSecret are required for introspection")
	}
	if c.JWKSURL == "" {
		c.JWKSURL = base + wire.PathJWKS
	}
	if c.IntrospectionURL == "" {
		c.IntrospectionURL = base + wire.PathIntrospect
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if c.Issuer == "" {
		c.Issuer = gatehouse.DefaultIssuer
	}
	if c.OAuthIssuer == "" {
		c.OAuthIssuer = base
	}
	if c.Families == nil {
		pub, err := fetchConfiguration(ctx, c.Client, base+wire.PathConfiguration)
		if err != nil {
			return nil, fmt.Errorf("guard: the server's API families: %w (set JWKSConfig.Families to give them)", err)
		}
		c.Families = pub.Families
		if c.InstallUser == "" {
			c.InstallUser = pub.InstallUser
		}
	}
	if c.InstallUser == "" {
		c.InstallUser = gatehouse.DefaultInstallUser
	}
	if c.Leeway <= 0 {
		c.Leeway = 30 * time.Second
	}
	switch {
	case c.TTL == 0:
		c.TTL = 2 * time.Second
	case c.TTL < 0:
		c.TTL = -1
	}
	if c.MaxCached <= 0 {
		c.MaxCached = maxRemoteCache
	}
	if c.KeysMaxAge <= 0 {
		c.KeysMaxAge = 5 * time.Minute
	}
	if c.KeysMinInterval <= 0 {
		c.KeysMinInterval = 30 * time.Second
	}
	if c.Clock == nil {
		c.Clock = gatehouse.SystemClock
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	table, err := FamilyTable(c.Families)
	if err != nil {
		return nil, err
	}
	j := &JWKS{
		keys: &keySet{url: c.JWKSURL, client: c.Client, clock: c.Clock, maxAge: c.KeysMaxAge,
			minInterval: c.KeysMinInterval, log: c.Log},
		intro: &introspector{url: c.IntrospectionURL, clientID: c.ClientID, clientSecret: c.ClientSecret,
			client: c.Client, clock: c.Clock, ttl: max(c.TTL, 0), log: c.Log,
			cache: newTTLCache[introspection](c.MaxCached)},
		check:       NewRemote(base, RemoteOptions{Client: c.Client, TTL: c.TTL}),
		table:       table,
		issuer:      c.Issuer,
		oauthIssuer: c.OAuthIssuer,
		installUser: c.InstallUser,
		leeway:      c.Leeway,
		clock:       c.Clock,
		log:         c.Log,
	}
	j.check.now = c.Clock.Now
	if err := j.keys.refresh(ctx); err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	if _, err := j.intro.ask(ctx, "guard-credentials-check"); err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	return j, nil
}

// claims are what the decision needs of a token: verified locally, or as
// introspection reported them.
type claims struct {
	Issuer, Subject, Scope, SessionID, ConsumerUID, ID string
	ExpiresAt, NotBefore                               time.Time
}

// Decide applies the decision to r, in gatehouse's order, so that the
// answers are gatehouse's: more than one Authorization header (400), then
// the token (401), then the path and query (400 when they cannot be
// judged, 404 for no family), then scope and permissions (403).
func (j *JWKS) Decide(r *http.Request) (*Identity, error) {
	req := RequestOf(r)
	if len(req.Authorization) > 1 {
		return nil, RefusalFrom(policy.ErrManyAuthorizations())
	}
	ctx := r.Context()
	raw := wire.BearerToken(r.Header.Get("Authorization"))
	c, checked, err := j.verify(ctx, raw)
	if err != nil {
		return nil, j.refuse(err)
	}
	m, err := j.table.Resolve(req.Path, req.Query)
	switch {
	case errors.Is(err, policy.ErrUnclaimed):
		return nil, RefusalFrom(policy.ErrNoFamily(req.Path))
	case err != nil:
		return nil, RefusalFrom(policy.ErrCannotJudge(err))
	}
	sc, err := scope.Parse(c.Scope)
	if err != nil {
		return nil, RefusalFrom(policy.ErrInvalidToken("The access token carries a scope that cannot be read."))
	}
	sub := policy.Subject{Username: c.Subject, Consumer: c.ConsumerUID != "", Scope: sc}
	if user, role, catalog := policy.Needs(m, sub); user || role || catalog {
		// The user's record, role or the catalog decide: only the store
		// knows them, so gatehouse decides (and checks the session itself).
		id, err := j.check.Decide(r)
		if err != nil {
			return nil, j.refuse(err)
		}
		return id, nil
	}
	if !checked {
		in, err := j.intro.lookup(ctx, raw)
		if err != nil {
			return nil, j.refuse(err)
		}
		if !in.active {
			return nil, RefusalFrom(policy.ErrInvalidToken("The session of this access token has ended."))
		}
	}
	d := policy.Decide(m, sub, policy.State{}, j.installUser)
	if !d.Allow {
		return nil, RefusalFrom(d.Refusal)
	}
	return &Identity{User: d.ActingUser, ConsumerUID: c.ConsumerUID, SessionID: c.SessionID,
		Scope: c.Scope, Family: m.Family.Name}, nil
}

// refuse turns an error into what the caller sees: refusals as they are;
// "cannot tell" (introspection, JWKS or /auth/check unreachable or 5xx) as
// the 503 with Retry-After that Local gives when the store is down.
func (j *JWKS) refuse(err error) error {
	var rf *Refusal
	if errors.As(err, &rf) {
		return rf
	}
	var ge *gatehouse.Error
	if errors.As(err, &ge) {
		return RefusalFrom(ge)
	}
	if !errors.As(err, new(*errIntrospection)) && !errors.Is(err, context.Canceled) {
		j.log.Warn("guard: decision failed; answering 503", "err", err)
	}
	return RefusalFrom(gatehouse.ErrStoreDown(err))
}

// verify checks a bearer token. For RS256, ES256 and EdDSA it verifies the
// signature locally (checked is false: the session is still to be asked);
// for HS256 it introspects (checked is true: the server verified signature
// and session, and the claims are the ones it reported).
func (j *JWKS) verify(ctx context.Context, raw string) (c claims, checked bool, err error) {
	if raw == "" {
		return c, false, policy.ErrNoToken()
	}
	if len(raw) > 8192 {
		return c, false, policy.ErrInvalidToken("The access token is malformed.")
	}
	h, ok := header(raw)
	if !ok {
		return c, false, policy.ErrInvalidToken("The access token is malformed.")
	}
	switch h.Alg {
	case algRS256, algES256, algEdDSA:
		c, err = j.verifyLocal(ctx, raw, h.Kid)
		return c, false, err
	case algHS256:
		if j.keys.known(h.Kid) {
			// A kid of a published public key with HS256: the key confusion
			// attack. No need to ask.
			return c, false, policy.ErrInvalidToken("The access token signature is invalid.")
		}
		c, err = j.introspected(ctx, raw)
		return c, true, err
	}
	return c, false, policy.ErrInvalidToken("The access token signature is invalid.")
}

type joseHeader struct{ Alg, Kid string }

// header reads a JWT's header, unverified: it only routes the token.
func header(raw string) (joseHeader, bool) {
	t, _, err := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
	if err != nil {
		return joseHeader{}, false
	}
	alg, _ := t.Header["alg"].(string)
	kid, _ := t.Header["kid"].(string)
	return joseHeader{Alg: alg, Kid: kid}, true
}

// verifyLocal verifies an asymmetric token with the JWKS key its kid
// names, accepting only that key's algorithm (token.VerifyWith); issuer and
// times are checked by checkClaims, on this decider's clock.
func (j *JWKS) verifyLocal(ctx context.Context, raw, kid string) (claims, error) {
	k, err := j.keys.get(ctx, kid)
	switch {
	case errors.Is(err, errUnknownKey):
		return claims{}, policy.ErrInvalidToken("The access token signature is invalid.")
	case err != nil:
		return claims{}, err // the set could not be read: cannot tell
	}
	tc, err := token.VerifyWith(raw, token.VerifyOptions{SkipTimes: true}, func(got string) (token.PublicKey, bool) {
		return token.PublicKey{KID: kid, Algorithm: k.alg, Key: k.key}, got == kid
	})
	switch {
	case errors.Is(err, token.ErrSignature), errors.Is(err, token.ErrAlgorithm), errors.Is(err, token.ErrUnknownKey):
		return claims{}, policy.ErrInvalidToken("The access token signature is invalid.")
	case err != nil:
		return claims{}, policy.ErrInvalidToken("The access token is malformed.")
	}
	c := claims{Issuer: tc.Issuer, Subject: tc.Subject, Scope: tc.Audience, SessionID: tc.SessionID,
		ConsumerUID: tc.ConsumerUID, ID: tc.ID, ExpiresAt: tc.ExpiresAt}
	if !tc.NotBefore.Equal(time.Unix(0, 0)) {
		c.NotBefore = tc.NotBefore
	}
	return c, j.checkClaims(c)
}

// introspected asks the server about a token this process cannot verify.
func (j *JWKS) introspected(ctx context.Context, raw string) (claims, error) {
	in, err := j.intro.lookup(ctx, raw)
	if err != nil {
		return claims{}, err
	}
	if !in.active {
		return claims{}, policy.ErrInvalidToken("The access token is not valid, has expired, or its session has ended.")
	}
	if in.claims.SessionID == "" || in.claims.ExpiresAt.IsZero() {
		return claims{}, policy.ErrInvalidToken("The access token is malformed.")
	}
	// Times again on every use: the answer may be cached past them.
	return in.claims, j.checkClaims(in.claims)
}

// checkClaims checks issuer and times, with the leeway. Either issuer will
// do: which kind of token carries which, the server checks when asked about
// the session.
func (j *JWKS) checkClaims(c claims) error {
	if c.Issuer != j.issuer && c.Issuer != j.oauthIssuer {
		return policy.ErrInvalidToken("The access token was issued by someone else.")
	}
	now := j.clock.Now()
	if !now.Before(c.ExpiresAt.Add(j.leeway)) {
		return policy.ErrInvalidToken("The access token has expired.")
	}
	if !c.NotBefore.IsZero() && now.Add(j.leeway).Before(c.NotBefore) {
		return policy.ErrInvalidToken("The access token is not valid yet.")
	}
	return nil
}

// fetchConfiguration reads what the server publishes for resource servers.
func fetchConfiguration(ctx context.Context, client *http.Client, u string) (*policy.Configuration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d", u, resp.StatusCode)
	}
	var pub policy.Configuration
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&pub); err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	if len(pub.Families) == 0 {
		return nil, fmt.Errorf("%s lists no API families", u)
	}
	return &pub, nil
}
