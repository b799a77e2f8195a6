package client

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Flow names a way of getting tokens.
type Flow string

// The flows.
const (
	FlowP21User           Flow = "p21-user"           // P21 user name and password
	FlowP21Consumer       Flow = "p21-consumer"       // P21 consumer key, optional user context
	FlowAPX               Flow = "apx"                // APX (OAuth2) password grant
	FlowClientCredentials Flow = "client-credentials" // OAuth2 client credentials
)

// The environment variables [LoadEnv] reads.
const (
	EnvP21BaseURL     = "P21_BASE_URL"
	EnvP21Username    = "P21_USERNAME"
	EnvP21Password    = "P21_PASSWORD"
	EnvP21ConsumerKey = "P21_CONSUMER_KEY"
	EnvP21VerifySSL   = "P21_VERIFY_SSL"
	EnvAPXTokenURL    = "APX_TOKEN_URL"
	EnvAPXClientID    = "APX_CLIENT_ID"
	EnvAPXSecret      = "APX_CLIENT_SECRET"
	EnvAPXUsername    = "APX_USERNAME"
	EnvAPXPassword    = "APX_PASSWORD"
)

// Config says how to get tokens: the flow and its credentials. [LoadEnv]
// fills it from the environment; programs may fill or adjust it themselves.
type Config struct {
	// Flow is how tokens are obtained.
	Flow Flow
	// BaseURL is the P21 server (P21 flows), also the base of API paths.
	BaseURL string
	// TokenURL is the OAuth2 token endpoint (APX and client credentials).
	TokenURL string
	// Username is the P21 user (user flow), the user context (consumer
	// flow, optional) or the APX user.
	Username string
	// Password is the P21 or APX user's password.
	Password string
	// ConsumerKey is the P21 consumer key.
	ConsumerKey string
	// ClientID and ClientSecret authenticate the OAuth2 client.
	ClientID, ClientSecret string
	// V1 selects the deprecated P21 V1 endpoint.
	V1 bool
	// InsecureSkipVerify turns off TLS certificate verification for the P21
	// server (P21_VERIFY_SSL=false). Development servers only.
	InsecureSkipVerify bool
}

// ConfigError names what is missing or wrong in a [Config], by the
// environment variable that sets it.
type ConfigError struct {
	// Var is the environment variable, e.g. P21_BASE_URL.
	Var string
	// Problem is what is wrong with it, e.g. "is not set".
	Problem string
	// Flow is the flow that needs it.
	Flow Flow
}

// Error names the variable, the problem and the flow.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s %s (needed for the %s flow)", e.Var, e.Problem, e.Flow)
}

// LoadEnv reads the configuration from the environment through getenv
// (os.Getenv, or a stand-in in tests). The flow is the APX password grant
// when [WithAPX] or [WithAPXUAT] is given; else the P21 consumer flow when
// P21_CONSUMER_KEY is set (with P21_USERNAME as the user context); else
// the P21 user flow. APX_TOKEN_URL defaults to [APXProduction] (or
// [APXUAT] with [WithAPXUAT]). P21_VERIFY_SSL is true unless it says
// false (false, 0, no, off). LoadEnv only reads; [Config.Validate] checks.
func LoadEnv(getenv func(string) string, opts ...Option) (Config, error) {
	o := buildOptions(opts)
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	c := Config{BaseURL: get(EnvP21BaseURL)}
	verify := strings.ToLower(get(EnvP21VerifySSL))
	switch {
	case o.apx:
		c.Flow = FlowAPX
		c.TokenURL = get(EnvAPXTokenURL)
		if c.TokenURL == "" {
			c.TokenURL = APXProduction
			if o.uat {
				c.TokenURL = APXUAT
			}
		}
		c.ClientID, c.ClientSecret = get(EnvAPXClientID), getenv(EnvAPXSecret)
		c.Username, c.Password = get(EnvAPXUsername), getenv(EnvAPXPassword)
	case getenv(EnvP21ConsumerKey) != "":
		c.Flow = FlowP21Consumer
		c.ConsumerKey = get(EnvP21ConsumerKey)
		c.Username = get(EnvP21Username)
	default:
		c.Flow = FlowP21User
		c.Username, c.Password = get(EnvP21Username), getenv(EnvP21Password)
	}
	switch verify {
	case "", "true", "1", "yes", "on":
	case "false", "0", "no", "off":
		c.InsecureSkipVerify = true
	default:
		return Config{}, &ConfigError{Var: EnvP21VerifySSL, Problem: "is not true or false", Flow: c.Flow}
	}
	return c, nil
}

