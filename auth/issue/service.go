// Package issue issues tokens: it authenticates users and consumers,
// creates and refreshes sessions, serves the OAuth2 grants, introspection
// and revocation, counts failures for lockout, and writes the audit trail
// of every token issued or refused.
package issue

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
)

// Meta describes where a request came from, for the session and the audit trail.
type Meta struct {
	Remote string // client address
	Via    string // the endpoint: "p21.v2", "p21.v1", "oauth"
}

// Issued is a successful token request.
type Issued struct {
	AccessToken  string
	RefreshToken string // "" when the session has none
	// ExpiresIn is the access token's lifetime in seconds, as reported to the
	// client (630720000 for never-expiring consumers).
	ExpiresIn int64
	Session   gatehouse.Session
	// Consumer is the consumer behind the token, nil for plain user tokens.
	Consumer *gatehouse.Consumer
}

// Service issues tokens. It is safe for concurrent use.
type Service struct {
	cfg       auth.Config
	store     store.Store
	keys      *token.Ring
	passwords *password.Hasher
	ckeys     *auth.ConsumerKeys
	names     *NameTags
	clock     gatehouse.Clock
	log       *slog.Logger

	consumers *consumerCache
	refusals  *refusals
	recent    recentSessions // consumer sessions created lately (see stale.go)
	refreshes *RefreshTokens
	// ended is told the sessions this service ends (see OnSessionsEnded).
	ended func(ids ...string)
}

// Deps are the parts a Service is built from.
type Deps struct {
	Store        store.Store
	Keys         *token.Ring
	Passwords    *password.Hasher
	ConsumerKeys *auth.ConsumerKeys
	// NameTags stand in for unknown user names in the audit trail; nil:
	// a secret of this process only.
	NameTags *NameTags
	// RefreshTokens derives replacement refresh tokens; every process
	// sharing a store needs the same (NewRefreshTokens of the master key).
	// nil: a secret of this process only.
	RefreshTokens *RefreshTokens
	Clock         gatehouse.Clock
	Log           *slog.Logger
}

