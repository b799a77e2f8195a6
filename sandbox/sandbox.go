// Package sandbox simulates the resource APIs of a P21 server — OData,
// the Entity API, the Transaction API and the Interactive API — over
// plausible sample data, so that a script written against P21 runs
// end-to-end without one. It is served in-process behind gatehouse's
// gateway (gatehouse serve --sandbox): every request it sees was judged
// by the same decision as a request to a real upstream, and the acting
// user is the one the gateway names in X-Gatehouse-User.
//
// Each API has its own package (odata, entity, transaction, interactive)
// over one data layer (data), so that a change made through one API is
// seen through the others; the Transaction and Interactive APIs share the
// window model of package window.
package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sandbox/data"
	"github.com/gatehouse/gatehouse/sandbox/entity"
	"github.com/gatehouse/gatehouse/sandbox/interactive"
	"github.com/gatehouse/gatehouse/sandbox/odata"
	"github.com/gatehouse/gatehouse/sandbox/transaction"
	"github.com/gatehouse/gatehouse/wire"
)

// Families are the API families the sandbox serves.
var Families = []string{"odata", "api", "inventory", "transaction", "interactive"}

// Options configure a Sandbox.
type Options struct {
	// Dir is the data directory; the database is Dir/sandbox.db.
	Dir string
	// Reset restores the sample data over whatever the database holds.
	Reset bool
	// BaseURL is the URL clients reach the server at.
	BaseURL string
	Clock   gatehouse.Clock
	Log     *slog.Logger
}

// Sandbox is the simulated P21 APIs over their database.
type Sandbox struct {
	DB    *data.DB
	odata http.Handler
	tx    *transaction.Handler
	apis  []route
}

type route struct {
	match func(lowerPath string) bool
	h     http.Handler
}

// Open opens (or creates, or with Reset restores) the sandbox database
// and builds the APIs.
func Open(ctx context.Context, o Options) (*Sandbox, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("sandbox: no data directory")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox: create data dir: %w", err)
	}
	db, err := data.Open(ctx, filepath.Join(o.Dir, data.FileName), data.Options{Reset: o.Reset, Clock: o.Clock})
	if err != nil {
		return nil, err
	}
	s := &Sandbox{DB: db, odata: &odata.Handler{DB: db, BaseURL: strings.TrimSuffix(o.BaseURL, "/")}}
	s.tx = &transaction.Handler{DB: db, Clock: o.Clock, Log: o.Log}
	s.apis = []route{{transaction.Match, s.tx}, {interactive.Match, &interactive.Handler{DB: db, Clock: o.Clock}},
		{func(p string) bool { return strings.HasPrefix(p, "/api/") }, &entity.Handler{DB: db}}}
	return s, nil
}

// Close waits for asynchronous transactions and closes the database.
func (s *Sandbox) Close() error {
	s.tx.Wait()
	return s.DB.Close()
}

// Handlers maps each family the sandbox serves to it, for the gateway.
func (s *Sandbox) Handlers() map[string]http.Handler {
	m := map[string]http.Handler{}
	for _, f := range Families {
		m[f] = s
	}
	return m
}

// ServeHTTP routes a request the gateway allowed to its API. It refuses
// a request that did not come through the gateway (no X-Gatehouse-Family):
// the identity headers are the gateway's or none.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(wire.HeaderFamily) == "" {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "access_denied",
			"error_description": "The sandbox answers only requests that gatehouse's gateway allowed."})
		return
	}
	lower := strings.ToLower(r.URL.Path)
	if strings.HasPrefix(lower, strings.ToLower(odata.Prefix)+"/") {
		s.odata.ServeHTTP(w, r)
		return
	}
	// The UI server's APIs are served with and without /uiserver0.
	if rest, ok := strings.CutPrefix(lower, "/uiserver0/"); ok {
		lower = "/" + rest
		r = withPath(r, r.URL.Path[len("/uiserver0"):])
	}
	for _, rt := range s.apis {
		if rt.match(lower) {
			rt.h.ServeHTTP(w, r)
			return
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"Message": "No HTTP resource was found that matches the request URI '" +
		gatehouse.Clip(r.URL.Path, 200) + "' in the sandbox."})
}

func withPath(r *http.Request, p string) *http.Request {
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = p, ""
	return r2
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