// Validate checks that the flow has what it needs; the error is a
// [*ConfigError] naming the environment variable.
func (c Config) Validate() error {
	need := func(v, name string) error {
		if v == "" {
			return &ConfigError{Var: name, Problem: "is not set", Flow: c.Flow}
		}
		return nil
	}
	isURL := func(v, name string) error {
		if err := need(v, name); err != nil {
			return err
		}
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return &ConfigError{Var: name, Problem: "is not an http(s) URL", Flow: c.Flow}
		}
		return nil
	}
	var checks []error
	switch c.Flow {
	case FlowP21User:
		checks = []error{isURL(c.BaseURL, EnvP21BaseURL), need(c.Username, EnvP21Username), need(c.Password, EnvP21Password)}
	case FlowP21Consumer:
		checks = []error{isURL(c.BaseURL, EnvP21BaseURL), need(c.ConsumerKey, EnvP21ConsumerKey)}
	case FlowAPX:
		checks = []error{isURL(c.TokenURL, EnvAPXTokenURL), need(c.ClientID, EnvAPXClientID), need(c.ClientSecret, EnvAPXSecret),
			need(c.Username, EnvAPXUsername), need(c.Password, EnvAPXPassword)}
	case FlowClientCredentials:
		checks = []error{isURL(c.TokenURL, EnvAPXTokenURL), need(c.ClientID, EnvAPXClientID), need(c.ClientSecret, EnvAPXSecret)}
	default:
		return fmt.Errorf("unknown flow %q", clean(string(c.Flow), 32))
	}
	if c.BaseURL != "" && c.Flow != FlowP21User && c.Flow != FlowP21Consumer {
		checks = append(checks, isURL(c.BaseURL, EnvP21BaseURL))
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

// NewSource validates c and returns its (uncached) token source. Options
// are passed to the source. With InsecureSkipVerify on a P21 flow, it
// writes a warning to [WithWarnings]'s writer (default os.Stderr).
func (c Config) NewSource(opts ...Option) (TokenSource, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	opts = opts[:len(opts):len(opts)] // appends below must not write into the caller's array
	if c.V1 {
		opts = append(opts, WithV1())
	}
	if hc := c.httpClient(o.httpClient, o.warnings); hc != o.httpClient {
		opts = append(opts, WithHTTPClient(hc))
	}
	switch c.Flow {
	case FlowP21User:
		return NewP21UserSource(c.BaseURL, c.Username, c.Password, opts...), nil
	case FlowP21Consumer:
		return NewP21ConsumerSource(c.BaseURL, c.ConsumerKey, c.Username, opts...), nil
	case FlowAPX:
		return NewAPXSource(c.TokenURL, c.ClientID, c.ClientSecret, c.Username, c.Password, opts...), nil
	default:
		return NewClientCredentialsSource(c.TokenURL, c.ClientID, c.ClientSecret, opts...), nil
	}
}

// NewClient validates c and returns a [Client] for c.BaseURL with a
// [CachedSource] over c's source. Options go to the source, the cache and
// the client.
func (c Config) NewClient(opts ...Option) (*Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	hc := c.httpClient(o.httpClient, o.warnings)
	// The warning has been written once; the source gets the client as is.
	opts = append(opts[:len(opts):len(opts)], WithHTTPClient(hc))
	c.InsecureSkipVerify = false
	src, err := c.NewSource(opts...)
	if err != nil {
		return nil, err
	}
	return NewClient(c.BaseURL, src, opts...), nil
}

// FromEnv is [LoadEnv] followed by [Config.NewClient].
func FromEnv(getenv func(string) string, opts ...Option) (*Client, error) {
	c, err := LoadEnv(getenv, opts...)
	if err != nil {
		return nil, err
	}
	return c.NewClient(opts...)
}

// httpClient returns base, or for InsecureSkipVerify on a P21 flow a copy
// of it that does not verify certificates, after a warning.
func (c Config) httpClient(base *http.Client, warn io.Writer) *http.Client {
	if !c.InsecureSkipVerify || (c.Flow != FlowP21User && c.Flow != FlowP21Consumer) {
		return base
	}
	fmt.Fprintf(warn, "\n"+
		"WARNING: %s=false: TLS certificate verification is OFF for %s.\n"+
		"WARNING: anyone on the network path can impersonate the server and read your credentials and tokens.\n"+
		"WARNING: use this only with a development server.\n\n", EnvP21VerifySSL, redactURL(c.BaseURL))
	var tr *http.Transport
	if t, ok := base.Transport.(*http.Transport); ok {
		tr = t.Clone()
	} else {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	tr.TLSClientConfig.InsecureSkipVerify = true
	hc := *base
	hc.Transport = tr
	return &hc
}

// String describes the configuration without its secrets.
func (c Config) String() string {
	set := func(s string) string {
		if s == "" {
			return "unset"
		}
		return "set"
	}
	return fmt.Sprintf("flow=%s base=%s token_url=%s user=%q client_id=%q password=%s consumer_key=%s client_secret=%s v1=%t insecure=%t",
		c.Flow, redactURL(c.BaseURL), redactURL(c.TokenURL), c.Username, c.ClientID,
		set(c.Password), set(c.ConsumerKey), set(c.ClientSecret), c.V1, c.InsecureSkipVerify)
}

// Format prints the configuration as String does, for every verb, so that
// no formatting of it can reveal a secret.
func (c Config) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }
