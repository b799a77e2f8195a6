package issue

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth/verify"
)

// OAuth is the OAuth2 side of the token service (SPEC §5): client
// authentication, the password, client_credentials and refresh_token
// grants, introspection (RFC 7662) and revocation (RFC 7009). Clients are
// consumers; tokens and sessions are the same as those of the P21 flows.
type OAuth struct {
	s *Service
	v *verify.Verifier
}

// NewOAuth builds the OAuth2 service on a token service and the verifier of
// the same process (introspection asks it, revocation tells it at once).
func NewOAuth(s *Service, v *verify.Verifier) *OAuth { return &OAuth{s: s, v: v} }

// ClientAuth is the client authentication of a request as sent: the
// client_id (a consumer name, matched case-insensitively, or its uid) and
// the secret (the consumer key).
type ClientAuth struct {
	ID     string
	Secret string
	// AltID and AltSecret are second readings of ID and Secret, tried once
	// when the first fails: HTTP Basic credentials exactly as sent, for the
	// many clients that do not form-encode them (RFC 6749 §2.3.1). Empty
	// when there is no other reading.
	AltID, AltSecret string
}

// Client is an authenticated OAuth client. Only AuthenticateClient makes
// one, so holding a Client proves the request authenticated.
type Client struct{ c *cachedConsumer }

// Consumer returns the consumer behind the client.
func (c *Client) Consumer() gatehouse.Consumer { return c.c.Consumer }

// Scope is the client's effective scope string, as its tokens carry it.
func (c *Client) Scope() string { return c.c.scope }

// maxSecretLen bounds a client secret; consumer keys are 36 bytes.
const maxSecretLen = 512

// AuthenticateClient finds the enabled consumer whose key is ca's secret
// and whose name or uid is ca's client_id. Every failure is the one
// invalid_client answer, audited without the secret.
func (o *OAuth) AuthenticateClient(ctx context.Context, ca ClientAuth, m Meta) (*Client, error) {
	flow := FlowLabel("client_auth", m)
	if ca.ID == "" || ca.Secret == "" {
		return nil, o.s.refuseClient(ctx, "", "no_credentials", m, flow)
	}
	secrets := []string{ca.Secret}
	if ca.AltSecret != "" && ca.AltSecret != ca.Secret {
		secrets = append(secrets, ca.AltSecret)
	}
	var found *cachedConsumer
	for _, sec := range secrets {
		if len(sec) > maxSecretLen {
			continue
		}
		h := o.s.ckeys.Hash(sec)
		c, err := o.s.consumers.byHash(ctx, o.s.store, h)
		switch {
		case errors.Is(err, gatehouse.ErrNotFound):
			continue
		case err != nil:
			return nil, o.s.storeErr(err)
		}
		// The lookup was by hash already; compare once more in constant
		// time so that no code path relies on a variable-time match.
		if hmac.Equal(c.KeyHash, h) {
			found = c
			break
		}
	}
	switch {
	case found == nil:
		return nil, o.s.refuseClient(ctx, "", "unknown_key", m, flow)
	case !clientIDMatches(&found.Consumer, ca.ID) && !(ca.AltID != "" && clientIDMatches(&found.Consumer, ca.AltID)):
		// The key is right but names another client: refuse, as a key
		// alone must not be enough when a client_id is given.
		return nil, o.s.refuseClient(ctx, found.UIDString(), "client_id_mismatch", m, flow)
	case found.Disabled:
		return nil, o.s.refuseClient(ctx, found.UIDString(), "disabled", m, flow)
	}
	return &Client{c: found}, nil
}

func clientIDMatches(c *gatehouse.Consumer, id string) bool {
	return strings.EqualFold(c.Name, id) || c.UIDString() == id
}

// ErrUnauthorizedClient is the answer when a client may not use a grant.
func ErrUnauthorizedClient(grant string) *gatehouse.Error {
	return &gatehouse.Error{Status: http.StatusBadRequest, Code: gatehouse.CodeUnauthorizedClient,
		Description: "This client is not allowed to use the " + grant + " grant."}
}

// allowGrant refuses (and audits) a grant the client is not registered for.
func (o *OAuth) allowGrant(ctx context.Context, cl *Client, grant string, m Meta) error {
	if cl.c.AllowsGrant(grant) {
		return nil
	}
	actor := "consumer:" + cl.c.UIDString()
	o.s.audit(ctx, gatehouse.AuditEvent{Actor: actor, Action: "token.refuse", Target: actor,
		Outcome: gatehouse.OutcomeFailure, Remote: m.Remote, Detail: FlowLabel(grant, m) + ": grant_not_allowed"})
	return ErrUnauthorizedClient(grant)
}

