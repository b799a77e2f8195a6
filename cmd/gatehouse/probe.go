package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/client"
	"github.com/gatehouse/gatehouse/wire"
	"github.com/spf13/cobra"
)

// Probe limits: every request is made once, each bounded in time and in
// the size of the answer read.
const (
	probeTimeout  = 15 * time.Second
	probeMaxBody  = 64 << 10
	probeRequests = 24 // the most a probe can send
)

// ProbeReport is what `gatehouse probe` finds (its --json form).
type ProbeReport struct {
	URL      string `json:"url"`
	Requests int    `json:"requests"`
	// Flows are the token requests, in the order they were made.
	Flows []ProbeFlow `json:"flows"`
	// Formats says which format answered each Accept header (json, xml).
	Formats map[string]string `json:"formats"`
	// ExpiryFields are the names the expiry came in, by flow.
	ExpiryFields map[string]string `json:"expiry_fields"`
	Refresh      *ProbeRefresh     `json:"refresh,omitempty"`
	// Errors are the shapes of refusals: wrong_password, wrong_key,
	// oauth_wrong_password.
	Errors map[string]ProbeError `json:"errors"`
	Router *ProbeRouter          `json:"router,omitempty"`
	V1     ProbeV1               `json:"v1"`
	OAuth  *ProbeOAuth           `json:"oauth,omitempty"`
	// Skipped lists what was not tried, and why.
	Skipped []string `json:"skipped,omitempty"`
}

// ProbeFlow is one token request and what came back.
type ProbeFlow struct {
	Name     string   `json:"name"`
	Endpoint string   `json:"endpoint"`
	Accept   string   `json:"accept,omitempty"`
	Status   int      `json:"status"`
	Format   string   `json:"format"`
	Fields   []string `json:"fields,omitempty"`
	Token    bool     `json:"token"`
	// ExpiryField names the field the lifetime came in; ExpiresIn its value.
	ExpiryField string `json:"expiry_field,omitempty"`
	ExpiresIn   int64  `json:"expires_in,omitempty"`
	Refresh     bool   `json:"refresh_token"`
	Error       string `json:"error,omitempty"`
	Description string `json:"error_description,omitempty"`
	Transport   string `json:"transport_error,omitempty"`
}

// ProbeRefresh is the refresh behaviour of the P21 V2 endpoint.
type ProbeRefresh struct {
	Status          int    `json:"status"`
	NewAccessToken  bool   `json:"new_access_token"`
	NewRefreshToken bool   `json:"new_refresh_token"`
	ReuseStatus     int    `json:"reuse_status"`
	ReuseRefused    bool   `json:"reuse_refused"`
	ReuseError      string `json:"reuse_error,omitempty"`
}

// ProbeError is the shape of a refusal.
type ProbeError struct {
	Status      int      `json:"status"`
	Format      string   `json:"format"`
	Fields      []string `json:"fields,omitempty"`
	Error       string   `json:"error,omitempty"`
	Description string   `json:"error_description,omitempty"`
	Challenge   string   `json:"www_authenticate,omitempty"`
}

// ProbeRouter is the UI server router's answer.
type ProbeRouter struct {
	Status   int    `json:"status"`
	External string `json:"external,omitempty"`
	Internal string `json:"internal,omitempty"`
	Error    string `json:"error,omitempty"`
}

// ProbeV1 says whether the deprecated V1 endpoint answers.
type ProbeV1 struct {
	Tried       bool   `json:"tried"`
	Enabled     bool   `json:"enabled"`
	Status      int    `json:"status,omitempty"`
	Deprecation string `json:"deprecation,omitempty"`
	Link        string `json:"link,omitempty"`
}

// ProbeOAuth is what the OAuth2 endpoints answer.
type ProbeOAuth struct {
	Metadata bool     `json:"metadata"`
	Issuer   string   `json:"issuer,omitempty"`
	Grants   []string `json:"grant_types_supported,omitempty"`
	// BadUserStatus is the status of wrong user credentials on the token
	// endpoint: 401 as APX documents, 400 as RFC 6749 says.
	BadUserStatus int    `json:"bad_user_status,omitempty"`
	BadUserStyle  string `json:"bad_user_style,omitempty"`
}

// probeTransport carries the probe's requests (nil: the default);
// tests route a host name that is not loopback to a local server.
var probeTransport http.RoundTripper

