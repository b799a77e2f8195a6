package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// Configuration is read in one place, here, with one rule for every
// setting: a command-line flag wins; else the environment variable
// GATEHOUSE_<FLAG_NAME> (upper case, - as _); else the key <flag-name> of
// the YAML file named by --config (or GATEHOUSE_CONFIG); else the default.

// envName is the environment variable that sets a flag.
func envName(flag string) string {
	return "GATEHOUSE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// notConfigurable are flags that only make sense on the command line.
var notConfigurable = map[string]bool{"config": true, "help": true, "print-config": true, "json": true}

// applyConfig fills every flag of cmd that was not given on the command line
// from the environment or the YAML file. getenv is os.Getenv outside tests.
func applyConfig(cmd *cobra.Command, getenv func(string) string) error {
	fs := cmd.Flags()
	file := ""
	if f := fs.Lookup("config"); f != nil {
		file = f.Value.String()
	}
	if file == "" {
		file = getenv("GATEHOUSE_CONFIG")
	}
	var fromFile map[string]any
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if err := yaml.Unmarshal(b, &fromFile); err != nil {
			return &admin.InputError{Msg: fmt.Sprintf("config file %s: %s", file, plainYAMLError(err))}
		}
		for k := range fromFile {
			if f := lookupAny(cmd, k); f == nil && !knownSection[k] {
				return &admin.InputError{Msg: fmt.Sprintf("config file %s: unknown setting %q (settings are named like the flags of `gatehouse serve --help`)", file, k)}
			}
		}
	}
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || notConfigurable[f.Name] {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if e := setFlag(f, v); e != nil {
				err = &admin.InputError{Msg: fmt.Sprintf("%s: %s", envName(f.Name), plainValueError(f, v, e))}
			}
			return
		}
		if v, ok := fromFile[f.Name]; ok {
			if e := setFromYAML(f, v); e != nil {
				err = &admin.InputError{Msg: fmt.Sprintf("config file %s: %s: %s", file, f.Name, plainValueError(f, fmt.Sprint(v), e))}
			}
		}
	})
	return err
}

// knownSection lists YAML keys that are structured settings rather than flags.
var knownSection = map[string]bool{"gateway": true, "families": true}

// sections are the structured settings of the YAML file.
type sections struct {
	Gateway struct {
		Upstreams map[string]string `yaml:"upstreams"`
	} `yaml:"gateway"`
	Families []policy.Family `yaml:"families"`
}

// configFile names the YAML file in effect: --config, else GATEHOUSE_CONFIG.
func configFile(cmd *cobra.Command, getenv func(string) string) string {
	if f := cmd.Flags().Lookup("config"); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	return getenv("GATEHOUSE_CONFIG")
}