// PasswordGrant authenticates a user for a client (the APX protocol): the
// same checks, lockout and uniform answers as the P21 user flow. The token
// carries the client's scope, and a refresh token when the client may use
// the refresh_token grant.
func (o *OAuth) PasswordGrant(ctx context.Context, cl *Client, username, pw string, m Meta) (*Issued, error) {
	if err := o.allowGrant(ctx, cl, gatehouse.GrantPassword, m); err != nil {
		return nil, err
	}
	flow := FlowLabel(gatehouse.FlowOAuthPassword, m)
	u, err := o.s.authenticateUser(ctx, username, pw, m, flow)
	if err != nil {
		return nil, err
	}
	c := cl.c.Consumer
	return o.s.passwordSession(ctx, u, &c, cl.c.scope, gatehouse.FlowOAuthPassword, m, flow,
		cl.c.AllowsGrant(gatehouse.GrantRefreshToken))
}

// ClientCredentialsGrant issues a consumer token to the client itself, with
// a refresh token when the client may use the refresh_token grant.
func (o *OAuth) ClientCredentialsGrant(ctx context.Context, cl *Client, m Meta) (*Issued, error) {
	return o.s.startConsumerSession(ctx, cl.c, "", gatehouse.FlowOAuthClient, m,
		cl.c.AllowsGrant(gatehouse.GrantRefreshToken))
}

// RefreshGrant rotates a refresh token of one of the client's sessions. A
// spent token ends its session (reuse detection), at once for this
// process (see Service.OnSessionsEnded); a token of another client is
// refused without being spent.
func (o *OAuth) RefreshGrant(ctx context.Context, cl *Client, refresh string, m Meta) (*Issued, error) {
	if err := o.allowGrant(ctx, cl, gatehouse.GrantRefreshToken, m); err != nil {
		return nil, err
	}
	c := cl.c.Consumer
	return o.s.refresh(ctx, refresh, &c, m)
}

// Introspection is what RFC 7662 reports about a token. Only Active is
// set for a token that is not active.
type Introspection struct {
	Active bool
	// TokenType is "Bearer" for access tokens, "" for refresh tokens.
	TokenType string
	Subject   string // the username, "" for none
	// ClientID is the uid of the consumer behind the token, "" for none.
	ClientID  string
	Scope     string
	Issuer    string
	JTI       string // access tokens only
	SessionID string
	ExpiresAt time.Time
	IssuedAt  time.Time
	NotBefore time.Time // access tokens only
}

// Introspect reports whether a token is active, for an authenticated
// client. Access tokens are checked by the verifier (signature, expiry,
// session state, answered from memory). Refresh tokens are reported only
// to the client they were issued to, and only while not spent and their
// session is active. A store that cannot be read is an error (503), never
// an "inactive".
func (o *OAuth) Introspect(ctx context.Context, cl *Client, tok, hint string, m Meta) (Introspection, error) {
	_ = hint // the token's shape tells the two kinds apart exactly
	if looksLikeJWT(tok) {
		id, err := o.v.Verify(ctx, tok)
		if err != nil {
			if unavailable(err) {
				return Introspection{}, err
			}
			return Introspection{}, nil
		}
		c := id.Claims
		return Introspection{Active: true, TokenType: "Bearer", Subject: c.Subject, ClientID: c.ConsumerUID,
			Scope: c.Audience, Issuer: c.Issuer, JTI: c.ID, SessionID: c.SessionID,
			ExpiresAt: c.ExpiresAt, IssuedAt: c.IssuedAt, NotBefore: c.NotBefore}, nil
	}
	if tok == "" || len(tok) > 512 {
		return Introspection{}, nil
	}
	h := sha256.Sum256([]byte(tok))
	sess, spent, err := o.s.store.FindRefreshToken(ctx, h[:])
	switch {
	case errors.Is(err, gatehouse.ErrNotFound):
		return Introspection{}, nil
	case err != nil:
		return Introspection{}, o.s.storeErr(err)
	}
	if spent || sess.ConsumerUID != cl.c.UID || !sess.Active(o.s.clock.Now()) {
		return Introspection{}, nil
	}
	_, iss := o.s.cfg.Signing(sess.Flow)
	return Introspection{Active: true, Subject: sess.Username, ClientID: strconv.FormatInt(sess.ConsumerUID, 10),
		Scope: sess.Scope, Issuer: iss, SessionID: sess.ID,
		ExpiresAt: sess.ExpiresAt, IssuedAt: sess.CreatedAt}, nil
}