// prober sends the probe's requests.
type prober struct {
	base     string
	hc       *http.Client
	secure   bool // https, loopback, or --insecure: secrets may be sent
	secrets  []string
	rep      *ProbeReport
	requests int
	last     http.Header // the headers of the last answer
}

func newProbeCmd(e *env) *cobra.Command {
	var asJSON, insecure bool
	cmd := &cobra.Command{
		Use:   "probe URL",
		Short: "Report what a P21 middleware or APX/OAuth2 auth server answers",
		Long: `Send a fixed set of requests to a P21 middleware, an APX auth server or
gatehouse, and report what it answers: which token flows it serves (P21 V2
and V1, user and consumer, with and without a user name; /oauth/token
grants), in which format for which Accept header, the names of the expiry
fields, the refresh behaviour (a new refresh token on every refresh; a spent
one refused), the error shapes of a wrong password and a wrong consumer key,
the UI router's URLs and whether V1 is still enabled.

Credentials come from the environment only: P21_USERNAME, P21_PASSWORD,
P21_CONSUMER_KEY for the P21 flows; APX_CLIENT_ID, APX_CLIENT_SECRET,
APX_USERNAME, APX_PASSWORD for /oauth/token (APX_TOKEN_URL, if set, names the
token endpoint). A flow whose credentials are missing is skipped and says so.

Every request is made once, with a 15 s timeout, at most 64 KiB of each
answer read, and redirects not followed. No secret is sent over plain http
to a host other than loopback unless --insecure: those steps are skipped.
The probe creates sessions like any client; its refresh check presents a
spent refresh token on purpose, which ends that probe session on servers
that detect reuse; its wrong-password request counts as one failed
sign-in of P21_USERNAME.`,
		Example: `  P21_USERNAME=api_user P21_PASSWORD=... P21_CONSUMER_KEY=... gatehouse probe https://play.p21server.com
  gatehouse probe --json http://127.0.0.1:8080`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := url.Parse(strings.TrimSpace(args[0]))
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
				return &admin.InputError{Msg: fmt.Sprintf("%q is not an http(s) URL without user info or query", gatehouse.Clip(args[0], 200))}
			}
			p := &prober{
				base:   strings.TrimRight(u.String(), "/"),
				secure: u.Scheme == "https" || insecure || isLoopbackHost(u.Hostname()),
				hc: &http.Client{Timeout: probeTimeout, Transport: probeTransport, CheckRedirect: func(*http.Request, []*http.Request) error {
					return http.ErrUseLastResponse // credentials never follow a redirect
				}},
				rep: &ProbeReport{URL: u.Redacted(), Formats: map[string]string{}, ExpiryFields: map[string]string{}, Errors: map[string]ProbeError{}},
			}
			if u.Scheme == "http" && insecure && !isLoopbackHost(u.Hostname()) {
				fmt.Fprintln(e.stderr, "gatehouse: warning: --insecure: credentials cross the network in clear")
			}
			p.run(cmd.Context(), e.getenv)
			p.rep.Requests = p.requests
			if asJSON {
				return printJSON(e.stdout, p.rep)
			}
			printProbe(e.stdout, p.rep)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "send credentials over plain http to a host other than loopback")
	return cmd
}

