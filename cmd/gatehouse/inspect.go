package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/scope"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
	"github.com/gatehouse/gatehouse/wire"
	"github.com/go-jose/go-jose/v4"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// maxTokenLen bounds a token read for inspection.
const maxTokenLen = 16 << 10

// Inspection is what `gatehouse token inspect` reports (its --json form).
type Inspection struct {
	// Format is "jwt", or "opaque" for a token that is not one (a refresh
	// token).
	Format string `json:"format"`
	Length int    `json:"length"`
	// Header and Claims are the JWT's, as sent; the signature is never shown.
	Header    map[string]any `json:"header,omitempty"`
	Claims    map[string]any `json:"claims,omitempty"`
	Signature string         `json:"signature,omitempty"`
	// Kind is p21-user, p21-consumer, oauth2-user or oauth2-client.
	Kind         string        `json:"kind,omitempty"`
	Verification Verification  `json:"verification"`
	Scope        *ScopeReport  `json:"scope,omitempty"`
	Reach        []FamilyReach `json:"reach,omitempty"`
	User         *UserReport   `json:"user,omitempty"`
	Session      SessionReport `json:"session"`
	Lifetime     *Lifetime     `json:"lifetime,omitempty"`
}

// Verification says how the token was checked and with what result.
type Verification struct {
	// Against is the JWKS URL or the store the signature was checked with;
	// "" when it was not checked.
	Against string `json:"against"`
	// Signature is "valid", "invalid", or "not checked".
	Signature string `json:"signature"`
	// Error says why a check failed (never repeating the token); Note
	// what could not be checked, and why.
	Error string `json:"error,omitempty"`
	Note  string `json:"note,omitempty"`
	// Accepted is the server's own answer to the token (--server: its
	// forward-auth check), nil when not asked.
	Accepted *bool  `json:"accepted,omitempty"`
	Answer   string `json:"answer,omitempty"`
}

