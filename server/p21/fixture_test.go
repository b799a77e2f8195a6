package p21_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/store"
)

const jsonCT = "application/json"

// fixture is a server with the seed's cast: api_user (a real user with a
// password) and MY_SERVICE_APP, consumer uid 8 with scope /api;/p21sdk.
type fixture struct {
	*apptest.Env
	consumer gatehouse.Consumer
	key      string
}

const userPassword = "your_password"

func newFixture(t *testing.T, mutate ...func(*app.Config)) *fixture {
	t.Helper()
	return newFixtureWithClock(t, nil, mutate...)
}

// newFixtureWithClock is newFixture with a server that reads the time from
// clock (the system clock if nil).
func newFixtureWithClock(t *testing.T, clock gatehouse.Clock, mutate ...func(*app.Config)) *fixture {
	t.Helper()
	cfg := apptest.Config(t)
	for _, m := range mutate {
		m(&cfg)
	}
	e := apptest.StartWithClock(t, cfg, clock)
	e.AddRole("clerk")
	e.AddUser("api_user", userPassword, true, "clerk")
	// Seven earlier consumers so that ours gets uid 8, as in the seed.
	for i := 1; i <= 7; i++ {
		e.AddConsumer(admin.NewConsumer{Name: fmt.Sprintf("earlier_%d", i), Scope: "/api"})
	}
	c, key := e.AddConsumer(admin.NewConsumer{Name: "MY_SERVICE_APP", Scope: "/api", SDK: true})
	if c.UID != 8 {
		t.Fatalf("consumer uid = %d, want 8", c.UID)
	}
	return &fixture{Env: e, consumer: c, key: key}
}

func (f *fixture) userV2() (*http.Response, []byte) {
	return f.Post("/api/security/token/v2", jsonCT, `{"username": "api_user", "password": "your_password"}`, "Accept", jsonCT)
}

func (f *fixture) consumerV2(username string) (*http.Response, []byte) {
	body := `{"ClientSecret": "` + f.key + `", "GrantType": "client_credentials"`
	if username != "" {
		body += `, "username": "` + username + `"`
	}
	return f.Post("/api/security/token/v2", jsonCT, body+"}", "Accept", jsonCT)
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) userV2Accept(accept string) (*http.Response, []byte) {
	return f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"your_password"}`, "Accept", accept)
}

// claims decodes a JWT's header and payload without verifying it.
func claims(t *testing.T, jwt string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

func storeFilter(action string) store.AuditFilter { return store.AuditFilter{Action: action} }
