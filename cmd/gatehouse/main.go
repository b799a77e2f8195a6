// Command gatehouse is a P21-compatible and OAuth2 token server, with the
// administration commands that manage its store.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// env is what commands read from the process: streams and environment.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// log follows --log-level and --log-format (set before any command runs).
	log *slog.Logger
}

// clientLogger is the logger of the client commands.
func (e *env) clientLogger() *slog.Logger {
	if e.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.log
}

// globals are the settings every command shares.
type globals struct {
	dataDir   string
	db        string
	config    string
	logLevel  string
	logFormat string
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	markUsage(root)
	if cmd, err := root.ExecuteContextC(ctx); err != nil {
		var xe *exitError
		if errors.As(err, &xe) {
			return xe.code // the command has said why
		}
		if reportUsage(stderr, root, cmd, err) {
			return 2
		}
		fmt.Fprintln(stderr, "gatehouse:", err)
		var ie *admin.InputError
		if errors.As(err, &ie) || errors.Is(err, gatehouse.ErrNoStore) || errors.Is(err, gatehouse.ErrSchemaOld) {
			return 2
		}
		return 1
	}
	return 0
}

func newRoot(e *env) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "gatehouse",
		Short: "A P21-compatible and OAuth2 token server, gateway and client",
		Long: `gatehouse issues Prophet 21 (P21) style and OAuth2 bearer tokens.

Run a local server with demo credentials:
  gatehouse serve --dev

Every setting can come from a flag, from the environment variable
GATEHOUSE_<FLAG_NAME> (e.g. GATEHOUSE_DATA for --data), or from the YAML file
named by --config (keys are the flag names); flags win, then the environment,
then the file. Secrets (passwords, consumer keys, the master key) are never
taken from the command line: they come from stdin or the environment.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, e.getenv); err != nil {
				return err
			}
			warnUnknownEnv(cmd.Root(), e)
			// The client commands (token, call, load) log through it.
			log, err := g.logger(e.stderr)
			if err != nil {
				return &admin.InputError{Msg: err.Error()}
			}
			e.log = log
			return nil
		},
	}
	root.Version = versionLine()
	root.SetVersionTemplate("gatehouse {{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&g.dataDir, "data", "./gatehouse-data", "data directory of the embedded store (SQLite)")
	pf.StringVar(&g.db, "db", "", "PostgreSQL connection URL, instead of --data")
	pf.StringVar(&g.config, "config", "", "YAML configuration file (keys are flag names)")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")

	root.AddCommand(
		newServeCmd(e, g),
		newUserCmd(e, g),
		newRoleCmd(e, g),
		withSub(newConsumerCmd(e, g), newConsumerUpdateCmd(e, g)),
		newSessionCmd(e, g),
		newKeysCmd(e, g),
		newCatalogCmd(e, g),
		newAuditCmd(e, g),
		newApplyCmd(e, g),
		newMigrateCmd(e, g),
		newStoreCmd(e, g),
		newVersionCmd(e), newHealthcheckCmd(e), newDocsCmd(),
		newTokenCmd(e, g), newCallCmd(e), newLoadCmd(e), newProbeCmd(e),
	)
	addCompletion(root, e, g)
	return root
}

// withSub adds subcommands to cmd.
func withSub(cmd *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	cmd.AddCommand(subs...)
	return cmd
}

// logger builds the process logger.
func (g *globals) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q is not debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(g.logFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		// Durations as numbers of milliseconds, named so: "duration_ms": 1.234.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				return slog.Float64(a.Key+"_ms", float64(a.Value.Duration())/float64(time.Millisecond))
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q is not text or json", g.logFormat)
}

// baseConfig is the part of the configuration admin commands need.
func (g *globals) baseConfig(e *env) app.Config {
	cfg := app.DefaultConfig()
	cfg.DataDir, cfg.DB = g.dataDir, g.db
	cfg.MasterKey = e.getenv("GATEHOUSE_MASTER_KEY")
	return cfg
}

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(e.stdout, "gatehouse", versionLine())
			return nil
		},
	}
}
