package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/spf13/cobra"
)

func newHealthcheckCmd(e *env) *cobra.Command {
	var addr, rawURL string
	var tlsOn bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Ask a local server's /healthz whether it is up (exit 0) or not (exit 1)",
		Long: `Send GET /healthz to the server on --addr (the same setting as serve's, so
GATEHOUSE_ADDR and the YAML file's addr apply; an address bound on every
interface is asked on loopback) or to --url, and exit 0 when it answers
200 {"status":"ok"}, 1 otherwise.

It is the container image's HEALTHCHECK, where there is no curl. With
--tls (or --tls-cert set, as for serve) it speaks HTTPS and does not verify
the certificate: it only asks the process on this machine whether it is up,
and sends nothing secret.`,
		Example: `  gatehouse healthcheck
  GATEHOUSE_ADDR=0.0.0.0:8080 gatehouse healthcheck
  gatehouse healthcheck --url http://127.0.0.1:9000/healthz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f := cmd.Flags().Lookup("tls-cert"); f != nil && f.Value.String() != "" {
				tlsOn = true
			}
			target, err := healthURL(addr, rawURL, tlsOn)
			if err != nil {
				return err
			}
			c := &http.Client{Timeout: timeout, Transport: &http.Transport{
				Proxy:           nil,
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // loopback liveness only; nothing secret is sent
			}}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, target, nil)
			if err != nil {
				return &admin.InputError{Msg: err.Error()}
			}
			resp, err := c.Do(req)
			if err != nil {
				return fmt.Errorf("%s: %w", target, err)
			}
			defer resp.Body.Close()
			var body struct{ Status string }
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &body) != nil || body.Status != "ok" {
				return fmt.Errorf("%s answered %s", target, resp.Status)
			}
			fmt.Fprintln(e.stdout, "ok")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "the address the server listens on (as serve's --addr)")
	f.StringVar(&rawURL, "url", "", "the health URL to ask instead (http or https)")
	f.BoolVar(&tlsOn, "tls", false, "the server serves HTTPS (also when --tls-cert is set)")
	f.String("tls-cert", "", "serve's --tls-cert: when set, the server serves HTTPS")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}

// healthURL is --url, or the /healthz URL of the server on addr; an
// address bound on every interface is asked on loopback.
func healthURL(addr, raw string, tlsOn bool) (string, error) {
	if raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", &admin.InputError{Msg: fmt.Sprintf("--url %q is not an http(s) URL", raw)}
		}
		return u.String(), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", &admin.InputError{Msg: fmt.Sprintf("--addr %q is not HOST:PORT", addr)}
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/healthz", nil
}
