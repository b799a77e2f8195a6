// Package openapi holds the OpenAPI 3.1 document of gatehouse's public
// HTTP surface (token endpoints, OAuth2, forward-auth, the UI router and
// the operator endpoints) and serves it at /openapi.json.
//
// The document is written by hand and checked by the tests: every request
// the test suite replays, and every answer to it, is validated against it,
// so that it cannot drift from the server.
package openapi

import (
	_ "embed"
	"net/http"
	"strconv"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server/render"
)

// The token endpoints' client that the acceptance test runs is generated
// from the document by oapi-codegen:
//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2 -config oapi-codegen.yaml openapi.json

// Path is where the document is served.
const Path = "/openapi.json"

//go:embed openapi.json
var document []byte

// Document returns the OpenAPI document (JSON); the caller may keep it.
func Document() []byte {
	return append([]byte(nil), document...)
}

// Serve answers a request for the document: GET and HEAD, else 405 in
// format f.
func Serve(w http.ResponseWriter, r *http.Request, f render.Format) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		e := gatehouse.ErrInvalidRequest("method %s is not allowed; use GET", gatehouse.Clip(r.Method, 64))
		e.Status = http.StatusMethodNotAllowed
		render.Error(w, f, e.WithHeader("Allow", "GET, HEAD"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(document)))
	h.Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(document)
	}
}
