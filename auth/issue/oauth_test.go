package issue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/auth/issue"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/store"
)

func wantCode(t *testing.T, err error, status int, code string) {
	t.Helper()
	var ge *gatehouse.Error
	if !errors.As(err, &ge) || ge.Status != status || ge.Code != code {
		t.Fatalf("got %v, want %d %s", err, status, code)
	}
}

func TestOAuthClientAuthentication(t *testing.T) {
	e := apptest.New(t)
	o := issue.NewOAuth(e.App.Service, e.App.Verifier)
	ctx := context.Background()
	m := issue.Meta{Remote: "192.0.2.1", Via: "oauth.token"}
	c, key := e.AddConsumer(admin.NewConsumer{Name: "Client_A", Scope: "access", Grants: []string{gatehouse.GrantPassword}})
	_, other := e.AddConsumer(admin.NewConsumer{Name: "client_b", Scope: "/api"})

	for _, id := range []string{"Client_A", "client_a", "CLIENT_A", c.UIDString()} {
		cl, err := o.AuthenticateClient(ctx, issue.ClientAuth{ID: id, Secret: key}, m)
		if err != nil {
			t.Fatalf("client_id %q: %v", id, err)
		}
		if cl.Consumer().UID != c.UID || cl.Scope() != "access" {
			t.Fatalf("client %+v scope %q", cl.Consumer(), cl.Scope())
		}
	}
	// The second readings are tried once each.
	if _, err := o.AuthenticateClient(ctx, issue.ClientAuth{ID: "Client_A", Secret: "unescaped", AltSecret: key}, m); err != nil {
		t.Fatal(err)
	}
	if _, err := o.AuthenticateClient(ctx, issue.ClientAuth{ID: "Client A", AltID: "Client_A", Secret: key}, m); err != nil {
		t.Fatal(err)
	}
	for name, ca := range map[string]issue.ClientAuth{
		"no secret":       {ID: "Client_A"},
		"no id":           {Secret: key},
		"wrong secret":    {ID: "Client_A", Secret: key + "x", AltSecret: "y"},
		"other's key":     {ID: "Client_A", Secret: other},
		"other's id":      {ID: "client_b", Secret: key},
		"unknown id":      {ID: "nobody", Secret: key},
		"uid of other":    {ID: "2", Secret: key},
		"over-long":       {ID: "Client_A", Secret: string(make([]byte, 600))},
		"only alt id ok":  {ID: "x", AltID: "y", Secret: key},
		"both ids differ": {ID: "client_b", AltID: "client_b", Secret: key},
	} {
		_, err := o.AuthenticateClient(ctx, ca, m)
		wantCode(t, err, 401, gatehouse.CodeInvalidClient)
		if err.(*gatehouse.Error).Description != gatehouse.DescBadClient {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, _, err := e.App.Admin.SetConsumerDisabled(ctx, "test", "Client_A", true); err != nil {
		t.Fatal(err)
	}
	testtime.Eventually(t, time.Second, func() error {
		_, err := o.AuthenticateClient(ctx, issue.ClientAuth{ID: "Client_A", Secret: key}, m)
		if err == nil {
			return errors.New("a disabled client still authenticates")
		}
		wantCode(t, err, 401, gatehouse.CodeInvalidClient)
		return nil
	})
}

func TestOAuthGrants(t *testing.T) {
	e := apptest.New(t)
	o := issue.NewOAuth(e.App.Service, e.App.Verifier)
	ctx := context.Background()
	m := issue.Meta{Remote: "192.0.2.1", Via: "oauth.token"}
	e.AddUser("u1", "Pa55word-1", false, "")
	_, plainKey := e.AddConsumer(admin.NewConsumer{Name: "plain", Scope: "access"})
	rc, richKey := e.AddConsumer(admin.NewConsumer{Name: "rich", Scope: "access", Lifetime: 30 * time.Minute,
		Grants: []string{gatehouse.GrantPassword, gatehouse.GrantRefreshToken}})
	plain, err := o.AuthenticateClient(ctx, issue.ClientAuth{ID: "plain", Secret: plainKey}, m)
	if err != nil {
		t.Fatal(err)
	}
	rich, err := o.AuthenticateClient(ctx, issue.ClientAuth{ID: "rich", Secret: richKey}, m)
	if err != nil {
		t.Fatal(err)
	}

	_, err = o.PasswordGrant(ctx, plain, "u1", "Pa55word-1", m)
	wantCode(t, err, 400, gatehouse.CodeUnauthorizedClient)
	_, err = o.RefreshGrant(ctx, plain, "x", m)
	wantCode(t, err, 400, gatehouse.CodeUnauthorizedClient)
	_, err = o.PasswordGrant(ctx, rich, "u1", "wrong", m)
	wantCode(t, err, 401, gatehouse.CodeInvalidGrant)

	iss, err := o.PasswordGrant(ctx, rich, "u1", "Pa55word-1", m)
	if err != nil {
		t.Fatal(err)
	}
	// The client's shorter lifetime wins over the user-token TTL.
	if iss.RefreshToken == "" || iss.ExpiresIn != 1800 || iss.Session.Flow != gatehouse.FlowOAuthPassword ||
		iss.Session.ConsumerUID != rc.UID || iss.Session.Scope != "access" || iss.Session.Username != "u1" {
		t.Fatalf("issued %+v", iss)
	}
	cc, err := o.ClientCredentialsGrant(ctx, plain, m)
	if err != nil || cc.RefreshToken != "" || cc.Session.Flow != gatehouse.FlowOAuthClient || cc.Session.Username != "" ||
		cc.ExpiresIn != gatehouse.NeverExpiresIn {
		t.Fatalf("client credentials %+v, %v", cc, err)
	}

	// Introspection of both kinds.
	in, err := o.Introspect(ctx, plain, iss.AccessToken, "", m)
	if err != nil || !in.Active || in.TokenType != "Bearer" || in.SessionID != iss.Session.ID || in.Subject != "u1" ||
		in.ClientID != rc.UIDString() || in.Scope != "access" || in.JTI == "" {
		t.Fatalf("introspection %+v, %v", in, err)
	}
	if in, err := o.Introspect(ctx, rich, iss.RefreshToken, "refresh_token", m); err != nil || !in.Active || in.TokenType != "" {
		t.Fatalf("refresh introspection %+v, %v", in, err)
	}
	if in, err := o.Introspect(ctx, plain, iss.RefreshToken, "", m); err != nil || in.Active {
		t.Fatalf("another client introspected a refresh token: %+v, %v", in, err)
	}
	// Rotation spends the old token.
	next, err := o.RefreshGrant(ctx, rich, iss.RefreshToken, m)
	if err != nil || next.RefreshToken == "" || next.Session.ID != iss.Session.ID {
		t.Fatalf("refresh %+v, %v", next, err)
	}
	if in, err := o.Introspect(ctx, rich, iss.RefreshToken, "", m); err != nil || in.Active {
		t.Fatalf("a spent refresh token is active: %+v, %v", in, err)
	}
	// Revocation by another client changes nothing; by the owner it ends the session.
	var ge *gatehouse.Error
	if err := o.Revoke(ctx, plain, next.AccessToken, "", m); !errors.As(err, &ge) || ge.Code != gatehouse.CodeUnauthorizedClient || ge.Status != 400 {
		t.Fatalf("revocation of another client's token: %v", err)
	}
	if in, _ := o.Introspect(ctx, plain, next.AccessToken, "", m); !in.Active {
		t.Fatal("a foreign revocation took effect")
	}
	if err := o.Revoke(ctx, rich, next.RefreshToken, "", m); err != nil {
		t.Fatal(err)
	}
	if in, _ := o.Introspect(ctx, plain, next.AccessToken, "", m); in.Active {
		t.Fatal("revocation did not take effect at once")
	}
	// A token whose session has ended is nothing to revoke, whoever asks.
	for _, tok := range []string{next.AccessToken, next.RefreshToken} {
		if err := o.Revoke(ctx, plain, tok, "", m); err != nil {
			t.Fatalf("another client revoking an ended session's token: %v", err)
		}
	}
	s, err := e.App.Store.GetSession(ctx, iss.Session.ID)
	if err != nil || s.EndReason != gatehouse.EndRevoked {
		t.Fatalf("session %+v, %v", s, err)
	}
	evs, err := e.App.Store.ListAudit(ctx, store.AuditFilter{Action: "session.end"})
	if err != nil || len(evs) != 1 || evs[0].Actor != "consumer:"+rc.UIDString() || evs[0].Target != "session:"+iss.Session.ID {
		t.Fatalf("audit %+v, %v", evs, err)
	}
	// Garbage is a no-op, never an error.
	for _, tok := range []string{"", "x", "a.b.c", string(make([]byte, 10000))} {
		if err := o.Revoke(ctx, rich, tok, "", m); err != nil {
			t.Fatalf("revoke %.10q: %v", tok, err)
		}
		if in, err := o.Introspect(ctx, rich, tok, "", m); err != nil || in.Active {
			t.Fatalf("introspect %.10q: %+v, %v", tok, in, err)
		}
	}

	// A store that cannot be read: 503, never "inactive".
	fresh, err := o.PasswordGrant(ctx, rich, "u1", "Pa55word-1", m)
	if err != nil {
		t.Fatal(err)
	}
	e.App.Store.Close()
	_, err = o.Introspect(ctx, plain, fresh.AccessToken, "", m)
	wantCode(t, err, 503, gatehouse.CodeTemporarilyUnavail)
	_, err = o.Introspect(ctx, rich, fresh.RefreshToken, "", m)
	wantCode(t, err, 503, gatehouse.CodeTemporarilyUnavail)
	wantCode(t, o.Revoke(ctx, rich, fresh.RefreshToken, "", m), 503, gatehouse.CodeTemporarilyUnavail)
}
