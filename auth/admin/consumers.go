package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/scope"
	"github.com/gatehouse/gatehouse/store"
)

// ParseLifetime reads a token lifetime: "never", a Go duration ("90m",
// "24h") or a number of days ("30d").
func ParseLifetime(s string) (time.Duration, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "never" || s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 36500 {
			return 0, inputErr("lifetime %q: days must be a whole number from 1 to 36500", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, inputErr("lifetime %q is not \"never\", a duration like 90m or 24h, or days like 30d", s)
	}
	if d < time.Minute {
		return 0, inputErr("lifetime %q is shorter than one minute", s)
	}
	return d, nil
}

// FormatLifetime is the inverse of ParseLifetime.
func FormatLifetime(d time.Duration) string {
	if d <= 0 {
		return "never"
	}
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// NewConsumer is what AddConsumer needs.
type NewConsumer struct {
	Name     string
	Type     gatehouse.ConsumerType // default service
	SDK      bool
	Lifetime time.Duration // 0: never
	Scope    string
	Grants   []string
	// Key is a known consumer key to register instead of a new random one
	// (reproducible CI and declarative setup); "" for a new key.
	Key string
}

// checkKnownKey refuses a known consumer key that is too weak or cannot
// travel in a JSON body or a header, without repeating it.
func checkKnownKey(k string) error {
	if len(k) < 16 || len(k) > 512 {
		return inputErr("the consumer key must be 16 to 512 characters long (a UUID, as P21 issues them, is 36)")
	}
	for _, r := range k {
		if r <= ' ' || r == 0x7f {
			return inputErr("the consumer key contains white space or a control character")
		}
	}
	return nil
}

// AddConsumer registers a consumer and returns it with its key. The key is
// shown this once; only its hash is kept.
func (a *Admin) AddConsumer(ctx context.Context, actor string, in NewConsumer) (gatehouse.Consumer, string, error) {
	if !consumerNameRE.MatchString(in.Name) {
		return gatehouse.Consumer{}, "", inputErr("consumer name %q is not valid: use 1-128 letters, digits, _ . @ - (not starting with . @ -)", in.Name)
	}
	if _, err := strconv.ParseInt(in.Name, 10, 64); err == nil {
		return gatehouse.Consumer{}, "", inputErr("consumer name %q is all digits: it would be mistaken for a consumer uid", in.Name)
	}
	if in.Type == "" {
		in.Type = gatehouse.ConsumerService
	}
	if !in.Type.Valid() {
		return gatehouse.Consumer{}, "", inputErr("consumer type %q is not one of desktop, mobile, web, service", in.Type)
	}
	sc, err := ConsumerScope(in.Scope)
	if err != nil {
		return gatehouse.Consumer{}, "", err
	}
	grants, err := checkGrants(in.Grants)
	if err != nil {
		return gatehouse.Consumer{}, "", err
	}
	key := in.Key
	if key != "" {
		if err := checkKnownKey(key); err != nil {
			return gatehouse.Consumer{}, "", err
		}
	} else if key, err = a.ckeys.New(); err != nil {
		return gatehouse.Consumer{}, "", err
	}
	keySource := "new"
	if in.Key != "" {
		keySource = "given"
	}
	now := a.clock.Now()
	ev := a.audited(ctx, func(ch []gatehouse.Change) gatehouse.AuditEvent {
		uid := ""
		for _, c := range ch {
			if c.Kind == gatehouse.ChangeConsumer {
				uid = c.Key
			}
		}
		return a.event(actor, "consumer.add", "consumer:"+uid,
			fmt.Sprintf("name=%s type=%s scope=%q sdk=%t expires=%s grants=%s key=%s", in.Name, in.Type, sc, in.SDK,
				FormatLifetime(in.Lifetime), strings.Join(grants, ","), keySource))
	})
	c, err := a.store.CreateConsumer(ev, gatehouse.Consumer{
		Name: in.Name, Type: in.Type, SDKAccess: in.SDK, Lifetime: in.Lifetime, Scope: sc,
		Grants: grants, KeyHash: a.ckeys.Hash(key), CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		if errors.Is(err, gatehouse.ErrConflict) {
			if in.Key != "" {
				return c, "", conflictErr("consumer %q already exists (names are case-insensitive), or its key is another consumer's", in.Name)
			}
			return c, "", conflictErr("consumer %q already exists (names are case-insensitive)", in.Name)
		}
		return c, "", err
	}
	return c, key, nil
}

// ConsumerScope validates a scope for a consumer registration and returns
// it as it will be stored and echoed: as the administrator wrote it, without
// surrounding white space (matching is case-insensitive all the same).
func ConsumerScope(s string) (string, error) {
	sc, err := scope.Parse(s)
	if err != nil {
		return "", inputErr("scope: %v", err)
	}
	if err := scope.ValidateForConsumer(sc); err != nil {
		return "", inputErr("scope: %v", err)
	}
	// It travels in headers (X-Gatehouse-Scope) as written: no line breaks.
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != ' ' || r == 0x7f }) {
		return "", inputErr("scope: contains a control character (write entries on one line, separated by ;)")
	}
	return strings.TrimSpace(s), nil
}

func checkGrants(gs []string) ([]string, error) {
	var out []string
	for _, g := range gs {
		g = strings.ToLower(strings.TrimSpace(g))
		switch g {
		case gatehouse.GrantClientCredentials:
			continue // always allowed
		case gatehouse.GrantPassword, gatehouse.GrantRefreshToken:
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		default:
			return nil, inputErr("grant %q is not one of password, refresh_token, client_credentials", g)
		}
	}
	slices.Sort(out)
	return out, nil
}

// FindConsumer finds a consumer by uid ("8") or name.
func (a *Admin) FindConsumer(ctx context.Context, ref string) (gatehouse.Consumer, error) {
	if uid, err := strconv.ParseInt(ref, 10, 64); err == nil {
		c, err := a.store.GetConsumer(ctx, uid)
		return c, notFound(err, "consumer", ref)
	}
	c, err := a.store.GetConsumerByName(ctx, ref)
	return c, notFound(err, "consumer", ref)
}

// SetConsumerDisabled disables or enables a consumer. Disabling ends its sessions.
func (a *Admin) SetConsumerDisabled(ctx context.Context, actor, ref string, disabled bool) (gatehouse.Consumer, []string, error) {
	c, err := a.FindConsumer(ctx, ref)
	if err != nil {
		return c, nil, err
	}
	action := "consumer.enable"
	if disabled {
		action = "consumer.disable"
	}
	target := "consumer:" + c.UIDString()
	c, err = a.store.UpdateConsumer(a.with(ctx, actor, action, target, "name="+c.Name), c.UID, func(c *gatehouse.Consumer) error {
		if err := checkPrecondition(ctx, *c); err != nil {
			return err
		}
		c.Disabled = disabled
		c.UpdatedAt = a.clock.Now()
		return nil
	})
	if err != nil {
		return c, nil, notFound(err, "consumer", ref)
	}
	var ended []string
	if disabled {
		if ended, err = a.store.EndSessions(a.sessionsEndedEvent(ctx, actor, target, "consumer disabled"),
			store.SessionFilter{ConsumerUID: c.UID}, gatehouse.EndConsumerDisabled, a.clock.Now()); err != nil {
			return c, nil, fmt.Errorf("consumer %s was disabled, but its sessions could not be ended (run `gatehouse consumer disable %s` again): %w",
				c.Name, c.Name, err)
		}
		a.sessionsEnded(ended)
	}
	return c, ended, nil
}

// RotateConsumerKey gives a consumer a new key and ends the sessions
// obtained with the old one. The new key is returned this once.
func (a *Admin) RotateConsumerKey(ctx context.Context, actor, ref string) (gatehouse.Consumer, string, error) {
	return a.replaceKey(ctx, actor, ref, "")
}

// SetConsumerKey gives a consumer a known key (see NewConsumer.Key), as
// RotateConsumerKey does with a new one: the old key's sessions end.
func (a *Admin) SetConsumerKey(ctx context.Context, actor, ref, key string) (gatehouse.Consumer, error) {
	if err := checkKnownKey(key); err != nil {
		return gatehouse.Consumer{}, err
	}
	c, _, err := a.replaceKey(ctx, actor, ref, key)
	return c, err
}

// KeyIs reports whether key is the consumer's key (in constant time).
func (a *Admin) KeyIs(c gatehouse.Consumer, key string) bool {
	return subtle.ConstantTimeCompare(a.ckeys.Hash(key), c.KeyHash) == 1
}

func (a *Admin) replaceKey(ctx context.Context, actor, ref, key string) (gatehouse.Consumer, string, error) {
	c, err := a.FindConsumer(ctx, ref)
	if err != nil {
		return c, "", err
	}
	detail := "name=" + c.Name
	if key == "" {
		if key, err = a.ckeys.New(); err != nil {
			return c, "", err
		}
	} else {
		detail += " key=given"
	}
	target := "consumer:" + c.UIDString()
	c, err = a.store.UpdateConsumer(a.with(ctx, actor, "consumer.rotate-key", target, detail), c.UID, func(c *gatehouse.Consumer) error {
		c.KeyHash = a.ckeys.Hash(key)
		c.UpdatedAt = a.clock.Now()
		return nil
	})
	if err != nil {
		return c, "", notFound(err, "consumer", ref)
	}
	ended, err := a.store.EndSessions(a.sessionsEndedEvent(ctx, actor, target, "consumer key rotated"),
		store.SessionFilter{ConsumerUID: c.UID}, gatehouse.EndKeyRotated, a.clock.Now())
	if err != nil {
		// The new key is in force; the old one's sessions remain until
		// they expire or are ended: say so rather than lose the key.
		return c, key, fmt.Errorf("the key of %s was rotated, but the sessions of the old key could not be ended (run `gatehouse session end` for them): %w",
			c.Name, err)
	}
	a.sessionsEnded(ended)
	return c, key, nil
}

// DeleteConsumer removes a consumer; its sessions end.
func (a *Admin) DeleteConsumer(ctx context.Context, actor, ref string) (gatehouse.Consumer, error) {
	c, err := a.FindConsumer(ctx, ref)
	if err != nil {
		return c, err
	}
	ev := a.audited(ctx, func(ch []gatehouse.Change) gatehouse.AuditEvent {
		return a.event(actor, "consumer.delete", "consumer:"+c.UIDString(), fmt.Sprintf("name=%s; %d sessions ended", c.Name, endedCount(ch)))
	})
	if err := a.store.DeleteConsumer(ev, c.UID); err != nil {
		return c, notFound(err, "consumer", ref)
	}
	return c, nil
}

// ConsumerChange lists the fields UpdateConsumer changes; nil fields stay.
type ConsumerChange struct {
	Scope    *string
	Type     *gatehouse.ConsumerType
	SDK      *bool
	Lifetime *time.Duration // 0: never
	Grants   *[]string
}

// UpdateConsumer changes a consumer's scope, type, SDK access, token
// lifetime or grants, keeping its key. Tokens already issued keep the
// scope and lifetime they were issued with until they expire or their
// session ends; tokens issued from now on carry the new ones.
func (a *Admin) UpdateConsumer(ctx context.Context, actor, ref string, ch ConsumerChange) (gatehouse.Consumer, error) {
	c, err := a.FindConsumer(ctx, ref)
	if err != nil {
		return c, err
	}
	var changes []string
	var sc string
	if ch.Scope != nil {
		if sc, err = ConsumerScope(*ch.Scope); err != nil {
			return c, err
		}
		changes = append(changes, fmt.Sprintf("scope=%q", sc))
	}
	if ch.Type != nil {
		if !ch.Type.Valid() {
			return c, inputErr("consumer type %q is not one of desktop, mobile, web, service", *ch.Type)
		}
		changes = append(changes, "type="+string(*ch.Type))
	}
	if ch.SDK != nil {
		changes = append(changes, fmt.Sprintf("sdk=%t", *ch.SDK))
	}
	if ch.Lifetime != nil {
		if *ch.Lifetime < 0 {
			return c, inputErr("the token lifetime is negative")
		}
		changes = append(changes, "expires="+FormatLifetime(*ch.Lifetime))
	}
	var grants []string
	if ch.Grants != nil {
		if grants, err = checkGrants(*ch.Grants); err != nil {
			return c, err
		}
		changes = append(changes, "grants="+strings.Join(grants, ","))
	}
	if len(changes) == 0 {
		return c, inputErr("nothing to change: give a scope, type, SDK access, expiry or grants")
	}
	target := "consumer:" + c.UIDString()
	ev := a.with(ctx, actor, "consumer.update", target, "name="+c.Name+" "+strings.Join(changes, " "))
	c, err = a.store.UpdateConsumer(ev, c.UID, func(c *gatehouse.Consumer) error {
		if err := checkPrecondition(ctx, *c); err != nil {
			return err
		}
		if ch.Scope != nil {
			c.Scope = sc
		}
		if ch.Type != nil {
			c.Type = *ch.Type
		}
		if ch.SDK != nil {
			c.SDKAccess = *ch.SDK
		}
		if ch.Lifetime != nil {
			c.Lifetime = *ch.Lifetime
		}
		if ch.Grants != nil {
			c.Grants = grants
		}
		c.UpdatedAt = a.clock.Now()
		return nil
	})
	if err != nil {
		return c, notFound(err, "consumer", ref)
	}
	return c, nil
}