// NewService builds a token service.
func NewService(cfg auth.Config, d Deps) *Service {
	if d.Clock == nil {
		d.Clock = gatehouse.SystemClock
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.NameTags == nil {
		d.NameTags = newProcessNameTags()
	}
	if d.RefreshTokens == nil {
		d.RefreshTokens = newRandomRefreshTokens()
	}
	return &Service{
		cfg: cfg.Defaults(), store: d.Store, keys: d.Keys, passwords: d.Passwords,
		ckeys: d.ConsumerKeys, names: d.NameTags, refreshes: d.RefreshTokens, clock: d.Clock, log: d.Log,
		consumers: newConsumerCache(), refusals: newRefusals(d.Store, d.Clock, d.Log),
		ended: func(...string) {},
	}
}

// OnSessionsEnded makes the service tell f about every session it ends
// (refresh-token reuse, a credential that changed while signing in), so
// that this process's verifier forgets them at once rather than at the next
// feed poll. Call before serving.
func (s *Service) OnSessionsEnded(f func(ids ...string)) { s.ended = f }

func (s *Service) sessionEnded(ids ...string) {
	if len(ids) > 0 && ids[0] != "" {
		s.ended(ids...)
	}
}

// Config returns the effective configuration.
func (s *Service) Config() auth.Config { return s.cfg }

// Listener returns the change-feed listener that keeps the service's caches current.
func (s *Service) Listener() store.Listener { return serviceListener{s} }

// maxUsernameLen bounds the user-context string a consumer request may carry.
const maxUsernameLen = 256

// CheckUsername validates a username field: non-empty handling is the
// caller's; here only length and control characters are refused.
func CheckUsername(field, u string) *gatehouse.Error {
	if len(u) > maxUsernameLen {
		return gatehouse.ErrInvalidRequest("%s is longer than %d bytes", field, maxUsernameLen)
	}
	if !utf8.ValidString(u) {
		return gatehouse.ErrInvalidRequest("%s is not valid UTF-8", field)
	}
	for _, r := range u {
		if unicode.IsControl(r) {
			return gatehouse.ErrInvalidRequest("%s contains a control character", field)
		}
	}
	return nil
}

// MaxContextUsername bounds a consumer token's user context, in bytes: far
// above any real user name, and within what every store can index.
const MaxContextUsername = 1024

// CheckContextUsername validates a consumer token's user context: any text
// (SPEC §2.1), but not over MaxContextUsername bytes and without NUL, which
// no store keeps.
func CheckContextUsername(u string) *gatehouse.Error {
	switch {
	case !utf8.ValidString(u):
		return gatehouse.ErrInvalidRequest("username is not valid UTF-8")
	case len(u) > MaxContextUsername:
		return gatehouse.ErrInvalidRequest("username is longer than %d bytes", MaxContextUsername)
	case strings.IndexByte(u, 0) >= 0:
		return gatehouse.ErrInvalidRequest("username contains a NUL character")
	}
	return nil
}

// PasswordToken authenticates a user by password and issues a user token
// with a refresh token (P21 user flow).
func (s *Service) PasswordToken(ctx context.Context, username, pw string, m Meta) (*Issued, error) {
	flow := FlowLabel(gatehouse.FlowUser, m)
	u, err := s.authenticateUser(ctx, username, pw, m, flow)
	if err != nil {
		return nil, err
	}
	return s.passwordSession(ctx, u, nil, s.cfg.UserScope, gatehouse.FlowUser, m, flow, true)
}

// passwordSession starts the session of a user whose password was just
// checked, then makes sure the credential still stands: a password set, or
// the user deleted, while the check ran must not leave a session the
// change did not end. The change ends the sessions it finds after it is
// stored; a session stored after the change is found here, ended, and its
// tokens are never handed out.
func (s *Service) passwordSession(ctx context.Context, u gatehouse.User, c *gatehouse.Consumer, scopeStr, sessFlow string, m Meta, flow string, withRefresh bool) (*Issued, error) {
	iss, err := s.startUserSession(ctx, u.Name, c, scopeStr, sessFlow, m, withRefresh)
	if err != nil {
		return nil, err
	}
	now, err := s.store.GetUser(ctx, u.Name)
	if err == nil && !now.Deleted && now.PasswordHash == u.PasswordHash {
		return iss, nil
	}
	reason := gatehouse.EndPasswordChanged
	if err == nil && now.Deleted {
		reason = gatehouse.EndUserDeleted
	}
	if eerr := s.store.EndSession(ctx, iss.Session.ID, reason, s.clock.Now()); eerr != nil && err == nil {
		err = eerr
	}
	if err != nil && !errors.Is(err, gatehouse.ErrNotFound) {
		// Not confirmed: the tokens are not handed out.
		return nil, s.storeErr(err)
	}
	s.sessionEnded(iss.Session.ID)
	s.audit(ctx, gatehouse.AuditEvent{Actor: "system", Action: "session.end", Target: "session:" + iss.Session.ID,
		Outcome: gatehouse.OutcomeSuccess, Remote: m.Remote, Detail: "reason=" + reason + ": the credential changed during the sign-in"})
	return nil, s.refuseUser(ctx, strings.ToLower(u.Name), u.Name, "credential_changed", m, flow, false)
}

// FlowLabel is the flow name used in audit details.
func FlowLabel(flow string, m Meta) string {
	if m.Via == "" {
		return flow
	}
	return m.Via + "/" + flow
}

// impossibleKey queues the password checks of user names no user can have:
// they take turns among themselves, never ahead of real names.
const impossibleKey = "\x00impossible"

// authenticateUser checks a username and password with uniform answers and
// timing for every failure, and lockout. It returns the user on success.
// Checks of one name take turns, and a locked name is refused without
// hashing (see password.Check).
func (s *Service) authenticateUser(ctx context.Context, username, pw string, m Meta, flow string) (gatehouse.User, error) {
	if !utf8.ValidString(username) {
		return gatehouse.User{}, gatehouse.ErrInvalidRequest("username is not valid UTF-8")
	}
	if CheckUsername("username", username) != nil {
		// Too long, or a control character: no user can have this name. The
		// answer (and the time it takes) is an unknown user's; it is not
		// counted toward a lockout of a name that cannot exist.
		r, err := s.passwords.Check(ctx, password.Check{Key: impossibleKey, Password: pw})
		if err != nil && ctx.Err() != nil {
			return gatehouse.User{}, ctx.Err()
		}
		err = s.refuseUser(ctx, "", s.names.Tag(username), "impossible_username", m, flow, false)
		s.passwords.Pad(ctx, r)
		return gatehouse.User{}, err
	}
	now := s.clock.Now()
	u, err := s.store.GetUser(ctx, username)
	unknown := errors.Is(err, gatehouse.ErrNotFound)
	if err != nil && !unknown {
		return gatehouse.User{}, s.storeErr(err)
	}
	// key counts the failures of the name; name is what the audit trail
	// says. An unknown name may be a password typed into the wrong field:
	// it is recorded, in the audit trail and the lockout counts, only as
	// its tag.
	key, name := strings.ToLower(username), u.Name
	if unknown {
		key = s.names.Tag(username)
		name = key
	}
	var lockErr error
	c := password.Check{Key: strings.ToLower(username), Password: pw, Skip: func() bool {
		if s.cfg.LockoutThreshold <= 0 {
			return false
		}
		n, err := s.store.CountAuthFailures(ctx, key, now, s.cfg.LockoutWindow)
		if err != nil {
			lockErr = err
			return true
		}
		return n >= s.cfg.LockoutThreshold
	}}
	if !unknown {
		c.Hash = u.PasswordHash
	}
	r, err := s.passwords.Check(ctx, c)
	switch {
	case lockErr != nil:
		return gatehouse.User{}, s.storeErr(lockErr)
	case err != nil && ctx.Err() != nil:
		return gatehouse.User{}, ctx.Err()
	case err != nil:
		// A hash we cannot read is a refusal, logged for the operator.
		s.log.WarnContext(ctx, "stored password hash unreadable", "user", u.Name, "err", err)
	}
	// Every refusal is answered after the same work and no sooner than the
	// refusal of an argon2id user (Pad).
	refuse := func(reason string, count bool) (gatehouse.User, error) {
		err := s.refuseUser(ctx, key, name, reason, m, flow, count)
		s.passwords.Pad(ctx, r)
		return gatehouse.User{}, err
	}
	switch {
	case unknown:
		return refuse("unknown_user", true)
	case r.Skipped:
		// Counted like any refusal, so that it does the same work as a
		// wrong password.
		return refuse("locked_out", true)
	case !r.OK:
		return refuse("wrong_password", true)
	case u.Deleted:
		return refuse("deleted_user", false)
	}
	if s.cfg.LockoutThreshold > 0 {
		if n, err := s.store.CountAuthFailures(ctx, key, now, s.cfg.LockoutWindow); err == nil && n > 0 {
			// The sign-in stands; the failures before it only count toward
			// a lockout a little longer than they should.
			if err := s.store.ClearAuthFailures(ctx, key); err != nil {
				s.log.WarnContext(ctx, "forgetting failed sign-ins after a successful one failed", "err", err)
			}
		}
	}
	if r.Rehash {
		if h, ok := s.upgradeHash(ctx, u, pw); ok {
			u.PasswordHash = h
		}
	}
	return u, nil
}

// upgradeHash re-hashes a password with the current parameters after a
// successful sign-in (bcrypt imports, old argon2 parameters), unless the
// hash changed meanwhile (a new password set by an administrator stays).
// Best effort: it reports the new hash when it stored it.
func (s *Service) upgradeHash(ctx context.Context, u gatehouse.User, pw string) (string, bool) {
	h, err := s.passwords.Hash(ctx, pw)
	if err != nil {
		return "", false
	}
	errChanged := errors.New("password hash changed meanwhile")
	_, err = s.store.UpdateUser(ctx, u.Name, func(x *gatehouse.User) error {
		if x.PasswordHash != u.PasswordHash {
			return errChanged
		}
		x.PasswordHash = h
		return nil
	})
	switch {
	case errors.Is(err, errChanged):
		return "", false
	case err != nil:
		s.log.WarnContext(ctx, "password hash upgrade failed", "user", u.Name, "err", err)
		return "", false
	}
	return h, true
}

// refuseUser audits a failed sign-in, counts it for lockout when it was a
// wrong secret, and returns the one uniform answer.
func (s *Service) refuseUser(ctx context.Context, key, name, reason string, m Meta, flow string, count bool) error {
	now := s.clock.Now()
	if count && s.cfg.LockoutThreshold > 0 {
		n, err := s.store.RecordAuthFailure(ctx, key, now, s.cfg.LockoutWindow)
		if err != nil {
			return s.storeErr(err)
		}
		if n >= s.cfg.LockoutThreshold {
			// Of the processes that see the threshold reached, the one that
			// opens the lockout audits its start; its end is audited when
			// CloseLockouts finds it over.
			opened, err := s.store.OpenLockout(ctx, key, now)
			switch {
			case err != nil:
				s.log.WarnContext(ctx, "lockout not recorded; its start and end will not be audited", "user", name, "err", err)
			case opened:
				s.audit(ctx, gatehouse.AuditEvent{At: now, Actor: "system", Action: "lockout.start", Target: "user:" + name,
					Outcome: gatehouse.OutcomeSuccess, Remote: m.Remote,
					Detail: fmt.Sprintf("%d failed sign-ins within %s", n, s.cfg.LockoutWindow)})
			}
		}
	}
	s.audit(ctx, gatehouse.AuditEvent{Actor: "user:" + name, Action: "token.refuse", Target: "user:" + name,
		Outcome: gatehouse.OutcomeFailure, Remote: m.Remote, Detail: flow + ": " + reason})
	return gatehouse.ErrBadCredentials()
}

// AdoptLockouts records as open the lockouts whose start is in the audit
// trail of the last day with no end after it and no open record: those
// begun by a server that did not record lockouts yet. Their end is then
// audited by CloseLockouts like any other; their start is not audited
// again. It returns how many it adopted.
func (s *Service) AdoptLockouts(ctx context.Context) (int, error) {
	if s.cfg.LockoutThreshold <= 0 {
		return 0, nil
	}
	evs, err := s.store.ListAudit(ctx, store.AuditFilter{Action: "lockout.", Since: s.clock.Now().Add(-24 * time.Hour)})
	if err != nil {
		return 0, err
	}
	open := map[string]time.Time{}
	for _, e := range evs { // in id order
		key, ok := strings.CutPrefix(e.Target, "user:")
		if !ok {
			continue
		}
		key = strings.ToLower(key)
		switch e.Action {
		case "lockout.start":
			open[key] = e.At
		case "lockout.end":
			delete(open, key)
		}
	}
	n := 0
	for key, at := range open {
		opened, err := s.store.OpenLockout(ctx, key, at)
		if err != nil {
			return n, err
		}
		if opened {
			n++
		}
	}
	return n, nil
}

// CloseLockouts audits the end of every lockout that is over (its failures
// left the window), at the time it ended, and returns how many. The store
// hands each lockout to one caller, so that of several replicas sweeping at
// once one audits it.
func (s *Service) CloseLockouts(ctx context.Context) (int, error) {
	if s.cfg.LockoutThreshold <= 0 {
		return 0, nil
	}
	ls, err := s.store.CloseLockouts(ctx, s.clock.Now(), s.cfg.LockoutWindow, s.cfg.LockoutThreshold)
	if err != nil {
		return 0, err
	}
	for _, l := range ls {
		s.audit(ctx, gatehouse.AuditEvent{At: l.Until, Actor: "system", Action: "lockout.end", Target: "user:" + l.Key,
			Outcome: gatehouse.OutcomeSuccess,
			Detail:  "failures aged out of the lockout window; locked since " + l.Since.UTC().Format(time.RFC3339)})
	}
	return len(ls), nil
}

// startUserSession creates a session for a user (and optionally the consumer
// that asked for it) and signs its access token.
func (s *Service) startUserSession(ctx context.Context, username string, c *gatehouse.Consumer, scopeStr, flow string, m Meta, withRefresh bool) (*Issued, error) {
	now := s.clock.Now()
	id := uuid.New()
	sess := gatehouse.Session{
		ID: id.String(), Username: username, Flow: flow, Scope: scopeStr,
		CreatedAt: now, RemoteAddr: m.Remote,
	}
	// A user token lives --user-token-ttl, also when an OAuth client asked
	// for it; a shorter client lifetime wins.
	accessExp := now.Add(s.cfg.UserTokenTTL)
	if c != nil {
		sess.ConsumerUID = c.UID
		if !c.NeverExpires() && c.Lifetime < s.cfg.UserTokenTTL {
			accessExp = now.Add(c.Lifetime)
		}
	}
	sess.ExpiresAt = accessExp
	refresh, refreshHash := s.mintRefresh(&sess, now, withRefresh)
	at, err := s.sign(ctx, &sess, accessExp, now)
	if err != nil {
		return nil, err
	}
	ev := s.issueEvent(&sess, c, m)
	if _, err := s.createSession(ctx, store.NewSession{
		Session: sess, RefreshHash: refreshHash, MaxSessions: s.cfg.MaxSessions,
		Audit: []gatehouse.AuditEvent{ev},
	}); err != nil {
		return nil, s.storeErr(err)
	}
	if c != nil {
		s.recent.add(id, c)
	}
	return &Issued{AccessToken: at, RefreshToken: refresh, ExpiresIn: int64(accessExp.Sub(now) / time.Second),
		Session: sess, Consumer: c}, nil
}

func (s *Service) issueEvent(sess *gatehouse.Session, c *gatehouse.Consumer, m Meta) gatehouse.AuditEvent {
	actor := "user:" + sess.Username
	if c != nil {
		actor = "consumer:" + c.UIDString()
	}
	detail := FlowLabel(sess.Flow, m)
	if c != nil && sess.Username != "" {
		detail += " username=" + sess.Username
	}
	return gatehouse.AuditEvent{At: sess.CreatedAt, Actor: actor, Action: "token.issue", Target: "session:" + sess.ID,
		Outcome: gatehouse.OutcomeSuccess, Remote: m.Remote, Detail: detail}
}

// consumerExpiry gives the access token's exp and the session's expiry for a
// consumer token issued at now.
func consumerExpiry(c *gatehouse.Consumer, now time.Time) (exp, sessionExp time.Time) {
	if c.NeverExpires() {
		t := time.Unix(gatehouse.NeverExpiresUnix, 0)
		return t, t
	}
	t := now.Add(c.Lifetime)
	return t, t
}

func expiresIn(c *gatehouse.Consumer, exp, now time.Time) int64 {
	if c != nil && c.NeverExpires() {
		return gatehouse.NeverExpiresIn
	}
	return int64(exp.Sub(now).Round(time.Second) / time.Second)
}

// sign signs an access token of sess, with the algorithm and issuer of its
// flow (auth.Config.Signing).
func (s *Service) sign(ctx context.Context, sess *gatehouse.Session, exp, now time.Time) (string, error) {
	return s.signClaims(ctx, sess, exp, now, token.RandomToken(16))
}

// signClaims is sign with the token's id jti.
func (s *Service) signClaims(ctx context.Context, sess *gatehouse.Session, exp, now time.Time, jti string) (string, error) {
	alg, iss := s.cfg.Signing(sess.Flow)
	_, span := startSpan(ctx, "token.sign")
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.String("gatehouse.algorithm", alg))
	}
	cl := token.Claims{
		Issuer: iss, Subject: sess.Username, Audience: sess.Scope,
		ExpiresAt: exp, IssuedAt: now, NotBefore: now, ID: jti,
		SessionID: sess.ID,
	}
	if sess.ConsumerUID != 0 {
		cl.ConsumerUID = fmt.Sprint(sess.ConsumerUID)
	}
	kr := s.keys.Load()
	if kr == nil {
		return "", gatehouse.ErrStoreDown(errors.New("no signing keys loaded"))
	}
	t, err := kr.Sign(alg, cl)
	if err != nil {
		return "", fmt.Errorf("sign %s token: %w", alg, err)
	}
	return t, nil
}

