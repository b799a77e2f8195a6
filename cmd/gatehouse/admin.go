package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/store"
	"golang.org/x/term"
)

// adminCtx is an open store with the administration service on it.
type adminCtx struct {
	store store.Store
	admin *admin.Admin
	actor string
}

// openAdmin opens the store of --data/--db for an admin command. needKey
// says whether the command needs the master key (consumer keys, signing keys).
func openAdmin(ctx context.Context, e *env, g *globals, cfg auth.Config, needKey bool) (*adminCtx, error) {
	base := g.baseConfig(e)
	base.Auth = cfg
	core, err := app.OpenCore(ctx, base, app.CoreOptions{Purpose: app.Administering, NeedKey: needKey})
	if err != nil {
		if errors.Is(err, gatehouse.ErrNoStore) || errors.Is(err, gatehouse.ErrSchemaOld) {
			return nil, storeOpenErr(storeName(g), err)
		}
		return nil, err
	}
	return &adminCtx{store: core.Store, admin: core.Admin, actor: cliActor(e)}, nil
}

func (a *adminCtx) Close() { a.store.Close() }

// storeName names the store of --data/--db for messages, its password masked.
func storeName(g *globals) string {
	if g.db != "" {
		return maskDSN(g.db)
	}
	return g.dataDir
}

// storeOpenErr explains why an administration command found no store it
// may use: none at all (it never creates one), or one that needs
// `gatehouse migrate` first (it never upgrades one). Both exit 2.
func storeOpenErr(name string, err error) error {
	switch {
	case errors.Is(err, gatehouse.ErrNoStore):
		return &openError{err: err, msg: "no gatehouse store at " + name +
			" (`gatehouse serve` creates one in an empty or missing data directory, `gatehouse migrate` anywhere)"}
	case errors.Is(err, gatehouse.ErrSchemaOld):
		return &openError{err: err, msg: "the store at " + name + " was written by an older gatehouse (" +
			err.Error() + "); run gatehouse migrate to upgrade it"}
	}
	return err
}

// openError is a store refusal told in the command's words; it still
// matches the store's error with errors.Is.
type openError struct {
	msg string
	err error
}

func (e *openError) Error() string { return e.msg }
func (e *openError) Unwrap() error { return e.err }

// cliActor names the operator in the audit trail.
func cliActor(e *env) string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	if u := e.getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}

// readSecret reads a secret from stdin (one line; prompting without echo on
// a terminal) or from the environment variable named envVar.
func readSecret(e *env, what string, fromStdin bool, envVar string) (string, error) {
	switch {
	case fromStdin && envVar != "":
		return "", &admin.InputError{Msg: "give the " + what + " on stdin or in an environment variable, not both"}
	case envVar != "":
		v := e.getenv(envVar)
		if v == "" {
			return "", &admin.InputError{Msg: "environment variable " + envVar + " is empty or not set"}
		}
		return v, nil
	case fromStdin:
		if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			fmt.Fprintf(e.stderr, "%s: ", what)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(e.stderr)
			if err != nil {
				return "", err
			}
			return string(b), nil
		}
		line, err := bufio.NewReader(io.LimitReader(e.stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read %s from stdin: %w", what, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", &admin.InputError{Msg: "the " + what + " read from stdin is empty"}
		}
		return line, nil
	}
	return "", nil
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns. Cells come from the store, where a
// consumer-flow username may hold any string: control characters (a
// terminal escape, a tab that would shift columns) and very long values are
// shown quoted and clipped, never written raw to the terminal.
func table(w io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	cells := make([]string, 0, 8)
	for _, r := range rows {
		cells = cells[:0]
		for _, c := range r {
			cells = append(cells, cell(c))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// maxCell bounds a table cell, in bytes.
const maxCell = 200

// cell is s as a table shows it: as is when it is printable and short,
// else Go-quoted (escapes visible) and clipped.
func cell(s string) string {
	clean := len(s) <= maxCell
	for _, r := range s {
		if !clean || !unicode.IsPrint(r) && r != ' ' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	if len(s) > maxCell {
		s = strings.ToValidUTF8(s[:maxCell], "") + "…"
	}
	return strconv.QuoteToGraphic(s)
}

func ts(t time.Time) string { return admin.Time(t) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// notFoundMsg turns a store's ErrNotFound into a message naming the thing.
func notFoundMsg(err error, what, name string) error {
	if errors.Is(err, gatehouse.ErrNotFound) {
		return &admin.InputError{Msg: fmt.Sprintf("%s %q does not exist", what, name)}
	}
	return err
}
