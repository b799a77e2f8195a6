package guard_test

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// TestDependencies keeps guard light: a resource server that imports it for
// NewRemote or NewJWKS links the standard library, the JOSE/JWT libraries
// and gatehouse's own small packages (the decision, the scope grammar, the
// token format, the wire contract, the error writer) — never the stores,
// the services or the metrics. The store-backed decider is guard/local.
func TestDependencies(t *testing.T) {
	allowed := map[string]bool{
		"github.com/gatehouse/gatehouse":               true,
		"github.com/gatehouse/gatehouse/guard":         true,
		"github.com/gatehouse/gatehouse/policy":        true,
		"github.com/gatehouse/gatehouse/scope":         true,
		"github.com/gatehouse/gatehouse/token":         true,
		"github.com/gatehouse/gatehouse/masterkey":     true,
		"github.com/gatehouse/gatehouse/wire":          true,
		"github.com/gatehouse/gatehouse/server/render": true,
		"github.com/go-jose/go-jose/v4":                true,
		"github.com/go-jose/go-jose/v4/cipher":         true,
		"github.com/go-jose/go-jose/v4/json":           true,
		"github.com/golang-jwt/jwt/v5":                 true,
		"golang.org/x/sync/singleflight":               true,
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Skipf("skipped: go list is not available here: %v", err)
	}
	var extra []string
	for _, p := range strings.Fields(string(out)) {
		if !allowed[p] {
			extra = append(extra, p)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Fatalf("guard now depends on %d more packages: %s", len(extra), strings.Join(extra, ", "))
	}
}
