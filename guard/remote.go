package guard

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/wire"
)

// Remote decides by asking a gatehouse server's forward-auth endpoint
// (GET /auth/check); it answers with the gateway's statuses (400, 404
// where forward-auth says 403), so that every decider answers alike. Allowed answers are cached for TTL per token and
// path, so a burst of calls costs one check; refusals are never cached.
type Remote struct {
	checkURL string
	client   *http.Client
	ttl      time.Duration
	now      func() time.Time
	cache    *ttlCache[*Identity]
}

// RemoteOptions tune a Remote decider.
type RemoteOptions struct {
	// Client sends the checks (default: 5 s timeout).
	Client *http.Client
	// TTL is how long an allowed answer is reused (default 1 s; 0 keeps the
	// default, a negative value disables caching). A session ended in
	// gatehouse is refused here at most this much later.
	TTL time.Duration
}

// NewRemote checks against gatehouse's base URL, e.g. http://127.0.0.1:8080.
func NewRemote(baseURL string, o RemoteOptions) *Remote {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 5 * time.Second}
	}
	switch {
	case o.TTL == 0:
		o.TTL = time.Second
	case o.TTL < 0:
		o.TTL = 0
	}
	return &Remote{checkURL: strings.TrimSuffix(baseURL, "/") + wire.PathCheck, client: o.Client, ttl: o.TTL,
		now: time.Now, cache: newTTLCache[*Identity](maxRemoteCache)}
}

const maxRemoteCache = 50_000

// Decide asks gatehouse about r (its method, URI as the client sent it,
// and Authorization header). A request with more than one Authorization
// header is refused here.
func (rm *Remote) Decide(r *http.Request) (*Identity, error) {
	orig := RequestOf(r)
	if len(orig.Authorization) > 1 {
		return nil, RefusalFrom(policy.ErrManyAuthorizations())
	}
	authz := r.Header.Get("Authorization")
	uri := orig.Path
	if orig.Query != "" || strings.HasSuffix(r.RequestURI, "?") {
		uri += "?" + orig.Query
	}
	key := sha256.Sum256([]byte(authz + "\x00" + uri))
	now := rm.now()
	if rm.ttl > 0 {
		if id, ok := rm.cache.get(key, now); ok {
			return id, nil
		}
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, rm.checkURL, nil)
	if err != nil {
		return nil, err
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	req.Header.Set("X-Forwarded-Method", r.Method)
	req.Header.Set("X-Forwarded-Uri", uri)
	req.Header.Set("Accept", "application/json")
	resp, err := rm.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("gatehouse check: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
			return nil, fmt.Errorf("gatehouse check answered %d", resp.StatusCode)
		}
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e)
		h := http.Header{}
		for _, k := range []string{"WWW-Authenticate", "Retry-After"} {
			if v := resp.Header.Get(k); v != "" {
				h.Set(k, v)
			}
		}
		return nil, &Refusal{Status: gatewayStatus(resp.StatusCode, e.Error), Code: e.Error, Description: e.Description, Header: h}
	}
	id := &Identity{
		User: resp.Header.Get(wire.HeaderUser), ConsumerUID: resp.Header.Get(wire.HeaderConsumerUID),
		SessionID: resp.Header.Get(wire.HeaderSessionID), Scope: resp.Header.Get(wire.HeaderScope),
		Family: resp.Header.Get(wire.HeaderFamily),
	}
	if rm.ttl > 0 {
		rm.cache.put(key, id, now.Add(rm.ttl), now)
	}
	return id, nil
}

// gatewayStatus is the status the gateway gives for a forward-auth answer:
// forward-auth answers 403 where the gateway answers 400 (a request that
// cannot be judged) or 404 (a path no family claims), keeping the error
// code, so that Remote answers as the other deciders do.
func gatewayStatus(status int, code string) int {
	if status != http.StatusForbidden {
		return status
	}
	switch code {
	case gatehouse.CodeNotFound:
		return http.StatusNotFound
	case gatehouse.CodeInvalidRequest:
		return http.StatusBadRequest
	}
	return status
}
