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

// pythonAuthlib finds an interpreter with Authlib and requests. In CI a
// missing one is a failure: .ci/run installs it.
func pythonAuthlib(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import authlib.oauth2.rfc8414, authlib.jose, requests").Run() == nil {
			return path
		}
	}
	testenv.Skip(t, "python3 with Authlib", "apt-get install python3-authlib to run it")
	return ""
}

// TestAuthlibMetadataAndIssuer: Authlib's strict RFC 8414 validation
// accepts the metadata, and an OAuth2 access token verifies with the
// metadata's JWKS and carries its issuer.
func TestAuthlibMetadataAndIssuer(t *testing.T) {
	py := pythonAuthlib(t)
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
