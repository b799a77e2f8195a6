package gateway

import (
	"errors"
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server/render"
)

// refusal is the protocol error for a refused decision: a *gatehouse.Error
// as is, anything else a 503 (never a wrong 401).
func refusal(err error) *gatehouse.Error {
	var ge *gatehouse.Error
	if !errors.As(err, &ge) {
		return gatehouse.ErrStoreDown(err)
	}
	return ge
}

// getOnly reports whether r is a GET or HEAD; otherwise it answers 405
// with Allow: GET, HEAD, in the form the token endpoints use for a wrong
// method.
func getOnly(w http.ResponseWriter, r *http.Request, f render.Format) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	e := gatehouse.ErrInvalidRequest("method %s is not allowed; use GET", gatehouse.Clip(r.Method, 200))
	e.Status = http.StatusMethodNotAllowed
	render.Error(w, f.Choose(r.Header.Get("Accept")), e.WithHeader("Allow", "GET, HEAD"))
	return false
}
