package issue_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/issue"
	"github.com/gatehouse/gatehouse/masterkey"
	"github.com/gatehouse/gatehouse/store"
)

var tagRE = regexp.MustCompile(`^unknown:h=[0-9a-f]{16}:len=[0-9]+$`)

func TestNameTags(t *testing.T) {
	mk1, err := masterkey.Parse(apptest.TestMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	mk2, err := masterkey.Parse(base64.StdEncoding.EncodeToString([]byte("another master key, 32 bytes....")))
	if err != nil {
		t.Fatal(err)
	}
	a, b := issue.NewNameTags(mk1), issue.NewNameTags(mk1)
	tag := a.Tag("Tr0ub4dor&3")
	if !tagRE.MatchString(tag) || !strings.HasSuffix(tag, ":len=11") {
		t.Fatalf("tag %q", tag)
	}
	if b.Tag("Tr0ub4dor&3") != tag || a.Tag("TR0UB4DOR&3") != tag {
		t.Error("one name (in any case) under one master key gave different tags")
	}
	if a.Tag("Tr0ub4dor&4") == tag {
		t.Error("two names gave one tag")
	}
	if issue.NewNameTags(mk2).Tag("Tr0ub4dor&3") == tag {
		t.Error("the tag does not depend on the master key")
	}
	if got := a.Tag("jürgen"); !strings.HasSuffix(got, ":len=6") {
		t.Errorf("length counts characters: %q", got)
	}
}

// TestUnknownUsernameNotStored: a password typed into the username field
// of a sign-in is stored nowhere — not in the audit trail, not in the
// lockout counts, not in any file of the data dir — while repeated
// attempts with it still correlate, and still lock the name out.
func TestUnknownUsernameNotStored(t *testing.T) {
	e := apptest.New(t, func(c *app.Config) { c.Auth.LockoutThreshold = 3 })
	e.AddUser("api_user", "your_password", true, "")
	const typed = "Correct-Horse-Battery-Staple-77"
	body := func(u string) string {
		b, _ := json.Marshal(map[string]string{"username": u, "password": "x"})
		return string(b)
	}
	for _, u := range []string{typed, typed, strings.ToUpper(typed)} {
		if resp, _ := e.Post("/api/security/token/v2", "application/json", body(u)); resp.StatusCode != 401 {
			t.Fatalf("unknown user: %d", resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/api/security/token", nil)
	req.Header["username"] = []string{typed}
	req.Header["password"] = []string{"x"}
	if resp, _ := e.Do(req); resp.StatusCode != 401 {
		t.Fatalf("V1 unknown user: %d", resp.StatusCode)
	}
	// A name no user can have (a control character) is tagged too.
	if resp, _ := e.Post("/api/security/token/v2", "application/json", body(typed+"\u0001")); resp.StatusCode != 401 {
		t.Fatalf("impossible user name: %d", resp.StatusCode)
	}
	e.Post("/api/security/token/v2", "application/json", body("someone-else"))
	ctx := context.Background()
	if err := e.App.Service.FlushRefusals(ctx); err != nil {
		t.Fatal(err)
	}

	evs, err := e.App.Store.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]int{}
	var lockoutTarget, impossible string
	for _, ev := range evs {
		line, _ := json.Marshal(ev)
		if strings.Contains(strings.ToLower(string(line)), strings.ToLower(typed)) {
			t.Errorf("the typed name appears in audit event %s", line)
		}
		switch {
		case ev.Action == "lockout.start":
			lockoutTarget = ev.Target
		case ev.Action == "token.refuse" && strings.HasSuffix(ev.Detail, "unknown_user"):
			tags[strings.TrimPrefix(ev.Target, "user:")] += ev.Count
		case ev.Action == "token.refuse" && strings.HasSuffix(ev.Detail, "impossible_username"):
			impossible = strings.TrimPrefix(ev.Target, "user:")
		}
	}
	// The server's tags are keyed by its master key.
	mk, err := masterkey.Parse(e.Cfg.MasterKey)
	if err != nil {
		t.Fatal(err)
	}
	tag := issue.NewNameTags(mk).Tag(typed)
	if !tagRE.MatchString(tag) || !strings.HasSuffix(tag, ":len=31") {
		t.Fatalf("tag %q", tag)
	}
	if tags[tag] != 4 || len(tags) != 2 {
		t.Errorf("unknown-user refusals by tag: %v, want 4 under %s and one other", tags, tag)
	}
	if lockoutTarget != "user:"+tag {
		t.Errorf("lockout.start target %q, want user:%s", lockoutTarget, tag)
	}
	if !tagRE.MatchString(impossible) || !strings.HasSuffix(impossible, ":len=32") {
		t.Errorf("impossible user name recorded as %q", impossible)
	}
	if n, err := e.App.Store.CountAuthFailures(ctx, strings.ToLower(typed), e.App.Clock.Now(), 15*60e9); err != nil || n != 0 {
		t.Errorf("failures counted under the typed name: %d, %v", n, err)
	}

	// Nowhere in the data dir either (database, WAL, anything else).
	e.Close()
	err = filepath.WalkDir(e.Cfg.DataDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(bytes.ToLower(b), []byte(strings.ToLower(typed))) {
			t.Errorf("the typed name is stored in %s", filepath.Base(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.Log.String(), typed) {
		t.Error("the typed name appears in the log")
	}
}
