package admin

import (
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
)

type consoleSessions struct{}

func newConsoleSessions(gatehouse.Clock, time.Duration, time.Duration) *consoleSessions {
	return &consoleSessions{}
}

type pages struct{}

func mustPages() *pages { return &pages{} }

func (h *Handler) serveConsole(w http.ResponseWriter, r *http.Request) {
	http.NotFound(w, r)
}
