package compat

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/internal/testenv"
)

// TestAPXOAuthlibClient runs an APX client written with requests-oauthlib.
func TestAPXOAuthlibClient(t *testing.T) {
	py := testenv.Python(t, "python3-httpx python3-requests-oauthlib", "httpx", "requests_oauthlib")
	e := apptest.New(t)
	e.AddUser("apx_user", "Apx-Pa55word!", true, "")
	_, key := e.AddConsumer(admin.NewConsumer{Name: "apx_client", Scope: "access", Lifetime: time.Hour,
		Grants: []string{gatehouse.GrantPassword}})
	// Consumer keys are UUIDs; this one is stored directly to hold the
	// characters that HTTP Basic escaping changes.
	const special = "p:w%41+x=y/z@$!"
	now := time.Now()
	if _, err := e.App.Store.CreateConsumer(context.Background(), gatehouse.Consumer{Name: "special", Type: gatehouse.ConsumerService,
		Scope: "access", Lifetime: time.Hour, Grants: []string{gatehouse.GrantPassword},
		KeyHash: auth.NewConsumerKeys(e.App.MasterKey).Hash(special), CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "apx_oauthlib.py")
	cmd.Env = append(os.Environ(),
		"GATEHOUSE_URL="+e.URL, "APX_CLIENT_ID=apx_client", "APX_CLIENT_SECRET="+key,
		"APX_USERNAME=apx_user", "APX_PASSWORD=Apx-Pa55word!",
		"SPECIAL_CLIENT_ID=special", "SPECIAL_CLIENT_SECRET="+special, "OAUTHLIB_INSECURE_TRANSPORT=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("requests-oauthlib client: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
