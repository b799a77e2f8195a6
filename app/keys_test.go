package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/auth/verify"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/token"
)

func keysByState(t *testing.T, a *app.App) map[string]map[gatehouse.KeyState][]gatehouse.SigningKey {
	t.Helper()
	ks, err := a.Store.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[gatehouse.KeyState][]gatehouse.SigningKey{}
	for _, k := range ks {
		if out[k.Algorithm] == nil {
			out[k.Algorithm] = map[gatehouse.KeyState][]gatehouse.SigningKey{}
		}
		out[k.Algorithm][k.State] = append(out[k.Algorithm][k.State], k)
	}
	return out
}

// TestRetireHorizonPerAlgorithm: a retired key is kept as long as a token
// of the kinds its algorithm signs can live — a never-expiring consumer
// keeps the consumer and OAuth2 algorithms' retired keys, not the RS256 key
// of user tokens — and the GC deletes it then.
func TestRetireHorizonPerAlgorithm(t *testing.T) {
	ctx := context.Background()
	clk := testtime.NewClock(time.Now().UTC().Truncate(time.Second))
	a, err := app.New(ctx, apptest.Config(t), nil, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, c := range []admin.NewConsumer{{Name: "forever", Scope: "/api"}, {Name: "hourly", Scope: "/api", Lifetime: time.Hour}} {
		if _, _, err := a.Admin.AddConsumer(ctx, "test", c); err != nil {
			t.Fatal(err)
		}
	}
	const leeway = 30 * time.Second
	never := time.Unix(gatehouse.NeverExpiresUnix, 0)
	rotateAndCheck := func(want map[string]time.Time) {
		t.Helper()
		if _, err := a.Admin.RotateKeys(ctx, "test", nil); err != nil {
			t.Fatal(err)
		}
		ks := keysByState(t, a)
		for alg, until := range want {
			retired := ks[alg][gatehouse.KeyRetired]
			if len(retired) == 0 || !retired[len(retired)-1].NotAfter.Equal(until) {
				t.Fatalf("retired %s keys %+v, want the newest kept until %s", alg, retired, until)
			}
		}
	}
	rotateAndCheck(map[string]time.Time{
		token.RS256: clk.Now().Add(24*time.Hour + leeway), // P21 user tokens only
		token.HS256: never,                                // P21 consumer tokens
		token.ES256: never,                                // OAuth2 client credentials
	})
	clk.Advance(24*time.Hour + leeway + time.Second)
	a.GC(ctx)
	ks := keysByState(t, a)
	if n := len(ks[token.RS256][gatehouse.KeyRetired]); n != 0 {
		t.Fatalf("%d retired RS256 keys left after their last token expired", n)
	}
	if len(ks[token.HS256][gatehouse.KeyRetired]) != 1 || len(ks[token.ES256][gatehouse.KeyRetired]) != 1 {
		t.Fatalf("retired consumer keys deleted while never-expiring tokens may use them: %+v", ks)
	}

	// Without the never-expiring consumer, the longest lifetime counts.
	if _, _, err := a.Admin.SetConsumerDisabled(ctx, "test", "forever", true); err != nil {
		t.Fatal(err)
	}
	rotateAndCheck(map[string]time.Time{
		token.RS256: clk.Now().Add(24*time.Hour + leeway),
		token.HS256: clk.Now().Add(time.Hour + leeway),
		token.ES256: clk.Now().Add(24*time.Hour + leeway), // password grant: the user token lifetime
	})
}

// TestRetireKeyRefusedEverywhere: keys retire withdraws a key at once;
// both servers on the store refuse its tokens within a second with a
// message that says to get a new token, new tokens are signed by the next
// key, and other algorithms are untouched.
func TestRetireKeyRefusedEverywhere(t *testing.T) {
	e := apptest.New(t)
	cfg := e.Cfg
	cfg.PublicURL = ""
	other := apptest.Start(t, cfg) // a second server on the same store
	e.AddUser("api_user", "pw-one-two", true, "")
	_, key := e.AddConsumer(admin.NewConsumer{Name: "svc", Scope: "/api"})
	ctx := context.Background()
	user := e.Token(`{"username":"api_user","password":"pw-one-two"}`)
	consumer := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`)
	resp, b := e.Post("/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials",
		"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("svc:"+key)))
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(b, &tr); resp.StatusCode != 200 {
		t.Fatalf("oauth token: %d %s", resp.StatusCode, b)
	}
	kid := header(t, user)["kid"].(string)

	// As from another shell: an admin service of its own on the store.
	mk, err := app.LoadMasterKey(e.Cfg, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	adm := admin.New(e.App.Store, nil, nil, auth.NewKeyManager(e.App.Store, mk, &token.Ring{}, nil, nil), e.App.Service.Config(), nil)
	r, err := adm.RetireKey(ctx, "test", kid)
	if err != nil {
		t.Fatal(err)
	}
	if r.Key.State != gatehouse.KeyActive || r.Active == "" || r.Active == kid || r.Next == "" || r.UserSessions != 1 || len(r.Consumers) != 0 {
		t.Fatalf("RetireKey: %+v", r)
	}
	for name, srv := range map[string]*apptest.Env{"this server": e, "the other server": other} {
		testtime.Eventually(t, time.Second, func() error {
			_, err := srv.App.Verifier.Verify(ctx, user)
			var ge *gatehouse.Error
			if errors.As(err, &ge) && ge.Status == 401 && ge.Description == verify.DescKeyRevoked {
				return nil
			}
			return fmt.Errorf("%s answers %v for a token of the retired key", name, err)
		})
		for _, tok := range []string{consumer, tr.AccessToken} {
			if _, err := srv.App.Verifier.Verify(ctx, tok); err != nil {
				t.Fatalf("%s: a token of another algorithm: %v", name, err)
			}
		}
		if set := srv.App.Keys.Ring().Load().JWKS(); len(set.Key(kid)) != 0 {
			t.Fatalf("%s still publishes the retired key", name)
		}
		fresh := srv.Token(`{"username":"api_user","password":"pw-one-two"}`)
		if got := header(t, fresh)["kid"]; got != r.Active {
			t.Fatalf("%s signs new user tokens with %v, want %s", name, got, r.Active)
		}
	}
	// The HTTP answer says what to do.
	resp, b = e.Do(func() *http.Request {
		req := mustRequest(t, http.MethodGet, e.URL+"/api/ui/router/v1")
		req.Header.Set("Authorization", "Bearer "+user)
		return req
	}())
	if resp.StatusCode != 401 || !strings.Contains(string(b), "withdrawn; request a new token") ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), "withdrawn") {
		t.Fatalf("request with a token of the retired key: %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), b)
	}

	// The consumer algorithm's key names the consumer; again is a no-op.
	hs := header(t, consumer)["kid"].(string)
	r, err = adm.RetireKey(ctx, "test", hs)
	if err != nil || len(r.Consumers) != 1 || r.Consumers[0].Name != "svc" {
		t.Fatalf("RetireKey of the HS256 key: %+v, %v", r, err)
	}
	if r, err = adm.RetireKey(ctx, "test", hs); err != nil || !r.Already {
		t.Fatalf("RetireKey again: %+v, %v", r, err)
	}
	var ie *admin.InputError
	if _, err := adm.RetireKey(ctx, "test", "no-such-kid"); !errors.As(err, &ie) {
		t.Fatalf("RetireKey of an unknown kid: %v", err)
	}
}