// ScopeReport is the aud claim, parsed.
type ScopeReport struct {
	Raw     string        `json:"raw"`
	Entries []scope.Entry `json:"entries,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// FamilyReach is one API family the scope grants: all of it, or (object
// families) only the objects listed.
type FamilyReach struct {
	Family  string   `json:"family"`
	Paths   []string `json:"paths"`
	All     bool     `json:"all"`
	Objects []string `json:"objects,omitempty"`
	// Users is what the family asks of user-credential tokens; Denied says
	// why the token's user is refused anyway (when the store is known).
	Users  string `json:"users"`
	Denied string `json:"denied,omitempty"`
}

// UserReport is the token's user as the store holds it.
type UserReport struct {
	Name       string `json:"name"`
	Exists     bool   `json:"exists"`
	Deleted    bool   `json:"deleted,omitempty"`
	AllowOData bool   `json:"allow_odata_api"`
	Role       string `json:"role,omitempty"`
}

// SessionReport is the middleware session behind the token.
type SessionReport struct {
	ID string `json:"id,omitempty"`
	// State is active, ended, expired, not found or unknown (no store).
	State     string     `json:"state"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	EndReason string     `json:"end_reason,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Lifetime is the token's remaining validity.
type Lifetime struct {
	ExpiresAt time.Time `json:"expires_at"`
	Never     bool      `json:"never"`
	Expired   bool      `json:"expired"`
	Remaining string    `json:"remaining"`
	Seconds   int64     `json:"remaining_seconds"`
}

// splitToken is a JWT's parts, decoded but not verified.
type splitToken struct {
	header, claims map[string]any
	sigLen         int
}

// splitJWT splits and decodes a compact JWS. It checks the form only:
// three base64url parts, a header and payload that are JSON objects.
func splitJWT(tok string) (*splitToken, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT: %d parts separated by dots, want 3", len(parts))
	}
	obj := func(what, s string) (map[string]any, error) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("not a JWT: the %s is not base64url", what)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil || m == nil {
			return nil, fmt.Errorf("not a JWT: the %s is not a JSON object", what)
		}
		if dec.More() {
			return nil, fmt.Errorf("not a JWT: data after the %s's JSON object", what)
		}
		return m, nil
	}
	h, err := obj("header", parts[0])
	if err != nil {
		return nil, err
	}
	c, err := obj("payload", parts[1])
	if err != nil {
		return nil, err
	}
	if _, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil || parts[2] == "" {
		return nil, errors.New("not a JWT: the signature is missing or not base64url")
	}
	return &splitToken{header: h, claims: c, sigLen: len(parts[2])}, nil
}

type inspectFlags struct {
	server   string
	tokenEnv string
	asJSON   bool
	insecure bool
}

func newTokenInspectCmd(e *env, g *globals) *cobra.Command {
	var f inspectFlags
	cmd := &cobra.Command{
		Use:   "inspect [-]",
		Short: "Decode a P21 or OAuth2 token, verify it, and show what it may reach",
		Long: `Decode an access token and show its claims, its scope parsed, the API families
(and OData objects) the scope reaches, the state of its middleware session and
its remaining lifetime. The signature and the token itself are never printed.

The token is read from stdin (- or no argument) or from the environment
variable named by --token-env, never from the command line, where other users
could read it.

It is verified against a server with --server URL (the signature with the
server's JWKS, and the session by asking the server's forward-auth check,
which also covers HS256 tokens), or against a local store with --data DIR /
--db URL (signing keys, session, user and role; the master key as for the
admin commands). Without either, and without a store in ./gatehouse-data, the
token is only decoded.

Exit status: 0 when the token was verified and is valid (or only decoded), 1
when a check refused it, 2 when it cannot be read.`,
		Example: `  gatehouse token | gatehouse token inspect --server "$P21_BASE_URL"
  gatehouse token inspect --token-env ACCESS_TOKEN --data /var/lib/gatehouse --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := f.readToken(e, args)
			if err != nil {
				return err
			}
			rep, err := inspect(cmd.Context(), e, g, cmd, f, raw)
			if err != nil {
				return err
			}
			if f.asJSON {
				if err := printJSON(e.stdout, rep); err != nil {
					return err
				}
			} else {
				printInspection(e.stdout, rep)
			}
			if rep.Verification.Signature == "invalid" || rep.Verification.Accepted != nil && !*rep.Verification.Accepted ||
				rep.Verification.Error != "" || rep.Lifetime != nil && rep.Lifetime.Expired ||
				rep.Session.State == "ended" || rep.Session.State == "expired" || rep.Session.State == "not found" {
				return errRefused
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "verify against this gatehouse (or P21) server: its JWKS and its forward-auth check")
	fl.StringVar(&f.tokenEnv, "token-env", "", "read the token from this environment variable instead of stdin")
	fl.BoolVar(&f.asJSON, "json", false, "print the report as JSON")
	fl.BoolVar(&f.insecure, "insecure", false, "with --server: allow plain http to a host other than loopback (the token crosses the network in clear)")
	return cmd
}

// errRefused is the exit status 1 of a token a check refused; the report
// already says why.
var errRefused = &exitError{code: 1}

// exitError ends a command with a code and no further message.
type exitError struct{ code int }

func (e *exitError) Error() string { return "" }

func (f *inspectFlags) readToken(e *env, args []string) (string, error) {
	if len(args) == 1 && args[0] != "-" {
		return "", &admin.InputError{Msg: "a token on the command line can be read by other users (ps, shell history): give it on stdin (-) or with --token-env NAME"}
	}
	var raw string
	switch {
	case f.tokenEnv != "" && len(args) == 1:
		return "", &admin.InputError{Msg: "give the token on stdin (-) or with --token-env, not both"}
	case f.tokenEnv != "":
		raw = e.getenv(f.tokenEnv)
		if raw == "" {
			return "", &admin.InputError{Msg: "environment variable " + f.tokenEnv + " is empty or not set"}
		}
	default:
		if fd, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(fd.Fd())) {
			fmt.Fprint(e.stderr, "token: ")
			b, err := term.ReadPassword(int(fd.Fd()))
			fmt.Fprintln(e.stderr)
			if err != nil {
				return "", err
			}
			raw = string(b)
			break
		}
		line, err := bufio.NewReader(io.LimitReader(e.stdin, maxTokenLen+2)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the token from stdin: %w", err)
		}
		raw = line
	}
	raw = strings.TrimSpace(raw)
	if t := wire.BearerToken(raw); t != "" {
		raw = t // a whole "Bearer …" header value
	}
	switch {
	case raw == "":
		return "", &admin.InputError{Msg: "no token: stdin is empty (pipe it in, or use --token-env NAME)"}
	case len(raw) > maxTokenLen:
		return "", &admin.InputError{Msg: fmt.Sprintf("the token is longer than %d bytes", maxTokenLen)}
	case strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return "", &admin.InputError{Msg: "the token holds spaces or control characters"}
	}
	return raw, nil
}

