package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/internal/sqlrow"
)

// FindRefreshToken returns the session a refresh token belongs to and
// whether the token has been spent, changing nothing.
func (s *Store) FindRefreshToken(ctx context.Context, hash []byte) (gatehouse.Session, bool, error) {
	if len(hash) == 0 {
		return gatehouse.Session{}, false, fmt.Errorf("refresh token: %w", gatehouse.ErrNotFound)
	}
	var spent bool
	x, err := scanSession(spentScanner{s.queryRow(ctx, "SELECT s."+strings.ReplaceAll(sessionCols, ", ", ", s.")+
		", t.spent FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.hash = ?", hash), &spent})
	if err != nil {
		return gatehouse.Session{}, false, s.readErr("refresh token", err)
	}
	return x, spent, nil
}

// spentScanner reads the spent column after the session columns.
type spentScanner struct {
	r     sqlrow.Scanner
	spent *bool
}

func (s spentScanner) Scan(dest ...any) error { return s.r.Scan(append(dest, s.spent)...) }