// ConsumerToken authenticates a consumer key and issues a consumer token,
// with username as the user context when given (P21 consumer flow). The
// username is not checked here beyond being text: P21 accepts any string
// and validates it only where the user is used (SPEC §2.1, §4.4).
func (s *Service) ConsumerToken(ctx context.Context, key, username string, m Meta) (*Issued, error) {
	if e := CheckContextUsername(username); e != nil {
		return nil, e
	}
	c, err := s.consumerByKey(ctx, key, m, FlowLabel(gatehouse.FlowConsumer, m))
	if err != nil {
		return nil, err
	}
	return s.startConsumerSession(ctx, c, username, gatehouse.FlowConsumer, m, false)
}

// mintRefresh makes a new session's refresh token and its hash when the
// session has one (withRefresh), and extends the session to the refresh
// lifetime; otherwise both are empty.
func (s *Service) mintRefresh(sess *gatehouse.Session, now time.Time, withRefresh bool) (refresh string, hash []byte) {
	if !withRefresh {
		return "", nil
	}
	refresh = token.RandomToken(32)
	h := sha256.Sum256([]byte(refresh))
	if r := now.Add(s.cfg.RefreshTTL); r.After(sess.ExpiresAt) {
		sess.ExpiresAt = r
	}
	return refresh, h[:]
}