// inspect builds the report of raw.
func inspect(ctx context.Context, e *env, g *globals, cmd *cobra.Command, f inspectFlags, raw string) (*Inspection, error) {
	rep := &Inspection{Length: len(raw), Session: SessionReport{State: "unknown"},
		Verification: Verification{Signature: "not checked"}}
	d, err := splitJWT(raw)
	if err != nil {
		if strings.Count(raw, ".") == 0 {
			// Refresh tokens are opaque; nothing in them can be read.
			rep.Format = "opaque"
			rep.Verification.Error = "an opaque token (a refresh token?): only access tokens (JWTs) can be inspected"
			return rep, nil
		}
		return nil, &admin.InputError{Msg: err.Error()}
	}
	rep.Format, rep.Header, rep.Claims = "jwt", d.header, d.claims
	alg, _ := d.header["alg"].(string)
	rep.Signature = fmt.Sprintf("%s, %d characters (not shown)", gatehouse.Clip(alg, 16), d.sigLen)
	str := func(k string) string { s, _ := d.claims[k].(string); return s }
	iss, sub, aud, sid, uid := str("iss"), str("sub"), str("aud"), str("P21.SessionId"), str("P21.ConsumerUid")
	oauth := strings.HasPrefix(iss, "http://") || strings.HasPrefix(iss, "https://")
	switch {
	case oauth && uid != "" && sub != "":
		rep.Kind = "oauth2-user"
	case oauth:
		rep.Kind = "oauth2-client"
	case uid != "":
		rep.Kind = "p21-consumer"
	default:
		rep.Kind = "p21-user"
	}
	rep.Session.ID = sid
	if exp, ok := d.claims["exp"].(json.Number); ok {
		if n, err := exp.Int64(); err == nil {
			rep.Lifetime = lifetime(time.Unix(n, 0), time.Now())
		}
	}
	rep.Scope = &ScopeReport{Raw: aud}
	sc, serr := scope.Parse(aud)
	if serr != nil {
		rep.Scope.Error = serr.Error()
	} else {
		rep.Scope.Entries = sc
	}

	fams := policy.DefaultFamilies()
	switch {
	case f.server != "":
		base, err := serverURL(f.server, f.insecure)
		if err != nil {
			return nil, err
		}
		hc := &http.Client{Timeout: 15 * time.Second}
		if conf, err := fetchConfiguration(ctx, hc, base); err == nil {
			fams = conf.Families
		}
		verifyWithServer(ctx, hc, base, raw, rep)
	default:
		st, mk, where, err := openInspectStore(ctx, e, g, cmd)
		if err != nil {
			return nil, err
		}
		if st != nil {
			defer st.Close()
			sec, err := loadSections(configFile(cmd, e.getenv))
			if err != nil {
				return nil, err
			}
			fams = mergeFamilies(fams, sec.Families)
			verifyWithStore(ctx, st, mk, where, raw, rep)
			if serr == nil && sub != "" {
				rep.User = userReport(ctx, st, sub)
			}
			rep.Reach = reach(ctx, st, fams, sc, uid == "", rep.User)
			return rep, nil
		}
	}
	if serr == nil {
		rep.Reach = reach(ctx, nil, fams, sc, uid == "", nil)
	}
	return rep, nil
}

func lifetime(exp, now time.Time) *Lifetime {
	l := &Lifetime{ExpiresAt: exp.UTC(), Never: exp.Unix() == gatehouse.NeverExpiresUnix}
	d := exp.Sub(now).Truncate(time.Second)
	l.Seconds = int64(d / time.Second)
	switch {
	case l.Never:
		l.Remaining = "never expires"
	case d <= 0:
		l.Expired, l.Remaining = true, "expired "+(-d).String()+" ago"
	default:
		l.Remaining = d.String()
	}
	return l
}

