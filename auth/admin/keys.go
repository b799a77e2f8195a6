package admin

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// RotateKeys rotates the signing keys of the given algorithms (every
// algorithm that has an active key when none are given). Retired keys stay
// verifiable until the longest-lived token they may have signed expires.
func (a *Admin) RotateKeys(ctx context.Context, actor string, algs []string) ([]gatehouse.SigningKey, error) {
	keys, err := a.store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	if len(algs) == 0 {
		for _, k := range keys {
			if k.State == gatehouse.KeyActive && !slices.Contains(algs, k.Algorithm) {
				algs = append(algs, k.Algorithm)
			}
		}
	}
	if len(algs) == 0 {
		return nil, inputErr("there are no signing keys yet; start the server once to create them")
	}
	var out []gatehouse.SigningKey
	for _, alg := range algs {
		until, err := a.retireHorizon(ctx, alg)
		if err != nil {
			return out, err
		}
		ev := a.audited(ctx, func(ch []gatehouse.Change) gatehouse.AuditEvent {
			next := ""
			for _, c := range ch {
				if c.Kind == gatehouse.ChangeKey && c.Op == gatehouse.OpCreate {
					next = c.Key
				}
			}
			return a.event(actor, "keys.rotate", "keys:"+alg, "new next key "+next+"; retired keys verify until "+until.UTC().Format(time.RFC3339))
		})
		next, err := a.keys.Rotate(ev, alg, until)
		if err != nil {
			if errors.Is(err, gatehouse.ErrConflict) {
				return out, inputErr("%s keys were rotated by someone else at the same moment; list them and retry if needed", alg)
			}
			if errors.Is(err, gatehouse.ErrNotFound) {
				return out, inputErr("there is no active %s key", alg)
			}
			return out, err
		}
		out = append(out, next)
	}
	return out, nil
}

// retireHorizon is when every token a key of alg has signed up to now has
// expired, counting only the kinds of token alg signs (auth.Config.Signing):
// P21 user tokens and OAuth2 password-grant tokens live at most
// UserTokenTTL; P21 consumer tokens and OAuth2 client-credentials tokens
// the longest lifetime of an enabled consumer (a disabled consumer's
// sessions have ended), and a never-expiring one until 2038. So a
// never-expiring consumer keeps its own algorithm's retired keys, not
// those of user tokens. An algorithm this configuration does not sign
// with gets the longest horizon of all, as it may have signed anything
// under another configuration.
func (a *Admin) retireHorizon(ctx context.Context, alg string) (time.Time, error) {
	now := a.clock.Now()
	inUse := slices.Contains(a.cfg.Algorithms(), alg)
	users := !inUse || alg == a.cfg.UserTokenAlg || alg == a.cfg.OAuthTokenAlg
	consumers := !inUse || alg == a.cfg.ConsumerTokenAlg || alg == a.cfg.OAuthTokenAlg
	var longest time.Duration
	if users {
		longest = a.cfg.UserTokenTTL
	}
	if consumers {
		cs, err := a.store.ListConsumers(ctx)
		if err != nil {
			return time.Time{}, err
		}
		for _, c := range cs {
			if c.Disabled {
				continue
			}
			if c.NeverExpires() {
				return time.Unix(gatehouse.NeverExpiresUnix, 0), nil
			}
			longest = max(longest, c.Lifetime)
		}
	}
	return now.Add(longest + a.cfg.Leeway), nil
}

// RetiredKey is what RetireKey did and whom it affects.
type RetiredKey struct {
	// Key is the key as it was before.
	Key gatehouse.SigningKey
	// Already: the key had been retired at once before; nothing changed.
	Already bool
	// Active and Next are its algorithm's active and next keys now.
	Active, Next string
	// Consumers have active sessions that may hold tokens the key signed;
	// UserSessions counts such P21 user sessions (without a consumer).
	Consumers    []gatehouse.Consumer
	UserSessions int
}

// RetireKey withdraws a signing key at once, for a key that is compromised:
// unlike a rotation it does not wait for the key's tokens to expire. Every
// token it signed is refused from now on (here at once, on every other
// process within a feed poll) with verify.DescKeyRevoked; if it was the active
// key, the next key (already published) signs from now on, and a new next
// key is made. It reports the consumers whose clients must get new
// tokens.
func (a *Admin) RetireKey(ctx context.Context, actor, kid string) (RetiredKey, error) {
	var out RetiredKey
	keys, err := a.store.ListKeys(ctx)
	if err != nil {
		return out, err
	}
	i := slices.IndexFunc(keys, func(k gatehouse.SigningKey) bool { return k.KID == kid })
	if i < 0 {
		return out, inputErr("there is no signing key %q (gatehouse keys list shows them)", kid)
	}
	out.Key = keys[i]
	if out.Key.State == gatehouse.KeyRevoked {
		out.Already = true
		return out, nil
	}
	alg := out.Key.Algorithm
	// The record stays while its tokens could have lived, so that they are
	// refused with a reason rather than as unknown.
	keep := out.Key.NotAfter
	if out.Key.State != gatehouse.KeyRetired {
		if keep, err = a.retireHorizon(ctx, alg); err != nil {
			return out, err
		}
	}
	now := a.clock.Now()
	ev := a.with(ctx, actor, "keys.retire", "key:"+kid, alg+" key retired at once (was "+string(out.Key.State)+")")
	if _, err := a.keys.Revoke(ev, kid, keep); err != nil {
		switch {
		case errors.Is(err, gatehouse.ErrNotFound):
			return out, inputErr("key %q cannot be retired: %v", kid, err)
		case errors.Is(err, gatehouse.ErrConflict):
			return out, inputErr("the %s keys changed at the same moment; list them and retry", alg)
		}
		return out, err
	}
	if keys, err = a.store.ListKeys(ctx); err != nil {
		return out, err
	}
	for _, k := range keys {
		if k.Algorithm == alg && k.State == gatehouse.KeyActive {
			out.Active = k.KID
		}
		if k.Algorithm == alg && k.State == gatehouse.KeyNext {
			out.Next = k.KID
		}
	}
	if out.Key.State == gatehouse.KeyNext {
		return out, nil // it never signed
	}
	end := out.Key.RetiredAt
	if end.IsZero() {
		end = now
	}
	sessions, err := a.store.ListSessions(ctx, store.SessionFilter{ActiveAt: now})
	if err != nil {
		return out, err
	}
	uids := map[int64]bool{}
	for _, s := range sessions {
		// A session begun before the key stopped signing may hold a token of
		// it (its first, or one from a refresh), if its kind uses alg.
		if sa, _ := a.cfg.Signing(s.Flow); sa != alg || s.CreatedAt.After(end) {
			continue
		}
		if s.ConsumerUID == 0 {
			out.UserSessions++
		} else {
			uids[s.ConsumerUID] = true
		}
	}
	if len(uids) > 0 {
		cs, err := a.store.ListConsumers(ctx)
		if err != nil {
			return out, err
		}
		for _, c := range cs {
			if uids[c.UID] {
				out.Consumers = append(out.Consumers, c)
			}
		}
	}
	return out, nil
}
