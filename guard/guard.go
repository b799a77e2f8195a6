// Package guard lets a Go resource server enforce gatehouse's authorization
// decision itself, as net/http middleware: the same answers as gatehouse's
// gateway and /auth/check, with the verified identity in the request
// context.
//
// Three deciders are provided. Local opens the gatehouse store (the same
// --data directory or database, and master key) and decides in-process,
// from memory, following the store's change feed. Remote asks a gatehouse
// server's /auth/check and caches allowed answers for a moment. JWKS
// verifies tokens with the server's published keys, asks introspection for
// session state, decides scope-only requests itself and hands those that
// need the store's user and role data to /auth/check.
package guard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/server/render"
	"github.com/gatehouse/gatehouse/wire"
)

// Identity is who a request acts for, once allowed.
type Identity struct {
	// User is the acting user: the token's user context, or the install
	// user for Transaction API calls without one; "" for none.
	User string
	// ConsumerUID is the consumer behind the token, "" for user tokens.
	ConsumerUID string
	// SessionID is the token's middleware session.
	SessionID string
	// Scope is the token's scope string.
	Scope string
	// Family is the API family of the request path.
	Family string
}

// Decider decides whether a request may proceed.
type Decider interface {
	// Decide returns the identity of an allowed request, or a *Refusal.
	Decide(r *http.Request) (*Identity, error)
}

// DeciderFunc adapts a function to a Decider.
type DeciderFunc func(r *http.Request) (*Identity, error)

// Decide calls f(r).
func (f DeciderFunc) Decide(r *http.Request) (*Identity, error) { return f(r) }

// Refusal is a request that may not proceed: the HTTP status and the
// error body gatehouse would send.
type Refusal struct {
	Status      int
	Code        string
	Description string
	// Header holds response headers to send with it (WWW-Authenticate,
	// Retry-After).
	Header http.Header
}

func (r *Refusal) Error() string {
	return strconv.Itoa(r.Status) + " " + r.Code + ": " + r.Description
}

type ctxKey struct{}

// FromContext returns the identity the middleware put in a request's context.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(*Identity)
	return id, ok
}

// Middleware refuses requests the decider refuses (with gatehouse's JSON
// error body) and passes the others on with the identity in their context,
// after removing every header that could pass for one of gatehouse's
// identity headers (X-Gatehouse-*, in any case, with "_" for "-"): the
// handler learns the identity from FromContext only.
func Middleware(d Decider) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := d.Decide(r)
			if err != nil {
				WriteRefusal(w, err)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, id))
			for k := range r.Header {
				if wire.IsIdentityHeader(k) {
					r.Header = r.Header.Clone()
					wire.StripIdentityHeaders(r.Header)
					break
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequestOf is what the decision is asked about r: its path and query as
// the client sent them, and every Authorization header.
func RequestOf(r *http.Request) policy.Request {
	path, query := r.URL.EscapedPath(), r.URL.RawQuery
	if t := r.RequestURI; strings.HasPrefix(t, "/") {
		path, query, _ = strings.Cut(t, "?")
	}
	return policy.Request{Path: path, Query: query, Authorization: r.Header.Values("Authorization")}
}

// WriteRefusal writes err as gatehouse does, with the server's own error
// writer: its status, headers and a JSON {"error","error_description"}
// body. Errors that are not a *Refusal are answered 503, since the decision
// could not be made.
func WriteRefusal(w http.ResponseWriter, err error) {
	var rf *Refusal
	if !errors.As(err, &rf) {
		render.JSONError(w, gatehouse.ErrStoreDown(err))
		return
	}
	for k, vs := range rf.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	render.JSONError(w, &gatehouse.Error{Status: rf.Status, Code: rf.Code, Description: rf.Description})
}

// FamilyTable is the table of fams, or of the default families when fams
// is nil.
func FamilyTable(fams []policy.Family) (*policy.Table, error) {
	if fams == nil {
		fams = policy.DefaultFamilies()
	}
	t, err := policy.NewTable(fams)
	if err != nil {
		return nil, fmt.Errorf("API families: %w", err)
	}
	return t, nil
}

// RefusalFrom turns a *gatehouse.Error (a refusal of the decision) into
// the *Refusal a Decider returns; other errors are returned as they are,
// and Middleware answers them 503.
func RefusalFrom(err error) error {
	var ge *gatehouse.Error
	if !errors.As(err, &ge) {
		return err
	}
	h := ge.Header.Clone()
	if ge.RetryAfter > 0 {
		if h == nil {
			h = http.Header{}
		}
		h.Set("Retry-After", strconv.Itoa(int((ge.RetryAfter+time.Second-1)/time.Second)))
	}
	return &Refusal{Status: ge.Status, Code: ge.Code, Description: ge.Description, Header: h}
}
