package verify

import (
	"context"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// Directory answers "who is this user, what may their role do, what kind
// of object is this" from memory, for authorization decisions. Entries load
// on first use and the change feed drops them when they change.
type Directory struct {
	users   *lazyCache[gatehouse.User]
	roles   *lazyCache[gatehouse.Role]
	catalog *lazyCache[gatehouse.CatalogEntry]
}

// NewDirectory builds a directory over st; subscribe its Listener to the feed.
func NewDirectory(st store.Store) *Directory {
	return &Directory{
		users:   newLazyCache(100_000, st.GetUser),
		roles:   newLazyCache(10_000, st.GetRole),
		catalog: newLazyCache(100_000, st.LookupCatalog),
	}
}

// User returns the user named name (case-insensitively), nil when there is none.
func (d *Directory) User(ctx context.Context, name string) (*gatehouse.User, error) {
	u, ok, err := d.users.get(ctx, strings.ToLower(name))
	if err != nil || !ok {
		return nil, err
	}
	return &u, nil
}

// Role returns the role named name, nil when there is none.
func (d *Directory) Role(ctx context.Context, name string) (*gatehouse.Role, error) {
	if name == "" {
		return nil, nil
	}
	r, ok, err := d.roles.get(ctx, strings.ToLower(name))
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

// Kind returns the catalog's kind of an object, "" when the catalog does not know it.
func (d *Directory) Kind(ctx context.Context, object string) (gatehouse.ObjectKind, error) {
	e, ok, err := d.catalog.get(ctx, strings.ToLower(object))
	if err != nil || !ok {
		return "", err
	}
	return e.Kind, nil
}

// Listener keeps the directory current.
func (d *Directory) Listener() store.Listener { return directoryListener{d} }

type directoryListener struct{ d *Directory }

func (l directoryListener) Changes(changes []gatehouse.Change) {
	for _, ch := range changes {
		switch ch.Kind {
		case gatehouse.ChangeUser:
			l.d.users.invalidate(strings.ToLower(ch.Key))
		case gatehouse.ChangeRole:
			l.d.roles.invalidate(strings.ToLower(ch.Key))
		case gatehouse.ChangeCatalog:
			l.d.catalog.reset()
		}
	}
}

func (l directoryListener) Reset() {
	l.d.users.reset()
	l.d.roles.reset()
	l.d.catalog.reset()
}
