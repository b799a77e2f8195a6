package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strings"

	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/oauth2"
)

// maxCallBody bounds a request body read from a file or stdin.
const maxCallBody = 64 << 20

// callFlags are the flags of call and load call: an identity, and the
// request to send with its token.
type callFlags struct {
	id        identityFlags
	data      string
	ui        bool
	headers   []string
	bearerEnv string
}

// staticSource serves one token as it is (--bearer-env).
type staticSource struct{ t *oauth2.Token }

func (s staticSource) Token() (*oauth2.Token, error)                       { return s.t, nil }
func (s staticSource) TokenContext(context.Context) (*oauth2.Token, error) { return s.t, nil }

func (c *callFlags) register(fs *pflag.FlagSet) {
	c.id.register(fs)
	fs.StringVar(&c.data, "data", "", "request body: TEXT, @FILE, or - for stdin (sent as application/json unless -H sets Content-Type)")
	fs.BoolVar(&c.ui, "ui", false, "resolve PATH against the UI server URL from the router")
	fs.StringArrayVarP(&c.headers, "header", "H", nil, "extra request header 'Name: value' (repeatable)")
	fs.StringVar(&c.bearerEnv, "bearer-env", "", "send the access token held in this environment variable instead of obtaining one (no credentials needed)")
}

// request builds the request of METHOD PATH (args) and the client whose
// token it is to carry: the token is obtained, or taken from the cache,
// on the way.
func (c *callFlags) request(cmd *cobra.Command, e *env, args []string) (*client.Client, *http.Request, *oauth2.Token, error) {
	method, path := strings.ToUpper(args[0]), args[1]
	if !validMethod(method) {
		return nil, nil, nil, &admin.InputError{Msg: fmt.Sprintf("%q is not an HTTP method", args[0])}
	}
	// Only a --data given on the command line counts: the root's --data
	// (the store directory) may come from the environment.
	var body []byte
	if cmd.Flags().Changed("data") {
		if c.data == "-" && (c.id.passwordStdin || c.id.keyStdin) {
			return nil, nil, nil, &admin.InputError{Msg: "--data - and a secret from stdin cannot both read stdin"}
		}
		var err error
		if body, err = readData(e, c.data); err != nil {
			return nil, nil, nil, err
		}
	}
	hdr := http.Header{}
	for _, h := range c.headers {
		k, v, ok := strings.Cut(h, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, nil, nil, &admin.InputError{Msg: fmt.Sprintf("-H %q is not 'Name: value'", h)}
		}
		hdr.Add(textproto.CanonicalMIMEHeaderKey(k), strings.TrimSpace(v))
	}
	var cl *client.Client
	var tok *oauth2.Token
	if c.bearerEnv != "" {
		v := strings.TrimSpace(e.getenv(c.bearerEnv))
		if v == "" {
			return nil, nil, nil, &admin.InputError{Msg: "--bearer-env: environment variable " + c.bearerEnv + " is empty or not set"}
		}
		base := c.id.baseURL
		if base == "" {
			base = e.getenv(client.EnvP21BaseURL)
		}
		tok = &oauth2.Token{AccessToken: v, TokenType: "Bearer"}
		cl = client.NewClient(base, staticSource{tok})
	} else {
		cfg, err := c.id.config(e)
		if err != nil {
			return nil, nil, nil, err
		}
		if cl, tok, err = managedClient(cmd.Context(), e, cfg, c.id.noCache); err != nil {
			return nil, nil, nil, err
		}
	}
	var err error
	var target string
	if c.ui {
		target, err = cl.UIURL(cmd.Context(), path)
	} else {
		target, err = cl.URL(path)
	}
	if err != nil {
		if !c.ui && cl.BaseURL == "" {
			return nil, nil, nil, &admin.InputError{Msg: "a relative PATH needs a base URL: set P21_BASE_URL or use --base-url"}
		}
		return nil, nil, nil, err
	}
	req, err := http.NewRequestWithContext(cmd.Context(), method, target, bytes.NewReader(body))
	if err != nil {
		return nil, nil, nil, &admin.InputError{Msg: fmt.Sprintf("cannot build the request for %q", path)}
	}
	if len(body) == 0 {
		req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	return cl, req, tok, nil
}

func newCallCmd(e *env) *cobra.Command {
	var f callFlags
	cmd := &cobra.Command{
		Use:   "call METHOD PATH",
		Short: "Send an API request with a managed token, like curl",
		Long: `Send one request to the server and print the response body. The token is
obtained and cached as by "gatehouse token" (same flags and environment
variables), sent as "Authorization: Bearer", and renewed once if the server
answers 401.

PATH is relative to the base URL (P21_BASE_URL or --base-url), or with --ui
to the UI server URL that the server's router names (GET
/api/ui/router/v1?urlType=external), as the Interactive and Transaction APIs
need. An absolute URL is used as it is (and receives the token).

A response outside 2xx still prints its body, reports the status on stderr and
exits with status 1.`,
		Example: `  gatehouse call GET '/odataservice/odata/table/supplier?$top=5'
  gatehouse call POST /api/ui/interactive/sessions/ --ui --data '{"ResponseWindowHandlingEnabled":false}'
  gatehouse call PUT /api/entity/customers/10 --data @customer.json -H 'If-Match: *'`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, req, _, err := f.request(cmd, e, args)
			if err != nil {
				return err
			}
			resp, err := cl.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if _, err := io.Copy(e.stdout, resp.Body); err != nil {
				return fmt.Errorf("reading the response: %w", err)
			}
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				return fmt.Errorf("%s %s: %s", req.Method, displayURL(req.URL.String()), resp.Status)
			}
			return nil
		},
	}
	f.register(cmd.Flags())
	return cmd
}

// readData reads --data: @FILE, - (stdin) or the text itself.
func readData(e *env, data string) ([]byte, error) {
	var r io.Reader
	switch {
	case data == "-":
		r = e.stdin
	case strings.HasPrefix(data, "@"):
		fh, err := os.Open(data[1:])
		if err != nil {
			return nil, &admin.InputError{Msg: fmt.Sprintf("--data: %v", err)}
		}
		defer fh.Close()
		r = fh
	default:
		return []byte(data), nil
	}
	b, err := io.ReadAll(io.LimitReader(r, maxCallBody+1))
	if err != nil {
		return nil, fmt.Errorf("--data: %w", err)
	}
	if len(b) > maxCallBody {
		return nil, &admin.InputError{Msg: "--data: the body is larger than 64 MiB"}
	}
	return b, nil
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, r := range m {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// displayURL shows a URL without its user info or query (which may hold
// secrets of their own).
func displayURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