func (s *Service) startConsumerSession(ctx context.Context, cc *cachedConsumer, username, flow string, m Meta, withRefresh bool) (*Issued, error) {
	now := s.clock.Now()
	c := &cc.Consumer
	id := uuid.New()
	sess := gatehouse.Session{
		ID: id.String(), Username: username, ConsumerUID: c.UID, Flow: flow,
		Scope: cc.scope, CreatedAt: now, RemoteAddr: m.Remote,
	}
	exp, sessExp := consumerExpiry(c, now)
	sess.ExpiresAt = sessExp
	refresh, refreshHash := s.mintRefresh(&sess, now, withRefresh)
	at, err := s.sign(ctx, &sess, exp, now)
	if err != nil {
		return nil, err
	}
	if _, err := s.createSession(ctx, store.NewSession{
		Session: sess, RefreshHash: refreshHash, MaxSessions: s.cfg.MaxSessions,
		Audit: []gatehouse.AuditEvent{s.issueEvent(&sess, c, m)},
	}); err != nil {
		return nil, s.storeErr(err)
	}
	s.recent.add(id, c)
	return &Issued{AccessToken: at, RefreshToken: refresh, ExpiresIn: expiresIn(c, exp, now), Session: sess, Consumer: c}, nil
}

// consumerByKey finds the enabled consumer holding key, or answers
// invalid_client (audited).
func (s *Service) consumerByKey(ctx context.Context, key string, m Meta, flow string) (*cachedConsumer, error) {
	if key == "" || len(key) > 512 {
		return nil, s.refuseClient(ctx, "", "malformed_key", m, flow)
	}
	h := s.ckeys.Hash(key)
	c, err := s.consumers.byHash(ctx, s.store, h)
	switch {
	case errors.Is(err, gatehouse.ErrNotFound):
		return nil, s.refuseClient(ctx, "", "unknown_key", m, flow)
	case err != nil:
		return nil, s.storeErr(err)
	case c.Disabled:
		return nil, s.refuseClient(ctx, c.UIDString(), "disabled", m, flow)
	}
	return c, nil
}

