package compat

import (
	"os"
	"os/exec"
	"testing"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/internal/testenv"
)

// TestAuthlibMetadataAndIssuer: Authlib's strict RFC 8414 validation
// accepts the metadata, and an OAuth2 access token verifies with the
// metadata's JWKS and carries its issuer.
func TestAuthlibMetadataAndIssuer(t *testing.T) {
	py := testenv.Python(t, "python3-authlib python3-requests", "authlib.oauth2.rfc8414", "authlib.jose", "requests")
	const public = "https://auth.example.test"
	e := apptest.New(t, func(c *app.Config) { c.PublicURL = public })
	_, key := e.AddConsumer(admin.NewConsumer{Name: "rs", Scope: "access"})
	cmd := exec.Command(py, "authlib_metadata.py")
	cmd.Env = append(os.Environ(), "GATEHOUSE_URL="+e.URL, "PUBLIC_URL="+public, "CLIENT_ID=rs", "CLIENT_SECRET="+key)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("Authlib validation: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
