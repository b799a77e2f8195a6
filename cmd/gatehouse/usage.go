package main

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/spf13/cobra"
)

// usageError is a mistake in the command line itself (a missing or extra
// argument, an unknown or malformed flag): it exits 2 with the command's
// usage line, as docs/admin.md promises for input mistakes.
type usageError struct {
	msg string
	cmd *cobra.Command
}

func (e *usageError) Error() string { return e.msg }

// markUsage makes every argument and flag error of the tree a usageError.
func markUsage(root *cobra.Command) {
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{msg: plainFlagError(c, err), cmd: c}
	})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if orig := c.Args; orig != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				err := orig(cmd, args)
				if err == nil {
					return nil
				}
				var ie *admin.InputError
				if errors.As(err, &ie) {
					return &usageError{msg: ie.Msg, cmd: cmd}
				}
				return &usageError{msg: plainArgsError(err), cmd: cmd}
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

var invalidFlagRE = regexp.MustCompile(`^invalid argument "(.*)" for "(?:-\w, )?--([\w-]+)" flag: `)

// plainFlagError rewrites pflag's messages without Go's parse errors.
func plainFlagError(c *cobra.Command, err error) string {
	msg := err.Error()
	if m := invalidFlagRE.FindStringSubmatch(msg); m != nil {
		if f := c.Flags().Lookup(m[2]); f != nil {
			return "--" + m[2] + ": " + plainValueError(f, m[1], err)
		}
	}
	return msg
}

var argsRE = regexp.MustCompile(`^accepts (\d+) arg\(s\), received (\d+)$`)

func plainArgsError(err error) string {
	msg := err.Error()
	if m := argsRE.FindStringSubmatch(msg); m != nil {
		if m[1] == "0" {
			return "this command takes no arguments (got " + m[2] + ")"
		}
		return "this command takes " + m[1] + " argument(s), got " + m[2]
	}
	return msg
}

// reportUsage writes a command-line mistake with the usage line, and tells
// whether err was one (exit 2).
func reportUsage(w io.Writer, root, cmd *cobra.Command, err error) bool {
	var ue *usageError
	msg := err.Error()
	switch {
	case errors.As(err, &ue):
		cmd = ue.cmd
	case strings.HasPrefix(msg, "unknown command"), strings.HasPrefix(msg, "required flag"),
		strings.HasPrefix(msg, "if any flags in the group"), strings.HasPrefix(msg, "unknown flag"):
	default:
		return false
	}
	if cmd == nil {
		cmd = root
	}
	fmt.Fprintln(w, "gatehouse:", msg)
	fmt.Fprintln(w, "Usage:", cmd.UseLine())
	fmt.Fprintf(w, "Run '%s --help' for more.\n", cmd.CommandPath())
	return true
}
