package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/masterkey"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// KeyManager keeps the signing keys: it creates the first ones, rotates
// them, and keeps an in-memory key ring in step with the store.
type KeyManager struct {
	store store.Store
	mk    *masterkey.Key
	ring  *token.Ring
	clock gatehouse.Clock
	log   *slog.Logger

	reloadMu sync.Mutex
}

// NewKeyManager builds a key manager that keeps ring current.
func NewKeyManager(st store.Store, mk *masterkey.Key, ring *token.Ring, clock gatehouse.Clock, log *slog.Logger) *KeyManager {
	if clock == nil {
		clock = gatehouse.SystemClock
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &KeyManager{store: st, mk: mk, ring: ring, clock: clock, log: log}
}

// Ring is the key ring the manager keeps current.
func (k *KeyManager) Ring() *token.Ring { return k.ring }

// Ensure gives every algorithm in algs an active and a next key (unless it
// has them already) and loads the ring.
func (k *KeyManager) Ensure(ctx context.Context, algs ...string) error {
	keys, err := k.store.ListKeys(ctx)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, key := range keys {
		if key.State == gatehouse.KeyActive {
			have[key.Algorithm] = true
		}
	}
	for _, alg := range algs {
		if have[alg] {
			continue
		}
		now := k.clock.Now()
		active, err := token.NewSigningKey(alg, k.mk, now)
		if err != nil {
			return fmt.Errorf("create %s key: %w", alg, err)
		}
		active.State, active.ActivatedAt = gatehouse.KeyActive, now
		next, err := token.NewSigningKey(alg, k.mk, now)
		if err != nil {
			return fmt.Errorf("create %s key: %w", alg, err)
		}
		next.State = gatehouse.KeyNext
		err = k.store.InitKeys(ctx, active, next)
		if err != nil && !errors.Is(err, gatehouse.ErrConflict) {
			return fmt.Errorf("store %s keys: %w", alg, err)
		}
		have[alg] = true
	}
	return k.Reload(ctx)
}

// Reload rebuilds the ring from the store.
func (k *KeyManager) Reload(ctx context.Context) error {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	keys, err := k.store.ListKeys(ctx)
	if err != nil {
		return err
	}
	kr, err := token.NewKeyring(keys, k.mk)
	if err != nil {
		return err
	}
	k.ring.Store(kr)
	return nil
}

// Rotate promotes the next key of alg, retires the active one until
// retireUntil, and creates a new next key. Of two concurrent rotations one
// fails with ErrConflict.
func (k *KeyManager) Rotate(ctx context.Context, alg string, retireUntil time.Time) (gatehouse.SigningKey, error) {
	keys, err := k.store.ListKeys(ctx)
	if err != nil {
		return gatehouse.SigningKey{}, err
	}
	active := ""
	for _, key := range keys {
		if key.Algorithm == alg && key.State == gatehouse.KeyActive {
			active = key.KID
		}
	}
	if active == "" {
		return gatehouse.SigningKey{}, fmt.Errorf("no active %s key to rotate: %w", alg, gatehouse.ErrNotFound)
	}
	now := k.clock.Now()
	next, err := token.NewSigningKey(alg, k.mk, now)
	if err != nil {
		return gatehouse.SigningKey{}, err
	}
	next.State = gatehouse.KeyNext
	if err := k.store.RotateKeys(ctx, active, next, now, retireUntil); err != nil {
		return gatehouse.SigningKey{}, err
	}
	return next, k.Reload(ctx)
}

// Revoke withdraws key kid at once (store.Keys.RevokeKey), giving its
// algorithm a new next key when kid was the active or the next one, and
// reloads this process's ring; other processes follow the change feed.
// It returns the key as it was.
func (k *KeyManager) Revoke(ctx context.Context, kid string, keepUntil time.Time) (gatehouse.SigningKey, error) {
	keys, err := k.store.ListKeys(ctx)
	if err != nil {
		return gatehouse.SigningKey{}, err
	}
	alg := ""
	for _, key := range keys {
		if key.KID == kid {
			alg = key.Algorithm
		}
	}
	if alg == "" {
		return gatehouse.SigningKey{}, fmt.Errorf("key %q: %w", kid, gatehouse.ErrNotFound)
	}
	now := k.clock.Now()
	next, err := token.NewSigningKey(alg, k.mk, now)
	if err != nil {
		return gatehouse.SigningKey{}, err
	}
	was, err := k.store.RevokeKey(ctx, kid, next, now, keepUntil)
	if err != nil {
		return was, err
	}
	return was, k.Reload(ctx)
}

// Changes reloads the ring when keys changed.
func (k *KeyManager) Changes(changes []gatehouse.Change) {
	for _, ch := range changes {
		if ch.Kind == gatehouse.ChangeKey {
			k.reloadLogged()
			return
		}
	}
}

// Reset reloads the ring.
func (k *KeyManager) Reset() { k.reloadLogged() }

func (k *KeyManager) reloadLogged() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := k.Reload(ctx); err != nil {
		k.log.Error("reload signing keys", "err", err)
	}
}

// GC deletes retired keys whose tokens have all expired.
func (k *KeyManager) GC(ctx context.Context) (int, error) {
	return k.store.DeleteRetiredKeys(ctx, k.clock.Now())
}
