package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sandbox"
	"github.com/gatehouse/gatehouse/server/gateway"
)

// openSandbox opens the sandbox (--sandbox) in the data directory and
// returns the gateway handlers of the families it serves. A family that
// also has an --upstream is a configuration error.
func openSandbox(ctx context.Context, cfg Config, ups map[string]*url.URL, clock gatehouse.Clock, log *slog.Logger) (*sandbox.Sandbox, map[string]http.Handler, error) {
	if !cfg.Sandbox {
		if cfg.SandboxReset {
			return nil, nil, fmt.Errorf("--sandbox-reset restores the sandbox's sample data: it needs --sandbox")
		}
		return nil, nil, nil
	}
	handlers := map[string]http.Handler{}
	for _, f := range sandbox.Families {
		handlers[f] = nil
	}
	if both := gateway.Conflicts(ups, handlers); len(both) > 0 {
		return nil, nil, fmt.Errorf("--sandbox serves the API families %s; --upstream also names %s: give each family one upstream",
			strings.Join(sandbox.Families, ", "), strings.Join(both, ", "))
	}
	sb, err := sandbox.Open(ctx, sandbox.Options{Dir: cfg.DataDir, Reset: cfg.SandboxReset, BaseURL: cfg.PublicURL, Clock: clock, Log: log})
	if err != nil {
		return nil, nil, err
	}
	if cfg.SandboxReset {
		log.Info("sandbox sample data restored", "dir", cfg.DataDir)
	}
	return sb, sb.Handlers(), nil
}
