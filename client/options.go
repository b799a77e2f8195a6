package client

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"golang.org/x/oauth2"
)

// TokenSource is an [oauth2.TokenSource] that also takes a context: the
// context bounds the wait and carries values (such as [oauth2.HTTPClient]).
type TokenSource interface {
	oauth2.TokenSource
	TokenContext(ctx context.Context) (*oauth2.Token, error)
}

// TokenRequester is implemented by the sources that get a token with one
// HTTP request ([P21UserSource], [P21ConsumerSource], [OAuth2Source]):
// NewTokenRequest builds that request without sending it, for tools that
// send it themselves, such as a load test. The request carries the
// source's credentials.
type TokenRequester interface {
	NewTokenRequest(ctx context.Context) (*http.Request, error)
}

// Renewer is implemented by sources that can renew a token they issued,
// e.g. with its refresh token, instead of starting over. [CachedSource]
// calls Renew with its current token when that token nears expiry.
type Renewer interface {
	Renew(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error)
}

// Option configures a token source, a [CachedSource] or a [Client]. Each
// option says where it applies; elsewhere it is ignored, so one option list
// can be handed to every layer (as [FromEnv] does).
type Option func(*options)

type options struct {
	httpClient *http.Client
	logger     *slog.Logger
	now        func() time.Time
	v1         bool
	rawBasic   bool
	userAgent  string

	attempts               int
	retryBase, retryMax    time.Duration
	refreshBefore          time.Duration
	onToken                func(*oauth2.Token)
	seed                   *oauth2.Token
	fetchTimeout           time.Duration
	backoffMin, backoffMax time.Duration

	apx      bool
	uat      bool
	warnings io.Writer
}

// Defaults, as documented on the options that change them.
const (
	DefaultRefreshBefore = 5 * time.Minute
	DefaultFetchTimeout  = time.Minute
	// DefaultExpiresIn is assumed when a token response states no lifetime.
	DefaultExpiresIn = 3600 * time.Second
)

func buildOptions(opts []Option) options {
	o := options{
		attempts:      3,
		retryBase:     200 * time.Millisecond,
		retryMax:      2 * time.Second,
		refreshBefore: DefaultRefreshBefore,
		fetchTimeout:  DefaultFetchTimeout,
		backoffMin:    time.Second,
		backoffMax:    time.Minute,
		userAgent:     "gatehouse-client",
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.httpClient == nil {
		o.httpClient = http.DefaultClient
	}
	if o.warnings == nil {
		o.warnings = os.Stderr
	}
	return o
}

// WithHTTPClient sets the HTTP client that token sources and [Client] use
// to reach the server (default [http.DefaultClient]). An [oauth2.HTTPClient]
// value in a request's context takes precedence, as in golang.org/x/oauth2.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithLogger sets where sources and caches log, at debug level, what they
// do (requests, fallbacks, backoff). Nothing secret is logged. Default: no logging.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock replaces time.Now, so that tests can control expiry.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithV1 makes P21 sources use the deprecated V1 endpoint
// (POST /api/security/token with credentials in headers) instead of V2.
// Refresh requests always go to V2, which is the only form that has one.
func WithV1() Option { return func(o *options) { o.v1 = true } }

// WithRawBasicAuth makes OAuth2 sources send the client id and secret in
// the Basic header as they are, for servers that do not form-decode them
// (RFC 6749 §2.3.1 says to form-encode them first, which is the default).
func WithRawBasicAuth() Option { return func(o *options) { o.rawBasic = true } }

// WithUserAgent sets the User-Agent of token requests.
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// WithRetries sets how many attempts one token fetch makes (default 3)
// when the server cannot be reached or answers 5xx; 4xx answers are never
// retried. Attempts are spaced by exponential backoff with jitter starting
// at base (default 200ms) and capped at max (default 2s).
func WithRetries(attempts int, base, max time.Duration) Option {
	return func(o *options) {
		if attempts > 0 {
			o.attempts = attempts
		}
		if base > 0 {
			o.retryBase = base
		}
		if max > 0 {
			o.retryMax = max
		}
	}
}

// WithRefreshBefore sets how long before its expiry a [CachedSource]
// replaces a token (default 5 minutes). For tokens that live less than
// twice that, half their lifetime is used instead.
func WithRefreshBefore(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.refreshBefore = d
		}
	}
}

// WithOnToken sets a hook that a [CachedSource] calls with every new token
// it obtains (not with a seed), e.g. to persist it. It runs before the
// callers waiting for that token are released, so keep it quick.
func WithOnToken(fn func(*oauth2.Token)) Option { return func(o *options) { o.onToken = fn } }

// WithSeed starts a [CachedSource] with a saved token, which it serves
// until the token nears expiry (and then renews, with its refresh token
// when the source supports it).
func WithSeed(t *oauth2.Token) Option { return func(o *options) { o.seed = t } }

// WithFetchTimeout bounds one shared token fetch of a [CachedSource],
// retries included (default 1 minute). Callers wait with their own
// contexts; this timeout is what ends a fetch that nobody waits for.
func WithFetchTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.fetchTimeout = d
		}
	}
}

// WithBackoff sets how long a [CachedSource] waits after a failed fetch
// before it tries again: min after the first failure, doubling (with
// jitter) up to max. Defaults: 1s and 1 minute. Calls made meanwhile get
// the last error at once.
func WithBackoff(min, max time.Duration) Option {
	return func(o *options) {
		if min > 0 {
			o.backoffMin = min
		}
		if max > 0 {
			o.backoffMax = max
		}
		if o.backoffMax < o.backoffMin {
			o.backoffMax = o.backoffMin
		}
	}
}

// WithAPX makes [FromEnv] use the APX password grant (APX_* variables)
// instead of a P21 flow.
func WithAPX() Option { return func(o *options) { o.apx = true } }

// WithAPXUAT makes [FromEnv] default to the APX UAT token URL ([APXUAT])
// when APX_TOKEN_URL is not set; it implies [WithAPX].
func WithAPXUAT() Option { return func(o *options) { o.apx, o.uat = true, true } }

// WithWarnings sets where [Config.NewSource] writes its warning about
// turned-off TLS verification (default os.Stderr).
func WithWarnings(w io.Writer) Option { return func(o *options) { o.warnings = w } }