// answer is a response, read within the limits.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// send makes one request; it never makes more than probeRequests.
func (p *prober) send(ctx context.Context, method, path, ctype, body string, header ...string) answer {
	if p.requests >= probeRequests {
		return answer{err: errors.New("request budget spent")}
	}
	p.requests++
	target := path
	if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
		target = p.base + path
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	p.last = nil
	resp, err := p.hc.Do(req)
	if err != nil {
		return answer{err: errors.New(p.redact(err.Error()))}
	}
	defer resp.Body.Close()
	p.last = resp.Header
	b, err := io.ReadAll(io.LimitReader(resp.Body, probeMaxBody))
	return answer{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// redact removes the probe's secrets from text a server sent back.
func (p *prober) redact(s string) string {
	for _, sec := range p.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return gatehouse.Clip(s, 300)
}

// parsed is a token response or an error, in JSON or XML.
type parsed struct {
	format string
	fields []string
	values map[string]string
}

// parse reads a flat JSON object or XML element, keeping field order.
func parse(a answer) parsed {
	mt, _, _ := mime.ParseMediaType(a.header.Get("Content-Type"))
	trim := bytes.TrimSpace(a.body)
	out := parsed{values: map[string]string{}}
	switch {
	case strings.Contains(mt, "xml") || bytes.HasPrefix(trim, []byte("<")):
		out.format = "xml"
		dec := xml.NewDecoder(bytes.NewReader(trim))
		depth, name := 0, ""
		var text strings.Builder
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			switch t := tok.(type) {
			case xml.StartElement:
				depth++
				if depth == 2 {
					name = t.Name.Local
					text.Reset()
				}
			case xml.CharData:
				if depth == 2 {
					text.Write(t)
				}
			case xml.EndElement:
				if depth == 2 {
					out.fields = append(out.fields, name)
					out.values[name] = text.String()
				}
				depth--
			}
		}
	case strings.Contains(mt, "json") || bytes.HasPrefix(trim, []byte("{")):
		out.format = "json"
		dec := json.NewDecoder(bytes.NewReader(trim))
		dec.UseNumber()
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			out.format = "other"
			return out
		}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				break
			}
			var v any
			if err := dec.Decode(&v); err != nil {
				break
			}
			name, _ := k.(string)
			out.fields = append(out.fields, name)
			switch x := v.(type) {
			case string:
				out.values[name] = x
			case nil:
				out.values[name] = ""
			default:
				out.values[name] = fmt.Sprint(x)
			}
		}
	default:
		out.format = "other"
	}
	return out
}

// expiryFields are the names servers give a token's lifetime.
var expiryFields = []string{"ExpiresInSeconds", "ExpiresIn", "expires_in"}

