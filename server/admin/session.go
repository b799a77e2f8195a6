package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

// consoleSession is a signed-in administrator's console session, kept on
// the server; the browser holds only its random id, in a cookie.
type consoleSession struct {
	user     string
	csrf     string
	created  time.Time
	lastSeen time.Time
	flash    string
}

// consoleSessions keeps console sessions in memory, by the SHA-256 of
// their id. A session ends after idle without a request, max after
// sign-in, or at sign-out. They are this process's: behind a load
// balancer, pin the console to one replica (or sign in again).
type consoleSessions struct {
	clock     gatehouse.Clock
	idle, max time.Duration

	mu sync.Mutex
	m  map[[32]byte]*consoleSession
}

// maxConsoleSessions bounds the map; the oldest sessions go first.
const maxConsoleSessions = 10_000

func newConsoleSessions(clock gatehouse.Clock, idle, max time.Duration) *consoleSessions {
	return &consoleSessions{clock: clock, idle: idle, max: max, m: map[[32]byte]*consoleSession{}}
}

// randomToken is 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// start makes a session for user and returns its id.
func (s *consoleSessions) start(user string) string {
	id := randomToken()
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if len(s.m) >= maxConsoleSessions {
		var oldest [32]byte
		var at time.Time
		for k, v := range s.m {
			if at.IsZero() || v.created.Before(at) {
				oldest, at = k, v.created
			}
		}
		delete(s.m, oldest)
	}
	s.m[sha256.Sum256([]byte(id))] = &consoleSession{user: user, csrf: randomToken(), created: now, lastSeen: now}
	return id
}

// get returns a copy of the live session of id and marks it used, or
// false. reason tells why a session that existed is gone.
func (s *consoleSessions) get(id string) (sess consoleSession, ok bool, expired bool) {
	if id == "" || len(id) > 100 {
		return sess, false, false
	}
	k := sha256.Sum256([]byte(id))
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.m[k]
	if p == nil {
		return sess, false, false
	}
	if now.Sub(p.lastSeen) >= s.idle || now.Sub(p.created) >= s.max {
		delete(s.m, k)
		return sess, false, true
	}
	p.lastSeen = now
	sess = *p
	p.flash = ""
	return sess, true, false
}

// setFlash leaves a message for the session's next page.
func (s *consoleSessions) setFlash(id, msg string) {
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.m[k]; p != nil {
		p.flash = msg
	}
}

// end ends the session of id.
func (s *consoleSessions) end(id string) {
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
}

// endUser ends every console session of user (it lost its admin rights).
func (s *consoleSessions) endUser(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m {
		if v.user == user {
			delete(s.m, k)
		}
	}
}

func (s *consoleSessions) sweep(now time.Time) {
	for k, v := range s.m {
		if now.Sub(v.lastSeen) >= s.idle || now.Sub(v.created) >= s.max {
			delete(s.m, k)
		}
	}
}

// sameToken compares two tokens in constant time.
func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
