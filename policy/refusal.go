package policy

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
)

// Request is what an enforcement point asks about: the request as sent.
type Request struct {
	// Path is the escaped path as the client sent it (the request line, or
	// the URI a proxy reports), without the query.
	Path string
	// Query is the raw query string, without "?".
	Query string
	// Authorization holds every Authorization header value of the request;
	// more than one is refused.
	Authorization []string
}

// The refusals of the decision that come before scope and permissions, as
// every enforcement point sends them.

// ErrInvalidToken is the answer for a missing, malformed, unverifiable or
// expired token, or one whose session has ended: 401 with a Bearer challenge.
func ErrInvalidToken(desc string) *gatehouse.Error {
	e := &gatehouse.Error{Status: http.StatusUnauthorized, Code: gatehouse.CodeInvalidToken, Description: desc}
	return e.WithHeader("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+desc+`"`)
}

// ErrNoToken is the answer when a request carries no bearer token at all.
// RFC 6750 §3.1 would allow a bare "Bearer" challenge; gatehouse sends
// error="invalid_token" for every 401 alike (SPEC §4.3), so that clients
// need one rule.
func ErrNoToken() *gatehouse.Error {
	return ErrInvalidToken("A bearer token is required (Authorization: Bearer <token>).")
}

// ErrManyAuthorizations is the answer for a request with more than one
// Authorization header: which one a server reads is up to the server.
func ErrManyAuthorizations() *gatehouse.Error {
	return gatehouse.ErrInvalidRequest("The request has more than one Authorization header.")
}

// ErrNoFamily is the answer for a path no API family claims.
func ErrNoFamily(path string) *gatehouse.Error {
	return &gatehouse.Error{Status: http.StatusNotFound, Code: gatehouse.CodeNotFound,
		Description: "No API is served at " + gatehouse.Clip(path, 200) + " on this server."}
}

// ErrCannotJudge is the answer for a request Resolve refuses (a path that
// is not canonical, an OData query naming objects that cannot be known):
// 400 invalid_request naming what is wrong.
func ErrCannotJudge(err error) *gatehouse.Error {
	return gatehouse.ErrInvalidRequest("The request cannot be judged: %s; send it in canonical form.", err.Error())
}