// Revoke ends the session behind an access or refresh token when the token
// was issued to the client (RFC 7009). A valid token of another client is
// refused with unauthorized_client (RFC 7009 §2.1: "the request is refused
// and the client is informed of the error"), and changes nothing; an
// invalid, unknown or expired token, or one whose session has ended, is a
// silent no-op (§2.2) whoever asks. The session
// ends at once for this process's verifier and within a feed poll for every
// other process.
func (o *OAuth) Revoke(ctx context.Context, cl *Client, tok, hint string, m Meta) error {
	_ = hint // the token's shape tells the two kinds apart exactly
	var sid string
	if looksLikeJWT(tok) {
		if len(tok) > 8192 {
			return nil
		}
		// Signature and issuer only: an expired token or one whose session
		// already ended may still be revoked (a no-op then).
		c, err := o.v.Claims(tok)
		if err != nil {
			if unavailable(err) {
				return err
			}
			return nil
		}
		if !o.s.clock.Now().Before(c.ExpiresAt) {
			return nil // expired: nothing to revoke, whoever asks
		}
		live, err := o.liveSession(ctx, c.SessionID)
		if err != nil || !live {
			return err
		}
		if c.ConsumerUID != cl.c.UIDString() {
			return o.notYours(ctx, cl, m)
		}
		sid = c.SessionID
	} else {
		if tok == "" || len(tok) > 512 {
			return nil
		}
		h := sha256.Sum256([]byte(tok))
		sess, err := o.s.store.FindSessionByRefresh(ctx, h[:])
		switch {
		case errors.Is(err, gatehouse.ErrNotFound):
			return nil
		case err != nil:
			return o.s.storeErr(err)
		}
		if !sess.Active(o.s.clock.Now()) {
			return nil // ended or expired: nothing to revoke, whoever asks
		}
		if sess.ConsumerUID != cl.c.UID {
			return o.notYours(ctx, cl, m)
		}
		sid = sess.ID
	}
	now := o.s.clock.Now()
	err := o.s.store.EndSession(ctx, sid, gatehouse.EndRevoked, now)
	switch {
	case errors.Is(err, gatehouse.ErrNotFound):
		return nil
	case err != nil:
		return o.s.storeErr(err)
	}
	o.v.SessionEnded(sid)
	actor := "consumer:" + cl.c.UIDString()
	o.s.audit(ctx, gatehouse.AuditEvent{At: now, Actor: actor, Action: "session.end", Target: "session:" + sid,
		Outcome: gatehouse.OutcomeSuccess, Remote: m.Remote, Detail: FlowLabel("revoke", m) + ": " + gatehouse.EndRevoked})
	return nil
}

// liveSession reports whether session id exists and is active.
func (o *OAuth) liveSession(ctx context.Context, id string) (bool, error) {
	sess, err := o.s.store.GetSession(ctx, id)
	switch {
	case errors.Is(err, gatehouse.ErrNotFound):
		return false, nil
	case err != nil:
		return false, o.s.storeErr(err)
	}
	return sess.Active(o.s.clock.Now()), nil
}

// notYours refuses the revocation of another client's token, audited.
func (o *OAuth) notYours(ctx context.Context, cl *Client, m Meta) error {
	actor := "consumer:" + cl.c.UIDString()
	o.s.audit(ctx, gatehouse.AuditEvent{At: o.s.clock.Now(), Actor: actor, Action: "token.revoke", Target: actor,
		Outcome: gatehouse.OutcomeFailure, Remote: m.Remote, Detail: FlowLabel("revoke", m) + ": token of another client"})
	return &gatehouse.Error{Status: http.StatusBadRequest, Code: gatehouse.CodeUnauthorizedClient,
		Description: "The token was not issued to this client."}
}

// looksLikeJWT tells an access token (three dot-separated parts) from a
// refresh token (one base64url string without dots).
func looksLikeJWT(tok string) bool { return strings.Count(tok, ".") == 2 }

// unavailable reports whether err means "cannot tell right now" (503).
func unavailable(err error) bool {
	var pe *gatehouse.Error
	return errors.As(err, &pe) && pe.Status >= 500
}
