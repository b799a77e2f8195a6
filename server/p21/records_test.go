package p21_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/app"
)

func TestTokensIssuedAreAudited(t *testing.T) {
	f := newFixture(t)
	f.userV2()
	f.consumerV2("api_user")
	f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"nope"}`)
	evs, err := f.App.Store.ListAudit(context.Background(), storeFilter("token."))
	if err != nil {
		t.Fatal(err)
	}
	var issued, refused int
	for _, ev := range evs {
		switch ev.Action {
		case "token.issue":
			issued++
			if ev.Remote == "" || !strings.HasPrefix(ev.Target, "session:") {
				t.Errorf("issue event lacks remote or session: %+v", ev)
			}
		case "token.refuse":
			refused++
		}
	}
	if issued != 2 || refused != 1 {
		t.Fatalf("audit: %d issued, %d refused", issued, refused)
	}
}

// TestTokenMetricFlows: every outcome of one endpoint shares its flow
// label scheme, p21.<version>.<flow>.
func TestTokenMetricFlows(t *testing.T) {
	f := newFixture(t, func(c *app.Config) {
		c.RateLimit, c.RateBurst, c.RateExempt = 1, 3, nil
	})
	f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"wrong"}`) // refused
	f.Post("/api/security/token/v2", jsonCT, `{"username":`)                               // invalid
	for range 4 {
		f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"wrong"}`) // limited at last
	}
	req, _ := http.NewRequest(http.MethodGet, f.URL+"/metrics", nil)
	resp, body := f.Do(req)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`gatehouse_tokens_total{flow="p21.v2.user",outcome="refused"}`,
		`gatehouse_tokens_total{flow="p21.v2.unknown",outcome="invalid"} 1`,
		`gatehouse_tokens_total{flow="p21.v2.unknown",outcome="limited"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "gatehouse_tokens_total{") && !strings.Contains(line, `flow="p21.v2.`) {
			t.Errorf("flow label outside the p21.v2 scheme: %s", line)
		}
	}
}