func (s *Service) refuseClient(ctx context.Context, uid, reason string, m Meta, flow string) error {
	actor := "consumer:unknown"
	if uid != "" {
		actor = "consumer:" + uid
	}
	s.audit(ctx, gatehouse.AuditEvent{Actor: actor, Action: "token.refuse", Target: actor,
		Outcome: gatehouse.OutcomeFailure, Remote: m.Remote, Detail: flow + ": " + reason})
	return gatehouse.ErrBadClient()
}

// RefreshToken spends a refresh token of a plain user session (P21 refresh
// flow) and issues a new access token and a new refresh token.
func (s *Service) RefreshToken(ctx context.Context, refresh string, m Meta) (*Issued, error) {
	return s.refresh(ctx, refresh, nil, m)
}

// refresh rotates a refresh token. client is the authenticated OAuth client,
// or nil on the P21 endpoint, where only plain user sessions refresh.
func (s *Service) refresh(ctx context.Context, refresh string, client *gatehouse.Consumer, m Meta) (*Issued, error) {
	flow := FlowLabel("refresh", m)
	if refresh == "" || len(refresh) > 512 {
		return nil, s.refuseRefresh(ctx, "", "malformed", m, flow)
	}
	old := sha256.Sum256([]byte(refresh))
	sess, err := s.store.FindSessionByRefresh(ctx, old[:])
	switch {
	case errors.Is(err, gatehouse.ErrNotFound):
		return nil, s.refuseRefresh(ctx, "", "unknown", m, flow)
	case err != nil:
		return nil, s.storeErr(err)
	}
	var wantUID int64
	if client != nil {
		wantUID = client.UID
	}
	if sess.ConsumerUID != wantUID {
		// A token of another client is treated as unknown: nothing is spent.
		return nil, s.refuseRefresh(ctx, sess.ID, "other_client", m, flow)
	}
	now := s.clock.Now()
	// The replacement is derived from the token, so that a retry within the
	// reuse grace presents the same one and gets the same pair.
	newRefresh, jti := s.refreshes.next(refresh)
	nh := sha256.Sum256([]byte(newRefresh))
	ev := gatehouse.AuditEvent{At: now, Actor: "user:" + sess.Username, Action: "token.refresh", Target: "session:" + sess.ID,
		Outcome: gatehouse.OutcomeSuccess, Remote: m.Remote, Detail: flow}
	if client != nil {
		ev.Actor = "consumer:" + client.UIDString()
	}
	ev.RequestID = gatehouse.RequestID(ctx)
	sctx, span := startSpan(ctx, "store.refresh_session")
	res, err := s.store.RefreshSession(sctx, store.Refresh{
		OldHash: old[:], NewHash: nh[:], Now: now, ExpiresAt: now.Add(s.cfg.RefreshTTL),
		Grace: s.cfg.RefreshReuseGrace, Audit: []gatehouse.AuditEvent{ev},
	})
	endSpan(span, err)
	switch {
	case errors.Is(err, gatehouse.ErrRefreshReused):
		// Ended in the store; here at once, not at the next feed poll.
		s.sessionEnded(res.Session.ID)
		return nil, s.refuseRefresh(ctx, res.Session.ID, "reused; session ended", m, flow)
	case errors.Is(err, gatehouse.ErrSessionEnded):
		return nil, s.refuseRefresh(ctx, res.Session.ID, "session ended", m, flow)
	case errors.Is(err, gatehouse.ErrNotFound):
		return nil, s.refuseRefresh(ctx, "", "unknown", m, flow)
	case err != nil:
		return nil, s.storeErr(err)
	}
	sess = res.Session
	if res.Retry {
		ev.At, ev.Detail = now, flow+": retry within the reuse grace; the same pair again"
		s.audit(ctx, ev)
	}
	// Claims are computed from the time of the rotation, so that a retry
	// signs the same ones.
	iat := res.At
	exp := iat.Add(s.cfg.UserTokenTTL)
	var c *gatehouse.Consumer
	if client != nil {
		c = client
		switch {
		case sess.Flow != gatehouse.FlowOAuthPassword:
			exp, _ = consumerExpiry(client, iat)
		case !client.NeverExpires() && client.Lifetime < s.cfg.UserTokenTTL:
			exp = iat.Add(client.Lifetime)
		}
	}
	if exp.After(sess.ExpiresAt) {
		exp = sess.ExpiresAt
	}
	if !now.Before(exp) {
		return nil, s.refuseRefresh(ctx, sess.ID, "retry after the access token expired", m, flow)
	}
	at, err := s.signClaims(ctx, &sess, exp, iat, jti)
	if err != nil {
		return nil, err
	}
	return &Issued{AccessToken: at, RefreshToken: newRefresh, ExpiresIn: int64(exp.Sub(now).Round(time.Second) / time.Second),
		Session: sess, Consumer: c}, nil
}