// flow sends a token request and records it; it returns the parsed answer
// (nil on a transport error).
func (p *prober) flow(ctx context.Context, name, endpoint, accept, ctype, body string, header ...string) (*ProbeFlow, *parsed) {
	if accept != "" {
		header = append(header, "Accept", accept)
	}
	a := p.send(ctx, http.MethodPost, endpoint, ctype, body, header...)
	f := ProbeFlow{Name: name, Endpoint: endpoint, Accept: accept, Status: a.status}
	if a.err != nil {
		f.Transport = a.err.Error()
		p.rep.Flows = append(p.rep.Flows, f)
		return &p.rep.Flows[len(p.rep.Flows)-1], nil
	}
	r := parse(a)
	f.Format, f.Fields = r.format, r.fields
	for _, k := range []string{"AccessToken", "access_token"} {
		f.Token = f.Token || r.values[k] != ""
	}
	for _, k := range []string{"RefreshToken", "refresh_token"} {
		f.Refresh = f.Refresh || r.values[k] != ""
	}
	for _, k := range expiryFields {
		if v, ok := r.values[k]; ok && f.ExpiryField == "" {
			f.ExpiryField = k
			f.ExpiresIn, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if !f.Token {
		f.Error, f.Description = p.redact(r.values["error"]), p.redact(r.values["error_description"])
	}
	p.rep.Flows = append(p.rep.Flows, f)
	return &p.rep.Flows[len(p.rep.Flows)-1], &r
}

func (p *prober) skip(what, why string) {
	p.rep.Skipped = append(p.rep.Skipped, what+": "+why)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func jsonBody(kv ...string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	return string(b)
}

const (
	pathV2 = "/api/security/token/v2"
	pathV1 = "/api/security/token"
	ctJSON = "application/json"
	ctForm = "application/x-www-form-urlencoded"
)

// run makes the probe's requests, in a fixed order.
func (p *prober) run(ctx context.Context, getenv func(string) string) {
	user, pass, key := getenv(client.EnvP21Username), getenv(client.EnvP21Password), getenv(client.EnvP21ConsumerKey)
	clientID, secret := getenv(client.EnvAPXClientID), getenv(client.EnvAPXSecret)
	apxUser, apxPass := getenv(client.EnvAPXUsername), getenv(client.EnvAPXPassword)
	p.secrets = []string{pass, key, secret, apxPass}
	need := func(what string, vars ...string) bool {
		var missing []string
		for _, v := range vars {
			if getenv(v) == "" {
				missing = append(missing, v)
			}
		}
		switch {
		case len(missing) > 0:
			p.skip(what, "set "+strings.Join(missing, ", "))
			return false
		case !p.secure:
			p.skip(what, "would send a secret over plain http (use https, or --insecure)")
			return false
		}
		return true
	}
	var bearer string         // a token for the router
	var userRT, userAT string // the user flow's pair, for the refresh check

	// P21 V2, user flow, in both formats; then its refresh behaviour.
	if need("V2 user flow", client.EnvP21Username, client.EnvP21Password) {
		f, r := p.flow(ctx, "V2 user", pathV2, "application/json", ctJSON, jsonBody("username", user, "password", pass))
		p.rep.Formats["application/json"] = f.Format
		if f.Token {
			p.rep.ExpiryFields["V2 user"] = f.ExpiryField
			bearer = value(r, "AccessToken")
		}
		fx, _ := p.flow(ctx, "V2 user", pathV2, "application/xml", ctJSON, jsonBody("username", user, "password", pass))
		p.rep.Formats["application/xml"] = fx.Format
		if fx.Token {
			p.rep.ExpiryFields["V2 user, XML"] = fx.ExpiryField
		}
		userRT, userAT = value(r, "RefreshToken"), value(r, "AccessToken")
		if f.Token && userRT == "" {
			p.skip("refresh", "the user flow answered no refresh token")
		}
	}
	// P21 V2, consumer flow, without and with a user name.
	if need("V2 consumer flow", client.EnvP21ConsumerKey) {
		f, r := p.flow(ctx, "V2 consumer", pathV2, "", ctJSON, jsonBody("ClientSecret", key, "GrantType", "client_credentials"))
		if f.Token {
			p.rep.ExpiryFields["V2 consumer"] = f.ExpiryField
			if bearer == "" {
				bearer = value(r, "AccessToken")
			}
		}
		if user != "" {
			p.flow(ctx, "V2 consumer with user name", pathV2, "", ctJSON, jsonBody("ClientSecret", key, "GrantType", "client_credentials", "username", user))
		} else {
			p.skip("V2 consumer flow with user name", "set "+client.EnvP21Username)
		}
	}
	// P21 V1: is it still there?
	v1 := func(name string, header ...string) {
		f, _ := p.flow(ctx, name, pathV1, "", "", "", header...)
		if f.Transport != "" {
			return
		}
		if !p.rep.V1.Tried || f.Token {
			p.rep.V1.Tried, p.rep.V1.Status, p.rep.V1.Enabled = true, f.Status, f.Token || f.Status != http.StatusGone && f.Status != http.StatusNotFound
		}
		if d := p.last.Get("Deprecation"); d != "" {
			p.rep.V1.Deprecation, p.rep.V1.Link = p.redact(d), p.redact(p.last.Get("Link"))
		}
	}
	if need("V1 user flow", client.EnvP21Username, client.EnvP21Password) {
		v1("V1 user", "username", user, "password", pass)
	}
	if need("V1 consumer flow", client.EnvP21ConsumerKey) {
		v1("V1 consumer", "appkey", key)
		if user != "" {
			v1("V1 consumer with user name", "appkey", key, "username", user)
		}
	}
	// Refusals: a wrong password, a wrong key (random: no secret).
	if user != "" {
		a := p.send(ctx, http.MethodPost, pathV2, ctJSON, jsonBody("username", user, "password", "wrong-"+randomHex(8)))
		p.rep.Errors["wrong_password"] = p.errorShape(a)
	} else {
		p.skip("wrong password", "set "+client.EnvP21Username)
	}
	a := p.send(ctx, http.MethodPost, pathV2, ctJSON, jsonBody("ClientSecret", uuidLike(), "GrantType", "client_credentials"))
	p.rep.Errors["wrong_key"] = p.errorShape(a)

	// The UI router.
	if bearer != "" {
		p.secrets = append(p.secrets, bearer)
		rt := &ProbeRouter{}
		for _, typ := range []string{"external", "internal"} {
			a := p.send(ctx, http.MethodGet, "/api/ui/router/v1?urlType="+typ, "", "", "Authorization", "Bearer "+bearer, "Accept", "application/json")
			if a.err != nil {
				rt.Error = a.err.Error()
				break
			}
			rt.Status = a.status
			r := parse(a)
			if a.status != http.StatusOK {
				rt.Error = p.redact(r.values["error"] + ": " + r.values["error_description"])
				break
			}
			if typ == "external" {
				rt.External = p.redact(r.values["Url"])
			} else {
				rt.Internal = p.redact(r.values["Url"])
			}
		}
		p.rep.Router = rt
	} else {
		p.skip("UI router", "no token was obtained")
	}
	// Last of the P21 steps: presenting a spent refresh token ends its
	// session on servers that detect reuse.
	if userRT != "" {
		p.secrets = append(p.secrets, userRT)
		p.refresh(ctx, userRT, userAT)
	}

	p.oauth(ctx, getenv, need, clientID, secret, apxUser, apxPass)
}

// value is a field of a parsed answer; "" when there was no answer.
func value(r *parsed, k string) string {
	if r == nil {
		return ""
	}
	return r.values[k]
}

// uuidLike is a random consumer key no server has.
func uuidLike() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:32]
}

// refresh presents the user flow's refresh token, then presents it again:
// the one request the probe repeats, on purpose, to see whether a spent
// refresh token is refused.
func (p *prober) refresh(ctx context.Context, rt, oldAccess string) {
	body := jsonBody("GrantType", "refresh_token", "RefreshToken", rt)
	f, r := p.flow(ctx, "V2 refresh", pathV2, "", ctJSON, body)
	ref := &ProbeRefresh{Status: f.Status}
	p.rep.Refresh = ref
	if r == nil || !f.Token {
		return
	}
	newRT := value(r, "RefreshToken")
	p.secrets = append(p.secrets, newRT)
	ref.NewAccessToken = value(r, "AccessToken") != oldAccess
	ref.NewRefreshToken = newRT != "" && newRT != rt
	a := p.send(ctx, http.MethodPost, pathV2, ctJSON, body)
	ref.ReuseStatus = a.status
	if a.err == nil {
		rr := parse(a)
		ref.ReuseRefused = a.status >= 400 && a.status < 500
		ref.ReuseError = p.redact(rr.values["error"])
	}
}

func (p *prober) errorShape(a answer) ProbeError {
	if a.err != nil {
		return ProbeError{Error: "transport: " + a.err.Error()}
	}
	r := parse(a)
	return ProbeError{Status: a.status, Format: r.format, Fields: r.fields, Error: p.redact(r.values["error"]),
		Description: p.redact(r.values["error_description"]), Challenge: p.redact(a.header.Get("WWW-Authenticate"))}
}

// oauth probes /oauth/token (and the RFC 8414 metadata).
func (p *prober) oauth(ctx context.Context, getenv func(string) string, need func(string, ...string) bool, clientID, secret, user, pass string) {
	o := &ProbeOAuth{}
	tokenURL := getenv(client.EnvAPXTokenURL)
	if tokenURL == "" {
		tokenURL = wire.PathToken
	} else if u, err := url.Parse(tokenURL); err != nil || (u.Scheme != "https" && !p.secure) {
		p.skip("/oauth/token", client.EnvAPXTokenURL+" is not an https URL")
		return
	}
	a := p.send(ctx, http.MethodGet, wire.PathMetadata, "", "", "Accept", "application/json")
	if a.err == nil && a.status == http.StatusOK {
		var md struct {
			Issuer string   `json:"issuer"`
			Grants []string `json:"grant_types_supported"`
		}
		if json.Unmarshal(a.body, &md) == nil && md.Issuer != "" {
			o.Metadata, o.Issuer, o.Grants = true, p.redact(md.Issuer), md.Grants
		}
	}
	p.rep.OAuth = o
	if !need("/oauth/token", client.EnvAPXClientID, client.EnvAPXSecret) {
		return
	}
	basic := "Basic " + basicCredentials(clientID, secret)
	f, _ := p.flow(ctx, "OAuth2 client_credentials", tokenURL, "application/json", ctForm,
		url.Values{"grant_type": {"client_credentials"}}.Encode(), "Authorization", basic)
	if f.Token {
		p.rep.ExpiryFields["OAuth2"] = f.ExpiryField
	}
	if user == "" || pass == "" {
		p.skip("OAuth2 password grant", "set "+client.EnvAPXUsername+" and "+client.EnvAPXPassword)
		return
	}
	f, r := p.flow(ctx, "OAuth2 password", tokenURL, "application/json", ctForm,
		url.Values{"grant_type": {"password"}, "Username": {user}, "Password": {pass}}.Encode(), "Authorization", basic)
	if rt := value(r, "refresh_token"); f.Token && rt != "" {
		p.secrets = append(p.secrets, rt)
		p.flow(ctx, "OAuth2 refresh_token", tokenURL, "application/json", ctForm,
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode(), "Authorization", basic)
	}
	a = p.send(ctx, http.MethodPost, tokenURL, ctForm, url.Values{"grant_type": {"password"}, "Username": {user},
		"Password": {"wrong-" + randomHex(8)}}.Encode(), "Authorization", basic, "Accept", "application/json")
	e := p.errorShape(a)
	p.rep.Errors["oauth_wrong_password"] = e
	o.BadUserStatus = e.Status
	switch e.Status {
	case http.StatusUnauthorized:
		o.BadUserStyle = "APX (401)"
	case http.StatusBadRequest:
		o.BadUserStyle = "RFC 6749 (400)"
	}
}

// basicCredentials is client_secret_basic's encoding (RFC 6749 §2.3.1).
func basicCredentials(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}

func printProbe(w io.Writer, r *ProbeReport) {
	fmt.Fprintf(w, "gatehouse probe %s: %d requests\n", r.URL, r.Requests)
	fmt.Fprintln(w, "token flows")
	for _, f := range r.Flows {
		name := f.Name
		if f.Accept != "" {
			name += " (Accept " + f.Accept + ")"
		}
		line := fmt.Sprintf("  %-54s", name)
		switch {
		case f.Transport != "":
			line += "no answer: " + f.Transport
		case f.Token:
			line += fmt.Sprintf("%d %-4s token; %s", f.Status, f.Format, strings.Join(f.Fields, " "))
		default:
			line += fmt.Sprintf("%d %-4s refused: %s %q", f.Status, f.Format, f.Error, f.Description)
		}
		fmt.Fprintln(w, cell(line))
	}
	p := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-22s%s\n", label, fmt.Sprintf(format, args...))
	}
	var formats []string
	for _, acc := range []string{"application/json", "application/xml"} {
		if f, ok := r.Formats[acc]; ok {
			formats = append(formats, "Accept "+acc+" → "+strings.ToUpper(f))
		}
	}
	if len(formats) > 0 {
		p("format", "%s", strings.Join(formats, "; "))
	}
	var exp []string
	for _, k := range []string{"V2 user", "V2 user, XML", "V2 consumer", "OAuth2"} {
		if f, ok := r.ExpiryFields[k]; ok {
			exp = append(exp, k+": "+f)
		}
	}
	if len(exp) > 0 {
		p("expiry field", "%s", strings.Join(exp, "; "))
	}
	if f := r.Refresh; f != nil {
		switch {
		case f.Status != http.StatusOK:
			p("refresh", "refused (%d)", f.Status)
		default:
			p("refresh", "new access token %s, new refresh token %s; a spent refresh token presented again: %d %s (%s)",
				yesNo(f.NewAccessToken), yesNo(f.NewRefreshToken), f.ReuseStatus, map[bool]string{true: "refused", false: "accepted"}[f.ReuseRefused], f.ReuseError)
		}
	}
	for _, k := range []string{"wrong_password", "wrong_key", "oauth_wrong_password"} {
		if e, ok := r.Errors[k]; ok {
			p(strings.ReplaceAll(k, "_", " "), "%d %s %s %q", e.Status, e.Format, e.Error, e.Description)
		}
	}
	if rt := r.Router; rt != nil {
		if rt.Error != "" {
			p("router", "%d %s", rt.Status, rt.Error)
		} else {
			p("router", "external %s, internal %s", rt.External, rt.Internal)
		}
	}
	switch {
	case !r.V1.Tried:
		p("V1", "not tried")
	case r.V1.Enabled:
		p("V1", "enabled (%d); deprecated: %s", r.V1.Status, yesNo(r.V1.Deprecation != ""))
	default:
		p("V1", "disabled (%d)", r.V1.Status)
	}
	if o := r.OAuth; o != nil {
		if o.Metadata {
			p("oauth2", "metadata: issuer %s, grants %s", o.Issuer, strings.Join(o.Grants, ", "))
		} else {
			p("oauth2", "no RFC 8414 metadata")
		}
		if o.BadUserStyle != "" {
			p("", "bad user credentials: %s", o.BadUserStyle)
		}
	}
	for _, s := range r.Skipped {
		p("skipped", "%s", s)
	}
}
