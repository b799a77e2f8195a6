// Command benchserver runs gatehouse's HTTP surface for load measurements:
// a full server on a fresh data dir with a consumer, a trivial upstream
// behind the gateway for every family, and — with -auth=false — the same
// routes with the bearer check replaced by an allow-all decision, so that
// the cost of authentication can be measured as the difference. It prints
// the URLs and a valid bearer token, then serves until interrupted.
//
//	go run ./tools/benchserver -addr 127.0.0.1:18081 -auth=true
//	wrk -t2 -c32 -d10s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:18081/api/entity/x
package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strings"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/auth/issue"
	"github.com/gatehouse/gatehouse/auth/verify"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/server/gateway"
	"github.com/gatehouse/gatehouse/server/render"
	"github.com/gatehouse/gatehouse/token"
)

// allowAll judges the request like gatehouse (canonical path, family,
// OData objects) but allows every one without looking at the token.
type allowAll struct{ table *policy.Table }

func (a allowAll) Authorize(_ context.Context, req policy.Request) (*verify.Authorization, error) {
	m, err := a.table.Resolve(req.Path, req.Query)
	if err != nil {
		return nil, policy.ErrCannotJudge(err)
	}
	return &verify.Authorization{Identity: &verify.Identity{Claims: anonymous}, Match: m, Path: m.Path, EscapedPath: req.Path}, nil
}

var anonymous = &token.Claims{}

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "address to listen on")
	upAddr := flag.String("upstream-addr", "127.0.0.1:18082", "address of the trivial upstream")
	withAuth := flag.Bool("auth", true, "check bearer tokens (false: allow every request)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060)")
	flag.Parse()
	if *pprofAddr != "" {
		go func() { log.Println(http.ListenAndServe(*pprofAddr, nil)) }()
	}

	up := &http.Server{Addr: *upAddr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"value":[]}`))
	})}
	go func() { log.Fatal(up.ListenAndServe()) }()

	dir, err := os.MkdirTemp("", "gatehouse-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := app.DefaultConfig()
	cfg.DataDir, cfg.Dev, cfg.RateLimit = dir, true, 0
	cfg.MasterKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	for _, f := range []string{"api", "odata", "inventory"} {
		cfg.Upstreams = append(cfg.Upstreams, f+"=http://"+*upAddr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	a, err := app.New(ctx, cfg, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	go a.Run(ctx)
	_, key, err := a.Admin.AddConsumer(ctx, "bench", admin.NewConsumer{Name: "bench", Scope: "/api"})
	if err != nil {
		log.Fatal(err)
	}
	iss, err := a.Service.ConsumerToken(ctx, key, "", issue.Meta{Remote: "127.0.0.1"})
	if err != nil {
		log.Fatal(err)
	}

	h := a.Handler
	if !*withAuth {
		table, _ := policy.NewTable(policy.DefaultFamilies())
		ups, _ := gateway.ParseUpstreams(cfg.Upstreams, func(f string) bool { return table.Family(f) != nil })
		open := allowAll{table}
		// Everything as in the real server (metrics included) but the decision.
		h = server.New(server.Options{
			Gateway: gateway.NewGateway(open, gateway.Options{Upstreams: ups, Format: render.JSON, Observe: a.Metrics.Gateway}),
			Check:   &gateway.Check{Auth: open, Observe: a.Metrics.Gateway},
			Metrics: a.Metrics,
			Store:   a.Store,
			Keys:    a.Keys.Ring(),
		})
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("auth=%t\ngateway:    http://%s/api/entity/customers\nauth check: http://%s/auth/check (X-Forwarded-Uri: /api/entity/customers)\ntoken endpoint: http://%s/api/security/token/v2\nconsumer key: %s\nTOKEN=%s\n",
		*withAuth, ln.Addr(), ln.Addr(), ln.Addr(), key, iss.AccessToken)
	srv := &http.Server{Handler: h}
	go func() {
		<-ctx.Done()
		srv.Close()
		up.Close()
	}()
	if err := srv.Serve(ln); err != nil && !strings.Contains(err.Error(), "closed") {
		log.Fatal(err)
	}
}