func (s *Service) refuseRefresh(ctx context.Context, sessionID, reason string, m Meta, flow string) error {
	target := "refresh_token"
	if sessionID != "" {
		target = "session:" + sessionID
	}
	s.audit(ctx, gatehouse.AuditEvent{Actor: "unknown", Action: "token.refuse", Target: target,
		Outcome: gatehouse.OutcomeFailure, Remote: m.Remote, Detail: flow + ": " + reason})
	return gatehouse.ErrInvalidGrant("The refresh token is invalid, expired or already used.")
}

// audit appends an event; a failure to write it is logged, not returned,
// because the answer to the client does not depend on it. Refusals
// (outcome failure) are counted: see refusals.go.
func (s *Service) audit(ctx context.Context, ev gatehouse.AuditEvent) {
	if ev.At.IsZero() {
		ev.At = s.clock.Now()
	}
	if ev.Outcome == gatehouse.OutcomeFailure {
		// Counted with the refusals like it: a row for many requests.
		s.refusals.record(ctx, ev)
		return
	}
	if ev.RequestID == "" {
		ev.RequestID = gatehouse.RequestID(ctx)
	}
	if err := s.store.AppendAudit(ctx, ev); err != nil {
		s.log.WarnContext(ctx, "audit write failed", "action", ev.Action, "err", err)
	}
}

// storeErr turns a store failure into the 503 answer. Protocol errors pass
// through; context errors become the 503 answer too, but are not logged as a
// store failure.
func (s *Service) storeErr(err error) error {
	var pe *gatehouse.Error
	if errors.As(err, &pe) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return gatehouse.ErrStoreDown(err)
	}
	s.log.Error("store failure", "err", err)
	return gatehouse.ErrStoreDown(err)
}

// SignIn checks a user name and password for an interactive sign-in that
// issues no token (the admin console), with the same uniform refusals,
// timing and lockout as the token endpoints: a refusal is audited as
// token.refuse (flow m.Via/user) and counts toward the lockout. It returns
// the user; whether the user may use what they signed in to, and the
// audit of that, is the caller's.
func (s *Service) SignIn(ctx context.Context, username, pw string, m Meta) (gatehouse.User, error) {
	return s.authenticateUser(ctx, username, pw, m, FlowLabel(gatehouse.FlowUser, m))
}
