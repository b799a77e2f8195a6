package p21_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

func TestRefreshRotationAndReuse(t *testing.T) {
	f := newFixture(t)
	_, body := f.userV2()
	var first struct{ AccessToken, RefreshToken string }
	json.Unmarshal(body, &first)
	_, c := claims(t, first.AccessToken)
	sessionID := c["P21.SessionId"].(string)

	refresh := func(rt string) (*http.Response, []byte) {
		return f.Post("/api/security/token/v2", jsonCT, `{"GrantType":"refresh_token","RefreshToken":"`+rt+`"}`)
	}
	resp, body := refresh(first.RefreshToken)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d %s", resp.StatusCode, body)
	}
	checkAgainstSeed(t, body, "seed_user_v2.json", "AccessToken", "RefreshToken")
	var second struct{ AccessToken, RefreshToken string }
	json.Unmarshal(body, &second)
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	_, c2 := claims(t, second.AccessToken)
	if c2["P21.SessionId"] != sessionID {
		t.Fatalf("refresh changed the session: %v", c2["P21.SessionId"])
	}
	// Reuse of the spent token: refused, and the whole session ends.
	resp, body = refresh(first.RefreshToken)
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"invalid_grant"`) {
		t.Fatalf("reuse: %d %s", resp.StatusCode, body)
	}
	s, err := f.App.Store.GetSession(context.Background(), sessionID)
	if err != nil || s.EndedAt.IsZero() || s.EndReason != gatehouse.EndRefreshReuse {
		t.Fatalf("session after reuse: %+v %v", s, err)
	}
	resp, _ = refresh(second.RefreshToken)
	if resp.StatusCode != 400 {
		t.Fatalf("the current refresh token of an ended session still works: %d", resp.StatusCode)
	}
	// Form bodies refresh too.
	_, body = f.userV2()
	var third struct{ RefreshToken string }
	json.Unmarshal(body, &third)
	resp, body = f.Post("/api/security/token/v2", "application/x-www-form-urlencoded", "granttype=refresh_token&REFRESHTOKEN="+third.RefreshToken)
	if resp.StatusCode != 200 {
		t.Fatalf("form refresh: %d %s", resp.StatusCode, body)
	}
}

// TestSessionEndedElsewhere ends a session through a second handle on the
// same store file, as `gatehouse session end` from another shell does.
func TestSessionEndedElsewhere(t *testing.T) {
	f := newFixture(t)
	_, body := f.userV2()
	var r struct{ AccessToken, RefreshToken string }
	json.Unmarshal(body, &r)
	_, c := claims(t, r.AccessToken)

	other, err := sqlite.Open(context.Background(), filepath.Join(f.Cfg.DataDir, "gatehouse.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.EndSession(context.Background(), c["P21.SessionId"].(string), gatehouse.EndAdmin, time.Now()); err != nil {
		t.Fatal(err)
	}
	testtime.Eventually(t, time.Second, func() error {
		resp, _ := f.Post("/api/security/token/v2", jsonCT, `{"GrantType":"refresh_token","RefreshToken":"`+r.RefreshToken+`"}`)
		if resp.StatusCode != 400 {
			return fmt.Errorf("the refresh token of the ended session still gets %d", resp.StatusCode)
		}
		return nil
	})
}
