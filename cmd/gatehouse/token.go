package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/oauth2"
)

// identityFlags are the flags token and call share: which server, which
// flow, which identity. Secrets never come from flags.
type identityFlags struct {
	baseURL       string
	username      string
	clientID      string
	passwordStdin bool
	keyStdin      bool
	v1            bool
	apx           bool
	uat           bool
	noCache       bool
	// clientCreds selects the OAuth2 client-credentials grant (tokenURL,
	// default <base URL>/oauth/token).
	clientCreds bool
	tokenURL    string
}

func (f *identityFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.baseURL, "base-url", "", "P21 server URL (default $P21_BASE_URL)")
	fs.StringVar(&f.username, "username", "", "user name: P21 user, consumer user context, or APX user (default $P21_USERNAME, or $APX_USERNAME with --apx)")
	fs.BoolVar(&f.passwordStdin, "password-stdin", false, "read the password from stdin (default $P21_PASSWORD, or $APX_PASSWORD with --apx)")
	fs.BoolVar(&f.keyStdin, "consumer-key-stdin", false, "read the consumer key (with --apx: the client secret) from stdin (default $P21_CONSUMER_KEY, or $APX_CLIENT_SECRET)")
	fs.BoolVar(&f.v1, "v1", false, "use the deprecated V1 endpoint (credentials in headers)")
	fs.BoolVar(&f.apx, "apx", false, "use the APX OAuth2 password grant ($APX_TOKEN_URL, default the production endpoint)")
	fs.BoolVar(&f.uat, "uat", false, "with --apx: use the APX UAT endpoint when $APX_TOKEN_URL is not set")
	fs.StringVar(&f.clientID, "client-id", "", "with --apx: the OAuth2 client id (default $APX_CLIENT_ID)")
	fs.BoolVar(&f.noCache, "no-cache", false, "get a new token even if a cached one is still good (the new one is cached)")
	fs.BoolVar(&f.clientCreds, "client-credentials", false, "use the OAuth2 client-credentials grant: --client-id (default $APX_CLIENT_ID), the secret from --consumer-key-stdin or $APX_CLIENT_SECRET")
	fs.StringVar(&f.tokenURL, "token-url", "", "with --client-credentials: the token endpoint (default $APX_TOKEN_URL, else <base URL>/oauth/token)")
}

// flagFor names the flag that can stand in for an environment variable.
var flagFor = map[string]string{
	client.EnvP21BaseURL: "--base-url", client.EnvP21Username: "--username", client.EnvAPXUsername: "--username",
	client.EnvP21Password: "--password-stdin", client.EnvAPXPassword: "--password-stdin",
	client.EnvP21ConsumerKey: "--consumer-key-stdin", client.EnvAPXSecret: "--consumer-key-stdin",
	client.EnvAPXClientID: "--client-id",
}

// config builds the client configuration: the environment, then the flags,
// then secrets from stdin.
func (f *identityFlags) config(e *env) (client.Config, error) {
	if f.passwordStdin && f.keyStdin {
		return client.Config{}, &admin.InputError{Msg: "--password-stdin and --consumer-key-stdin cannot both read stdin; give one secret in its environment variable"}
	}
	if f.uat && !f.apx {
		return client.Config{}, &admin.InputError{Msg: "--uat needs --apx"}
	}
	if f.clientCreds {
		return f.clientCredentials(e)
	}
	if f.tokenURL != "" {
		return client.Config{}, &admin.InputError{Msg: "--token-url needs --client-credentials"}
	}
	var opts []client.Option
	if f.uat {
		opts = append(opts, client.WithAPXUAT())
	} else if f.apx {
		opts = append(opts, client.WithAPX())
	}
	c, err := client.LoadEnv(e.getenv, opts...)
	if err != nil {
		return c, &admin.InputError{Msg: err.Error()}
	}
	if f.baseURL != "" {
		c.BaseURL = f.baseURL
	}
	if f.username != "" {
		c.Username = f.username
	}
	c.V1 = f.v1
	if f.apx {
		if f.clientID != "" {
			c.ClientID = f.clientID
		}
		if f.passwordStdin {
			if c.Password, err = readSecret(e, "password", true, ""); err != nil {
				return c, err
			}
		}
		if f.keyStdin {
			if c.ClientSecret, err = readSecret(e, "client secret", true, ""); err != nil {
				return c, err
			}
		}
	} else {
		if f.clientID != "" {
			return c, &admin.InputError{Msg: "--client-id needs --apx"}
		}
		switch {
		case f.keyStdin:
			c.Flow, c.Password = client.FlowP21Consumer, ""
			if c.ConsumerKey, err = readSecret(e, "consumer key", true, ""); err != nil {
				return c, err
			}
		case f.passwordStdin:
			c.Flow, c.ConsumerKey = client.FlowP21User, ""
			if c.Password, err = readSecret(e, "password", true, ""); err != nil {
				return c, err
			}
		}
	}
	if err := c.Validate(); err != nil {
		var ce *client.ConfigError
		if errors.As(err, &ce) {
			msg := err.Error()
			if fl := flagFor[ce.Var]; fl != "" {
				msg += "; set " + ce.Var + " or use " + fl
			}
			return c, &admin.InputError{Msg: msg}
		}
		return c, err
	}
	return c, nil
}