// loadSections reads the gateway and families sections of the YAML file.
func loadSections(file string) (sections, error) {
	var s sections
	if file == "" {
		return s, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return s, fmt.Errorf("config file: %w", err)
	}
	// The flag keys land in Rest; a key inside the sections that no field
	// takes (a misspelling) is refused, with its line.
	var raw struct {
		sections `yaml:",inline"`
		Rest     map[string]any `yaml:",inline"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return s, fmt.Errorf("config file %s: %v", file, err)
	}
	return raw.sections, nil
}

// mergeFamilies applies configured families to the defaults: a family with
// a default's name replaces it, others are added.
func mergeFamilies(defaults, configured []policy.Family) []policy.Family {
	out := append([]policy.Family(nil), defaults...)
	for _, f := range configured {
		replaced := false
		for i := range out {
			if strings.EqualFold(out[i].Name, strings.TrimSpace(f.Name)) {
				out[i], replaced = f, true
				break
			}
		}
		if !replaced {
			out = append(out, f)
		}
	}
	return out
}

// lookupAny finds a flag of the command or of any command, so that one YAML
// file can hold settings for serve and for admin commands.
func lookupAny(cmd *cobra.Command, name string) *pflag.Flag {
	if f := cmd.Flags().Lookup(name); f != nil {
		return f
	}
	var found *pflag.Flag
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if found != nil {
			return
		}
		if f := c.Flags().Lookup(name); f != nil {
			found = f
			return
		}
		if f := c.PersistentFlags().Lookup(name); f != nil {
			found = f
			return
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cmd.Root())
	return found
}

func setFlag(f *pflag.Flag, v string) error {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		parts := strings.Split(v, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return sv.Replace(parts)
	}
	return f.Value.Set(v)
}

func setFromYAML(f *pflag.Flag, v any) error {
	switch x := v.(type) {
	case []any:
		sv, ok := f.Value.(pflag.SliceValue)
		if !ok {
			return fmt.Errorf("takes one value, not a list")
		}
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return sv.Replace(parts)
	case map[string]any:
		return fmt.Errorf("takes a value, not a mapping")
	case nil:
		return nil
	}
	return setFlag(f, fmt.Sprint(v))
}

// printConfig writes the effective settings of cmd as YAML, secrets masked,
// in a form --config reads back: numbers and booleans as YAML numbers and
// booleans, lists as lists. extra holds settings that are not flags alone
// (the upstreams and families merged with the YAML sections); comment is
// written first, as YAML comments (the master key's state).
func printConfig(cmd *cobra.Command, extra map[string]any, comment string) error {
	out := map[string]any{}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if notConfigurable[f.Name] {
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			out[f.Name] = sv.GetSlice()
			return
		}
		v := f.Value.String()
		if f.Name == "db" {
			v = maskDSN(v)
		}
		out[f.Name] = typedValue(f, v)
	})
	for k, v := range extra {
		out[k] = v
	}
	if ups, ok := out["upstream"].([]string); ok {
		masked := make([]string, len(ups))
		for i, s := range ups {
			fam, raw, _ := strings.Cut(s, "=")
			if u, err := url.Parse(strings.TrimSpace(raw)); err == nil {
				raw = maskURL(u, false)
			} else {
				raw = "(not shown: not a URL)"
			}
			masked[i] = fam + "=" + raw
		}
		out["upstream"] = masked
	}
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	for _, line := range strings.Split(strings.TrimSpace(comment), "\n") {
		if line != "" {
			buf.WriteString("# " + line + "\n")
		}
	}
	for _, k := range keys {
		b, err := yaml.Marshal(map[string]any{k: out[k]})
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	_, err := cmd.OutOrStdout().Write(buf.Bytes())
	return err
}

// maskDSN shows a PostgreSQL connection string with its passwords (the
// password and sslpassword parameters, a URL's user info) replaced by
// xxxxx. It understands both forms pgx takes: a postgres:// URL and
// keyword=value pairs; what it cannot parse is not shown at all.
func maskDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	lower := strings.ToLower(dsn)
	if strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "(set; not shown)"
		}
		return maskURL(u, true)
	}
	if masked, ok := maskKeywords(dsn); ok {
		return masked
	}
	return "(set; not shown)"
}

// maskURL shows u with its user info password, and with query a query
// parameter naming a password, replaced by xxxxx.
func maskURL(u *url.URL, query bool) string {
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	if query && u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return "(set; not shown)"
		}
		masked := false
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") {
				q[k] = []string{"xxxxx"}
				masked = true
			}
		}
		if masked {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// maskKeywords masks the password values of a keyword=value connection
// string (libpq syntax: spaces around =, values optionally in single
// quotes with backslash escapes). ok is false when s does not parse.
func maskKeywords(s string) (string, bool) {
	var b strings.Builder
	i := 0
	skipSpace := func() {
		for i < len(s) && isDSNSpace(s[i]) {
			i++
		}
	}
	for {
		skipSpace()
		if i == len(s) {
			return strings.TrimSpace(b.String()), true
		}
		start := i
		for i < len(s) && s[i] != '=' && !isDSNSpace(s[i]) {
			i++
		}
		key := s[start:i]
		skipSpace()
		if key == "" || i == len(s) || s[i] != '=' {
			return "", false
		}
		i++ // =
		skipSpace()
		vstart := i
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				if s[i] == '\\' {
					i += 2
					continue
				}
				if s[i] == '\'' {
					closed = true
					i++
					break
				}
				i++
			}
			if !closed || i > len(s) {
				return "", false
			}
		} else {
			for i < len(s) && !isDSNSpace(s[i]) {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			if i > len(s) {
				return "", false
			}
		}
		val := s[vstart:i]
		if strings.Contains(strings.ToLower(key), "password") {
			val = "xxxxx"
		}
		b.WriteString(key + "=" + val + " ")
	}
}

func isDSNSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
