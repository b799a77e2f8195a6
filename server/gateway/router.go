package gateway

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server/render"
)

// PathRouter is the UI server router endpoint (served with or without a
// trailing slash).
const PathRouter = "/api/ui/router/v1"

// Router answers GET /api/ui/router/v1?urlType=external|internal with the
// UI server URL, for bearer tokens allowed the router family.
type Router struct {
	Auth Authorizer
	// External and Internal are the URLs answered for each urlType.
	External, Internal string
	// Format of error bodies.
	Format render.Format
}

func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !getOnly(w, r, rt.Format) {
		return
	}
	if _, err := rt.Auth.Authorize(r.Context(), RequestOf(r)); err != nil {
		render.Error(w, rt.Format.Choose(r.Header.Get("Accept")), refusal(err))
		return
	}
	q := r.URL.Query()
	if len(q["urlType"]) > 1 {
		render.Error(w, rt.Format.Choose(r.Header.Get("Accept")), gatehouse.ErrInvalidRequest("urlType is given more than once"))
		return
	}
	var u string
	switch t := strings.ToLower(q.Get("urlType")); t {
	case "", "external":
		u = rt.External
	case "internal":
		u = rt.Internal
	default:
		render.Error(w, rt.Format.Choose(r.Header.Get("Accept")), gatehouse.ErrInvalidRequest("urlType %q is not external or internal", gatehouse.Clip(q.Get("urlType"), 200)))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	render.WriteJSON(w, http.StatusOK, struct {
		URL string `json:"Url"`
	}{u})
}

// IsRouterPath reports whether a lower-cased path is the router endpoint.
func IsRouterPath(lower string) bool {
	return strings.TrimSuffix(lower, "/") == PathRouter
}
