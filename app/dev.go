package app

import (
	"context"
	"fmt"
	"io"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/token"
)

// Demo is what --dev creates in an empty store.
type Demo struct {
	Username     string
	Password     string
	Consumer     gatehouse.Consumer
	ConsumerKey  string
	ConsumerName string
}

// SeedDemo creates a demo role, user and consumer when the store has no
// users yet. It returns nil when there was nothing to do.
func (a *App) SeedDemo(ctx context.Context) (*Demo, error) {
	n, err := a.Store.CountUsers(ctx)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, nil
	}
	const actor = "system:dev"
	if _, err := a.Admin.AddRole(ctx, actor, "demo"); err != nil {
		return nil, err
	}
	all := true
	if _, err := a.Admin.SetRoleFlags(ctx, actor, "demo", admin.RoleFlags{AllowAll: &all}); err != nil {
		return nil, err
	}
	d := &Demo{Username: "demo", Password: token.RandomToken(12), ConsumerName: "demo-service"}
	// The demo user is also the console's administrator.
	if _, err := a.Admin.AddUser(ctx, actor, admin.NewUser{Name: d.Username, Role: "demo", AllowOData: true, Admin: true,
		Identity: gatehouse.IdentitySQL, Password: d.Password}); err != nil {
		return nil, err
	}
	d.Consumer, d.ConsumerKey, err = a.Admin.AddConsumer(ctx, actor, admin.NewConsumer{
		Name: d.ConsumerName, Type: gatehouse.ConsumerService, SDK: true, Scope: "/api",
		Grants: []string{gatehouse.GrantPassword, gatehouse.GrantRefreshToken},
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Print writes the demo credentials and ready-to-paste requests. They are
// shown this once: only hashes are stored.
func (d *Demo) Print(w io.Writer, baseURL string) {
	fmt.Fprintf(w, `
gatehouse --dev created demo credentials (shown once; only hashes are stored):

  user      %s / %s   (role demo: Allow All; Allow OData API Service: yes; administrator)
  consumer  %s, uid %s, scope %s, never expires, key %s

Admin console (SOA Admin): %s/api/admin — sign in as %s with the password above.

Try:

  curl -s %s/api/security/token/v2 -H 'Content-Type: application/json' \
    -d '{"username":"%s","password":"%s"}'

  curl -s %s/api/security/token/v2 -H 'Content-Type: application/json' \
    -d '{"GrantType":"client_credentials","ClientSecret":"%s"}'

  curl -s %s/api/security/token/v2 -H 'Content-Type: application/json' -H 'Accept: application/xml' \
    -d '{"GrantType":"client_credentials","ClientSecret":"%s","username":"%s"}'

`, d.Username, d.Password, d.ConsumerName, d.Consumer.UIDString(), auth.EffectiveScope(&d.Consumer), d.ConsumerKey,
		baseURL, d.Username, baseURL, d.Username, d.Password, baseURL, d.ConsumerKey, baseURL, d.ConsumerKey, d.Username)
}
