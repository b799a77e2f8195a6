package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/auth/verify"
	"github.com/gatehouse/gatehouse/internal/testtime"
)

// TestKeysRetire: `gatehouse keys retire KID` from another shell withdraws
// the key; the running server refuses its tokens within a second, and the
// output names the consumers whose clients need new tokens and says what
// they will see.
func TestKeysRetire(t *testing.T) {
	e := apptest.New(t)
	_, key := e.AddConsumer(admin.NewConsumer{Name: "forever-app", Scope: "/api"})
	tok := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`)
	h, _ := decodeJWT(t, tok)
	kid := h["kid"].(string)
	env := map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey}

	out := mustCLI(t, "", env, "--data", e.Cfg.DataDir, "keys", "retire", kid)
	for _, want := range []string{"key " + kid + " (HS256, was active) retired at once", verify.DescKeyRevoked,
		"consumer forever-app (uid 1)", "never expire", "request new ones"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys retire output lacks %q:\n%s", want, out)
		}
	}
	testtime.Eventually(t, time.Second, func() error {
		_, err := e.App.Verifier.Verify(context.Background(), tok)
		var ge *gatehouse.Error
		if errors.As(err, &ge) && ge.Description == verify.DescKeyRevoked {
			return nil
		}
		return fmt.Errorf("the server answers %v for a token of the retired key", err)
	})
	list := mustCLI(t, "", env, "--data", e.Cfg.DataDir, "keys", "list")
	if !strings.Contains(list, kid) || !strings.Contains(list, "revoked") {
		t.Errorf("keys list after retire:\n%s", list)
	}
	out = mustCLI(t, "", env, "--data", e.Cfg.DataDir, "keys", "retire", kid)
	if !strings.Contains(out, "already retired at once") {
		t.Errorf("second retire: %s", out)
	}
	code, _, errs := cli(t, "", env, "--data", e.Cfg.DataDir, "keys", "retire", "no-such-kid")
	if code != 2 || !strings.Contains(errs, `no signing key "no-such-kid"`) {
		t.Errorf("retire of an unknown kid: exit %d %q", code, errs)
	}
	audit := mustCLI(t, "", env, "--data", e.Cfg.DataDir, "audit", "--action", "keys.retire")
	if !strings.Contains(audit, "key:"+kid) {
		t.Errorf("audit lacks the retirement:\n%s", audit)
	}
}
