package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// plainValueError says why v is not a value of flag f, in plain words: no
// Go type names, no strconv text.
func plainValueError(f *pflag.Flag, v string, err error) string {
	v = strconv.Quote(clipValue(v))
	switch f.Value.Type() {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return v + " is not a whole number"
	case "float32", "float64":
		return v + " is not a number"
	case "bool":
		return v + " is not true or false"
	case "duration":
		if _, ok := f.Value.(*ageValue); ok {
			return v + " is not an age such as 90d, 36h or 0 (" + strings.TrimPrefix(err.Error(), "invalid argument ") + ")"
		}
		return v + " is not a duration such as 90s, 15m or 24h"
	}
	msg := err.Error()
	if strings.Contains(msg, "strconv.") || strings.Contains(msg, "invalid syntax") {
		return v + " is not a value this setting takes"
	}
	return msg
}

func clipValue(v string) string {
	if len(v) > 60 {
		return v[:60] + "…"
	}
	return v
}

// typedValue is a flag's value as YAML should show it: numbers and
// booleans as such, so that --print-config reads back as --config.
func typedValue(f *pflag.Flag, v string) any {
	switch f.Value.Type() {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	case "float32", "float64":
		if x, err := strconv.ParseFloat(v, 64); err == nil {
			return x
		}
	case "bool":
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
	}
	return v
}

// environ lists the process environment (a variable, for tests).
var environ = os.Environ

// knownEnv are the GATEHOUSE_* variables that are not a flag's.
var knownEnv = map[string]bool{"GATEHOUSE_CONFIG": true, "GATEHOUSE_MASTER_KEY": true, "GATEHOUSE_TEST_PG": true}

// unknownEnv lists the GATEHOUSE_* variables set in the environment that no
// setting of any command reads: a misspelling is otherwise silently ignored.
func unknownEnv(root *cobra.Command, env []string) []string {
	names := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) { names[envName(f.Name)] = true })
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GATEHOUSE_") && !names[k] && !knownEnv[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// warnUnknownEnv warns about each unknown GATEHOUSE_* variable, naming the
// setting it may have meant.
func warnUnknownEnv(root *cobra.Command, e *env) {
	for _, k := range unknownEnv(root, environ()) {
		hint := ""
		if m := closestEnv(root, k); m != "" {
			hint = " (did you mean " + m + "?)"
		}
		fmt.Fprintf(e.stderr, "gatehouse: warning: %s is set but no setting reads it%s\n", k, hint)
	}
}

// closestEnv is the setting variable nearest to k, if one is near.
func closestEnv(root *cobra.Command, k string) string {
	best, bestD := "", 3
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if d := editDistance(k, envName(f.Name)); d < bestD {
					best, bestD = envName(f.Name), d
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