// clientCredentials is the configuration of --client-credentials.
func (f *identityFlags) clientCredentials(e *env) (client.Config, error) {
	if f.apx || f.v1 || f.passwordStdin || f.username != "" {
		return client.Config{}, &admin.InputError{Msg: "--client-credentials takes no user: not with --apx, --v1, --username or --password-stdin"}
	}
	c := client.Config{Flow: client.FlowClientCredentials, TokenURL: f.tokenURL, ClientID: f.clientID,
		ClientSecret: e.getenv(client.EnvAPXSecret)}
	if c.TokenURL == "" {
		c.TokenURL = e.getenv(client.EnvAPXTokenURL)
	}
	if c.TokenURL == "" {
		base := f.baseURL
		if base == "" {
			base = e.getenv(client.EnvP21BaseURL)
		}
		if base != "" {
			c.TokenURL = strings.TrimRight(base, "/") + "/oauth/token"
		}
	}
	if c.ClientID == "" {
		c.ClientID = e.getenv(client.EnvAPXClientID)
	}
	if f.keyStdin {
		var err error
		if c.ClientSecret, err = readSecret(e, "client secret", true, ""); err != nil {
			return c, err
		}
	}
	if err := c.Validate(); err != nil {
		var ce *client.ConfigError
		if errors.As(err, &ce) {
			hint := map[string]string{client.EnvAPXTokenURL: "--token-url or --base-url", client.EnvAPXClientID: "--client-id",
				client.EnvAPXSecret: "--consumer-key-stdin"}[ce.Var]
			msg := err.Error()
			if hint != "" {
				msg += "; set " + ce.Var + " or use " + hint
			}
			return c, &admin.InputError{Msg: msg}
		}
		return c, err
	}
	return c, nil
}