// serverURL checks --server: an http(s) URL; plain http only to loopback
// unless --insecure, since the token is sent to it.
func serverURL(raw string, insecure bool) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", &admin.InputError{Msg: fmt.Sprintf("--server %q is not an http(s) URL without user info", gatehouse.Clip(raw, 200))}
	}
	if u.Scheme == "http" && !insecure && !isLoopbackHost(u.Hostname()) {
		return "", &admin.InputError{Msg: "--server " + u.Redacted() + " is plain http: the token would cross the network in clear; use https, or --insecure"}
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// fetchJSON fetches a small JSON document.
func fetchJSON(ctx context.Context, hc *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", u, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

func fetchConfiguration(ctx context.Context, hc *http.Client, base string) (*policy.Configuration, error) {
	var c policy.Configuration
	if err := fetchJSON(ctx, hc, base+wire.PathConfiguration, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// verifyWithServer checks the signature with the server's JWKS (HS256
// keys are not published), then asks the server's forward-auth check,
// which verifies the token and its session as the gateway would.
func verifyWithServer(ctx context.Context, hc *http.Client, base, raw string, rep *Inspection) {
	jwksURL := base + wire.PathJWKS
	rep.Verification.Against = jwksURL
	var set jose.JSONWebKeySet
	if err := fetchJSON(ctx, hc, jwksURL, &set); err != nil {
		rep.Verification.Error = "JWKS: " + err.Error()
	} else {
		_, err := token.VerifyWith(raw, token.VerifyOptions{SkipTimes: true}, func(kid string) (token.PublicKey, bool) {
			for _, k := range set.Key(kid) {
				if k.IsPublic() && k.Use != "enc" {
					return token.PublicKey{KID: k.KeyID, Algorithm: k.Algorithm, Key: k.Key}, true
				}
			}
			return token.PublicKey{}, false
		})
		setSignature(rep, err, "")
		if errors.Is(err, token.ErrUnknownKey) {
			rep.Verification.Note = "the server publishes no key " + keyID(rep) + " (HS256 keys never are); its check below verifies the token"
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+wire.PathCheck, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+raw)
	req.Header.Set("X-Original-URI", "/")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		rep.Verification.Answer = "the server's check could not be asked: " + err.Error()
		return
	}
	defer resp.Body.Close()
	var body struct {
		Desc string `json:"error_description"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	ok := resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusForbidden
	switch resp.StatusCode {
	case http.StatusOK, http.StatusForbidden:
		rep.Verification.Answer = "accepted by " + base + wire.PathCheck
		rep.Session.State = "active"
	case http.StatusUnauthorized:
		rep.Verification.Answer = "refused by " + base + wire.PathCheck + ": " + gatehouse.Clip(body.Desc, 200)
		if strings.Contains(strings.ToLower(body.Desc), "session") {
			rep.Session.State = "ended"
		}
	default:
		rep.Verification.Answer = base + wire.PathCheck + " answered " + resp.Status
		return
	}
	rep.Verification.Accepted = &ok
}

func keyID(rep *Inspection) string {
	kid, _ := rep.Header["kid"].(string)
	return strconv.Quote(gatehouse.Clip(kid, 64))
}

// setSignature records the outcome of a signature check; unknownKey is
// the error of a key the verifier does not have.
func setSignature(rep *Inspection, err error, unknownKey string) {
	switch {
	case err == nil:
		rep.Verification.Signature = "valid"
	case errors.Is(err, token.ErrUnknownKey):
		rep.Verification.Signature = "not checked"
		rep.Verification.Error = unknownKey // "" when another check follows
	case errors.Is(err, token.ErrKeyRevoked):
		rep.Verification.Signature = "invalid"
		rep.Verification.Error = "its key " + keyID(rep) + " was withdrawn (gatehouse keys retire)"
	case errors.Is(err, token.ErrSignature), errors.Is(err, token.ErrAlgorithm):
		rep.Verification.Signature = "invalid"
		rep.Verification.Error = err.Error()
	default:
		rep.Verification.Signature = "invalid"
		rep.Verification.Error = err.Error()
	}
}

// openInspectStore opens the store of --data/--db, if there is one: a
// store that is not there is an error only when --data or --db was given.
func openInspectStore(ctx context.Context, e *env, g *globals, cmd *cobra.Command) (store.Store, *token.Keyring, string, error) {
	explicit := cmd.Flags().Changed("data") || cmd.Flags().Changed("db") || g.db != "" || e.getenv("GATEHOUSE_DATA") != ""
	cfg := g.baseConfig(e)
	st, err := app.OpenStore(ctx, cfg, false)
	if err != nil {
		if errors.Is(err, gatehouse.ErrNoStore) && !explicit {
			return nil, nil, "", nil
		}
		return nil, nil, "", storeOpenErr(storeName(g), err)
	}
	where := storeName(g)
	mk, err := app.LoadMasterKey(cfg, false, nil)
	if err != nil {
		st.Close()
		return nil, nil, "", err
	}
	keys, err := st.ListKeys(ctx)
	if err != nil {
		st.Close()
		return nil, nil, "", err
	}
	kr, err := token.NewKeyring(keys, mk)
	if err != nil {
		st.Close()
		return nil, nil, "", fmt.Errorf("signing keys: %w", err)
	}
	return st, kr, where, nil
}

// verifyWithStore checks the signature with the store's keys and reads the
// session.
func verifyWithStore(ctx context.Context, st store.Store, kr *token.Keyring, where, raw string, rep *Inspection) {
	rep.Verification.Against = where
	_, err := kr.Verify(raw, token.VerifyOptions{SkipTimes: true})
	setSignature(rep, err, "the store has no key "+keyID(rep)+": the token is another server's")
	if rep.Session.ID == "" {
		return
	}
	s, err := st.GetSession(ctx, rep.Session.ID)
	switch {
	case errors.Is(err, gatehouse.ErrNotFound):
		rep.Session.State = "not found"
	case err != nil:
		rep.Session.State = "unknown"
		rep.Verification.Error = "the session cannot be read: " + err.Error()
	default:
		exp := s.ExpiresAt.UTC()
		rep.Session.ExpiresAt = &exp
		switch {
		case !s.EndedAt.IsZero():
			end := s.EndedAt.UTC()
			rep.Session.State, rep.Session.EndedAt, rep.Session.EndReason = "ended", &end, s.EndReason
		case !time.Now().Before(s.ExpiresAt):
			rep.Session.State = "expired"
		default:
			rep.Session.State = "active"
		}
	}
}

func userReport(ctx context.Context, st store.Store, name string) *UserReport {
	u, err := st.GetUser(ctx, name)
	if err != nil {
		return &UserReport{Name: name}
	}
	return &UserReport{Name: u.Name, Exists: true, Deleted: u.Deleted, AllowOData: u.AllowODataAPI, Role: u.Role}
}

// reach lists the families the scope grants, as policy decides them: a
// family is reached by an entry it is granted by; an object family by an
// entry without an object list (every object) or with one (those objects).
// For a user-credential token whose user is known, the user checks are
// applied as far as they do not depend on the request.
func reach(ctx context.Context, st store.Store, fams []policy.Family, sc scope.Scope, userToken bool, u *UserReport) []FamilyReach {
	var out []FamilyReach
	var role *gatehouse.Role
	if u != nil && u.Exists && u.Role != "" && st != nil {
		if r, err := st.GetRole(ctx, u.Role); err == nil {
			role = &r
		}
	}
	for _, f := range fams {
		r := FamilyReach{Family: f.Name, Paths: f.Paths, Users: string(f.Users)}
		if r.Users == "" {
			r.Users = string(policy.CheckODataAPI)
		}
		for _, g := range f.GrantedBy {
			g = strings.ToLower(strings.TrimSpace(g))
			for _, e := range sc {
				if e.Path != g {
					continue
				}
				if len(e.Objects) == 0 || !f.Objects {
					r.All = len(e.Objects) == 0 || r.All
					if !f.Objects && len(e.Objects) > 0 {
						continue // a list grants only object families
					}
				} else {
					for _, o := range e.Objects {
						if !slices.Contains(r.Objects, o) {
							r.Objects = append(r.Objects, o)
						}
					}
				}
			}
		}
		if !r.All && len(r.Objects) == 0 {
			continue
		}
		if r.All {
			r.Objects = nil
		}
		sort.Strings(r.Objects)
		if u != nil {
			r.Denied = userDenial(f, r, userToken, u, role)
		}
		out = append(out, r)
	}
	return out
}

// userDenial says why the store's user is refused on a family ("" when
// it is not, or when it depends on the request).
func userDenial(f policy.Family, r FamilyReach, userToken bool, u *UserReport, role *gatehouse.Role) string {
	switch {
	case f.Users == policy.CheckRealUser && (!u.Exists || u.Deleted):
		return "needs a real user; " + strconv.Quote(u.Name) + " is not one"
	case !userToken || f.Users == policy.CheckNone || f.Users == policy.CheckRealUser:
		return ""
	case !u.Exists || u.Deleted:
		return "the user no longer exists"
	case !u.AllowOData:
		return "the user lacks Allow OData API Service"
	case f.Users != policy.CheckODataObject:
		return ""
	case role == nil:
		return "the user has no role: every object is refused"
	}
	var denied []string
	for _, o := range r.Objects {
		if !policy.RoleAllows(role, o, kindOf(f)) {
			denied = append(denied, o)
		}
	}
	if len(denied) > 0 {
		return "role " + role.Name + " refuses " + strings.Join(denied, ", ")
	}
	return ""
}

// kindOf is the object kind a family's first path names (table or view).
func kindOf(f policy.Family) gatehouse.ObjectKind {
	for _, p := range f.Paths {
		if strings.Contains(strings.ToLower(p), "/view") {
			return gatehouse.KindView
		}
	}
	return gatehouse.KindTable
}

// isLoopbackHost reports whether a URL's host is a loopback name or address.
func isLoopbackHost(host string) bool {
	return isLoopback(net.JoinHostPort(host, "0"))
}

func printInspection(w io.Writer, r *Inspection) {
	p := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-13s %s\n", label, fmt.Sprintf(format, args...))
	}
	if r.Format == "opaque" {
		p("token", "opaque, %d characters (not shown)", r.Length)
		p("", "%s", r.Verification.Error)
		return
	}
	kid, _ := r.Header["kid"].(string)
	p("token", "JWT %s, kid %s", r.Kind, cell(kid))
	p("signature", "%s", r.Signature)
	switch {
	case r.Verification.Against == "":
		p("verified", "no: decoded only (give --server URL, or --data/--db)")
	default:
		p("verified", "signature %s, against %s", r.Verification.Signature, r.Verification.Against)
	}
	for _, s := range []string{r.Verification.Error, r.Verification.Note} {
		if s != "" {
			p("", "%s", s)
		}
	}
	if r.Verification.Answer != "" {
		p("server", "%s", r.Verification.Answer)
	}
	fmt.Fprintln(w, "claims")
	keys := make([]string, 0, len(r.Claims))
	for k := range r.Claims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := fmt.Sprint(r.Claims[k])
		if v == "" {
			v = `""`
		}
		if n, ok := r.Claims[k].(json.Number); ok && (k == "exp" || k == "iat" || k == "nbf") {
			if s, err := n.Int64(); err == nil {
				v += " (" + time.Unix(s, 0).UTC().Format(time.RFC3339) + ")"
			}
		}
		fmt.Fprintf(w, "  %-18s %s\n", cell(k), cell(v))
	}
	if r.Scope != nil {
		if r.Scope.Error != "" {
			p("scope", "%s: %s", cell(r.Scope.Raw), r.Scope.Error)
		} else {
			var es []string
			for _, e := range r.Scope.Entries {
				es = append(es, e.String())
			}
			p("scope", "%s", cell(strings.Join(es, " ; ")))
		}
	}
	if r.Scope != nil && r.Scope.Error == "" {
		if len(r.Reach) == 0 {
			p("reaches", "no API family")
		}
		for i, f := range r.Reach {
			label := ""
			if i == 0 {
				label = "reaches"
			}
			what := "all"
			if !f.All {
				what = "only " + strings.Join(f.Objects, ", ")
			}
			paths := f.Paths
			if len(paths) > 3 {
				paths = append(paths[:3:3], fmt.Sprintf("+%d more", len(f.Paths)-3))
			}
			line := fmt.Sprintf("%-14s %s (%s)", cell(f.Family), cell(what), cell(strings.Join(paths, ", ")))
			if f.Denied != "" {
				line += " — refused: " + cell(f.Denied)
			}
			p(label, "%s", line)
		}
	}
	if r.User != nil {
		switch {
		case !r.User.Exists:
			p("user", "%s: no such user", cell(r.User.Name))
		default:
			p("user", "%s: deleted %s, Allow OData API Service %s, role %q", cell(r.User.Name), yesNo(r.User.Deleted), yesNo(r.User.AllowOData), r.User.Role)
		}
	}
	s := r.Session
	line := s.State
	if s.EndedAt != nil {
		line += " at " + s.EndedAt.Format(time.RFC3339) + " (" + s.EndReason + ")"
	}
	if s.ID != "" {
		line = s.ID + ": " + line
	}
	p("session", "%s", cell(line))
	if r.Lifetime != nil {
		p("lifetime", "%s (expires %s)", r.Lifetime.Remaining, r.Lifetime.ExpiresAt.Format(time.RFC3339))
	}
}
