// Package compat runs real client code — the Python examples of the P21
// authentication guide — against an in-process gatehouse, to show that a
// client written for the real middleware works unchanged.
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

func runSeedClient(t *testing.T, format string) {
	py := testenv.Python(t, "python3-httpx", "httpx")
	e := apptest.New(t, func(c *app.Config) { c.TokenFormat = format })
	e.AddUser("api_user", "your_password", true, "")
	c, key := e.AddConsumer(admin.NewConsumer{Name: "MY_SERVICE_APP", Scope: "/api", SDK: true})
	cmd := exec.Command(py, "p21_seed_client.py")
	cmd.Env = append(os.Environ(),
		"GATEHOUSE_URL="+e.URL, "P21_USERNAME=api_user", "P21_PASSWORD=your_password",
		"P21_CONSUMER_KEY="+key, "P21_CONSUMER_UID="+c.UIDString())
	if format == "xml" {
		cmd.Env = append(cmd.Env, "EXPECT_XML=1")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("seed client: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func TestSeedPythonClientJSON(t *testing.T) { runSeedClient(t, "negotiate") }

func TestSeedPythonClientXML(t *testing.T) { runSeedClient(t, "xml") }