// managedClient returns a client for c whose token comes from the on-disk
// cache when one is still good, else from the server (and is then saved),
// along with the token itself.
func managedClient(ctx context.Context, e *env, c client.Config, noCache bool) (*client.Client, *oauth2.Token, error) {
	opts := []client.Option{
		client.WithLogger(e.clientLogger()),
		client.WithWarnings(e.stderr),
		client.WithHTTPClient(&http.Client{Timeout: 2 * time.Minute}),
		client.WithFetchTimeout(time.Minute),
	}
	tc, err := openTokenCache(e, c)
	if err != nil {
		fmt.Fprintf(e.stderr, "gatehouse: warning: the token cache cannot be used: %v\n", err)
		cl, err := c.NewClient(opts...)
		if err != nil {
			return nil, nil, err
		}
		tok, err := cl.Source.TokenContext(ctx)
		return cl, tok, err
	}
	// One process at a time asks for this identity's token, so that a
	// loop or a parallel job creates one middleware session, not many.
	unlock, err := tc.lock(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	opts = append(opts, client.WithOnToken(tc.save))
	if !noCache {
		if saved := tc.load(); saved != nil {
			// Served while it is outside the refresh buffer; otherwise it is
			// renewed (with its refresh token when it has one).
			opts = append(opts, client.WithSeed(saved))
		}
	}
	cl, err := c.NewClient(opts...)
	if err != nil {
		return nil, nil, err
	}
	tok, err := cl.Source.TokenContext(ctx)
	return cl, tok, err
}

func newTokenCmd(e *env, g *globals) *cobra.Command {
	var f identityFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print an access token (cached, renewed before it expires)",
		Long: `Print an access token for a P21 server (user credentials or consumer key) or an
APX/OAuth2 token endpoint.

Credentials come from the environment — P21_BASE_URL, P21_USERNAME,
P21_PASSWORD, P21_CONSUMER_KEY, P21_VERIFY_SSL; with --apx: APX_TOKEN_URL,
APX_CLIENT_ID, APX_CLIENT_SECRET, APX_USERNAME, APX_PASSWORD — or from stdin
(--password-stdin, --consumer-key-stdin), never from the command line. With
P21_CONSUMER_KEY set (or --consumer-key-stdin) the consumer flow is used, with
the username as the token's user context; otherwise the user flow.

Tokens are cached in $XDG_CACHE_HOME/gatehouse/ (one file per server and
identity, mode 0600) and reused until they are within 5 minutes of expiry,
so that running this in a loop does not create a middleware session per call.
The cache is keyed by identity, not by password: a cached token is printed
without the password being checked again; --no-cache signs in afresh.`,
		Example: `  export P21_BASE_URL=https://play.p21server.com P21_USERNAME=api_user
  read -rs P21_PASSWORD && export P21_PASSWORD
  curl -H "Authorization: Bearer $(gatehouse token)" "$P21_BASE_URL/odataservice/odata/table/supplier"

  gatehouse token --json --consumer-key-stdin < consumer.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.config(e)
			if err != nil {
				return err
			}
			_, tok, err := managedClient(cmd.Context(), e, c, f.noCache)
			if err != nil {
				return err
			}
			if asJSON {
				fields := client.Fields(tok)
				if fields == nil {
					fields = map[string]any{"access_token": tok.AccessToken, "token_type": tok.TokenType}
				}
				return printJSON(e.stdout, fields)
			}
			_, err = fmt.Fprintln(e.stdout, tok.AccessToken)
			return err
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print every field of the token response as JSON")
	cmd.AddCommand(newTokenInspectCmd(e, g))
	return cmd
}

// tokenCache is the on-disk cache entry of one identity.
type tokenCache struct {
	path     string
	identity string
	stderr   io.Writer
}

// cachedToken is what a cache file holds: the token and the response
// fields, never the password, key or client secret.
type cachedToken struct {
	Version      int            `json:"version"`
	Identity     string         `json:"identity"`
	AccessToken  string         `json:"access_token"`
	TokenType    string         `json:"token_type,omitempty"`
	RefreshToken string         `json:"refresh_token,omitempty"`
	Expiry       time.Time      `json:"expiry"`
	Fields       map[string]any `json:"fields,omitempty"`
}

// tokenCacheDir is $XDG_CACHE_HOME/gatehouse, else the OS user cache dir.
func tokenCacheDir(e *env) (string, error) {
	if d := e.getenv("XDG_CACHE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "gatehouse"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "gatehouse"), nil
}

// openTokenCache names the cache file of c's identity: a keyed hash, under
// the cache's own random secret (cacheSecret), of the endpoint, the flow,
// the user name and the client id — and, for the P21 consumer flow, whose
// identity is its key, of the consumer key. Passwords and client secrets
// are not part of it: nothing on disk is derived from them, so neither the
// file names nor their contents let anyone test password guesses offline.
// A different password for the same identity therefore finds the same
// entry: the token of that identity, which this user can read from the
// file anyway; the server checks the password when a token is fetched
// (--no-cache forces it). Another identity never finds it.
func openTokenCache(e *env, c client.Config) (*tokenCache, error) {
	dir, err := tokenCacheDir(e)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm() != 0o700 && runtime.GOOS != "windows" {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, err
		}
	}
	removeLegacyCacheFiles(dir)
	secret, err := cacheSecret(dir)
	if err != nil {
		return nil, err
	}
	endpoint := c.BaseURL
	if c.Flow == client.FlowAPX || c.Flow == client.FlowClientCredentials {
		endpoint = c.TokenURL
	}
	key := ""
	if c.Flow == client.FlowP21Consumer {
		key = c.ConsumerKey
	}
	mac := hmac.New(sha256.New, secret)
	io.WriteString(mac, strings.Join([]string{"gatehouse-token-cache-v2", strings.TrimRight(endpoint, "/"), string(c.Flow),
		c.Username, c.ClientID, key}, "\x00"))
	return &tokenCache{
		path:     filepath.Join(dir, "t-"+hex.EncodeToString(mac.Sum(nil)[:16])+".json"),
		identity: fmt.Sprintf("%s %s user=%q client=%q", c.Flow, redactedURL(endpoint), c.Username, c.ClientID),
		stderr:   e.stderr,
	}, nil
}

// cacheSecretFile holds the cache's random secret (32 bytes, hex), mode 0600.
const cacheSecretFile = "cache.key"

// cacheSecret reads the cache's secret, creating it on first use. A new
// one is written to a temporary file and linked into place, so that of two
// processes creating it at once both end up with the one that won.
func cacheSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, cacheSecretFile)
	if b, err := os.ReadFile(path); err == nil {
		if k, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil && len(k) == 32 {
			return k, nil
		}
		// Damaged: replace it (saved tokens are then fetched again).
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, 32)
	rand.Read(k)
	f, err := os.CreateTemp(dir, ".cache.key-*") // mode 0600
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.WriteString(hex.EncodeToString(k) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Link(tmp, path); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if b, rerr := os.ReadFile(path); rerr == nil {
			if theirs, derr := hex.DecodeString(strings.TrimSpace(string(b))); derr == nil && len(theirs) == 32 {
				return theirs, nil
			}
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// legacyCacheName matches the files of the first cache format, whose names
// held an unsalted hash of the password: they are removed.
var legacyCacheName = regexp.MustCompile(`^[0-9a-f]{32}\.json(\.lock)?$`)

func removeLegacyCacheFiles(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, ent := range ents {
		if legacyCacheName.MatchString(ent.Name()) {
			os.Remove(filepath.Join(dir, ent.Name()))
		}
	}
}

func redactedURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if at := strings.LastIndex(s[i+3:], "@"); at >= 0 {
			return s[:i+3] + s[i+3+at+1:]
		}
	}
	return s
}

// load returns the saved token, or nil when there is none (or it cannot be read).
func (tc *tokenCache) load() *oauth2.Token {
	b, err := os.ReadFile(tc.path)
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // ExpiresIn stays 630720000, not 6.3072e+08
	var ct cachedToken
	if err := dec.Decode(&ct); err != nil || ct.Version != 1 || ct.AccessToken == "" {
		return nil
	}
	t := &oauth2.Token{AccessToken: ct.AccessToken, TokenType: ct.TokenType, RefreshToken: ct.RefreshToken, Expiry: ct.Expiry}
	if ct.Fields != nil {
		t = client.WithFields(t, ct.Fields)
	}
	return t
}

// save writes the token atomically (a temporary file renamed over the
// old one), readable by the owner only. A failure is only a warning: the
// token itself is good.
func (tc *tokenCache) save(t *oauth2.Token) {
	if err := tc.write(t); err != nil {
		fmt.Fprintf(tc.stderr, "gatehouse: warning: could not save the token in the cache: %v\n", err)
	}
}

func (tc *tokenCache) write(t *oauth2.Token) error {
	b, err := json.MarshalIndent(cachedToken{Version: 1, Identity: tc.identity, AccessToken: t.AccessToken, TokenType: t.TokenType,
		RefreshToken: t.RefreshToken, Expiry: t.Expiry, Fields: client.Fields(t)}, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(tc.path), ".token-*.tmp") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, tc.path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Lock files: created with O_EXCL, holding "pid host nonce". A lock whose
// process is gone (same host), or that is older than lockStale, is broken.
const (
	lockStale   = 3 * time.Minute // longer than any fetch (the fetch timeout is 1 minute)
	lockMaxWait = 2 * time.Minute
)

// lock takes the identity's lock file and returns its release.
func (tc *tokenCache) lock(ctx context.Context) (func(), error) {
	path := tc.path + ".lock"
	host, _ := os.Hostname()
	nonce := make([]byte, 8)
	rand.Read(nonce)
	content := fmt.Sprintf("%d %s %x\n", os.Getpid(), host, nonce)
	deadline := time.Now().Add(lockMaxWait)
	for wait := 5 * time.Millisecond; ; wait = min(wait*2, 200*time.Millisecond) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			_, werr := f.WriteString(content)
			f.Close()
			if werr != nil {
				os.Remove(path)
				return nil, werr
			}
			return func() { releaseLock(path, content) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("token cache lock: %w", err)
		}
		breakStaleLock(path, host)
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("another gatehouse process holds the token cache lock %s; remove it if no such process runs", path)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// releaseLock removes the lock file if it is still ours.
func releaseLock(path, content string) {
	if b, err := os.ReadFile(path); err == nil && string(b) == content {
		os.Remove(path)
	}
}

// breakStaleLock removes a lock left by a process that died (same host)
// or that has been held far longer than any token request takes.
func breakStaleLock(path, host string) {
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	stale := time.Since(fi.ModTime()) > lockStale
	if fields := strings.Fields(string(b)); !stale && len(fields) == 3 && fields[1] == host {
		if pid, err := strconv.Atoi(fields[0]); err == nil && !processAlive(pid) {
			stale = true
		}
	}
	if !stale {
		return
	}
	// Remove only the lock that was judged: if it changed meanwhile,
	// another process has taken it properly.
	if again, err := os.ReadFile(path); err == nil && bytes.Equal(again, b) {
		os.Remove(path)
	}
}

// processAlive reports whether a process with this id exists.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	defer p.Release()
	if runtime.GOOS == "windows" {
		return true // FindProcess fails there for processes that do not exist
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}
