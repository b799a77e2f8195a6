package main

import (
	"fmt"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/spf13/cobra"
)

func newUserCmd(e *env, g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage P21 users"}
	var asJSON bool

	var in admin.NewUser
	var identity string
	var pwStdin, hashStdin, noPassword bool
	var pwEnv, hashEnv string
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Create a user (password from stdin or an environment variable)",
		Long: `Create a user. The password is read from stdin (--password-stdin) or from the
environment variable named by --password-env; never from the command line.
A user without a password (--no-password) cannot sign in, but can still be
named as the user context of consumer-key tokens; one of the password flags
or --no-password must be given.

To import a user from another system without knowing the password, give its
existing hash instead (--password-hash-stdin or --password-hash-env): bcrypt
($2a$, $2b$, $2y$) or argon2id in PHC form. A bcrypt hash is replaced by an
argon2id hash at the user's first successful sign-in.`,
		Example: `  echo 'S3cret!' | gatehouse user add api_user --allow-odata --role clerk --password-stdin
  echo '$2b$10$…' | gatehouse user add legacy_user --password-hash-stdin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (pwStdin || pwEnv != "") && (hashStdin || hashEnv != "") {
				return &admin.InputError{Msg: "give a password or a password hash, not both"}
			}
			given := pwStdin || pwEnv != "" || hashStdin || hashEnv != ""
			switch {
			case !given && !noPassword:
				return &admin.InputError{Msg: "give the password with --password-stdin or --password-env VAR (or a hash: --password-hash-stdin, --password-hash-env VAR), or --no-password for a user who cannot sign in"}
			case given && noPassword:
				return &admin.InputError{Msg: "--no-password and a password flag contradict each other"}
			}
			pw, err := readSecret(e, "password", pwStdin, pwEnv)
			if err != nil {
				return err
			}
			if in.PasswordHash, err = readSecret(e, "password hash", hashStdin, hashEnv); err != nil {
				return err
			}
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{}, false)
			if err != nil {
				return err
			}
			defer a.Close()
			in.Name, in.Identity, in.Password = args[0], gatehouse.IdentityType(identity), pw
			u, err := a.admin.AddUser(cmd.Context(), a.actor, in)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, admin.ViewUser(u))
			}
			fmt.Fprintf(e.stdout, "user %s created (identity %s, role %q, Allow OData API Service: %s, password: %s)\n",
				u.Name, u.Identity, u.Role, yesNo(u.AllowODataAPI), yesNo(u.PasswordHash != ""))
			return nil
		},
	}
	add.Flags().StringVar(&identity, "identity", "windows", "identity type: windows, aad or sql")
	add.Flags().StringVar(&in.Role, "role", "", "role whose dataservice permissions apply")
	add.Flags().BoolVar(&in.AllowOData, "allow-odata", false, `set "Allow OData API Service" (default no)`)
	add.Flags().BoolVar(&in.Admin, "admin", false, "make the user an administrator")
	add.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from stdin")
	add.Flags().StringVar(&pwEnv, "password-env", "", "read the password from this environment variable")
	add.Flags().BoolVar(&hashStdin, "password-hash-stdin", false, "read an existing bcrypt or argon2id hash from stdin, instead of a password")
	add.Flags().StringVar(&hashEnv, "password-hash-env", "", "read an existing bcrypt or argon2id hash from this environment variable")
	add.Flags().BoolVar(&asJSON, "json", false, "print the user as JSON")
	add.Flags().BoolVar(&noPassword, "no-password", false, "create the user without a password (it cannot sign in)")

	var updAllow, updAdmin bool
	var updRole, updIdentity string
	update := &cobra.Command{
		Use:     "update NAME",
		Short:   "Change a user's flags, role or identity",
		Example: `  gatehouse user update api_user --allow-odata --role clerk`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ch admin.UserChange
			fl := cmd.Flags()
			if fl.Changed("allow-odata") {
				ch.AllowOData = &updAllow
			}
			if fl.Changed("admin") {
				ch.Admin = &updAdmin
			}
			if fl.Changed("role") {
				ch.Role = &updRole
			}
			if fl.Changed("identity") {
				id := gatehouse.IdentityType(updIdentity)
				ch.Identity = &id
			}
			if ch == (admin.UserChange{}) {
				return &admin.InputError{Msg: "nothing to change: give --allow-odata, --role, --identity or --admin"}
			}
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{}, false)
			if err != nil {
				return err
			}
			defer a.Close()
			u, err := a.admin.UpdateUser(cmd.Context(), a.actor, args[0], ch)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, admin.ViewUser(u))
			}
			fmt.Fprintf(e.stdout, "user %s updated (identity %s, role %q, Allow OData API Service: %s, admin: %s)\n",
				u.Name, u.Identity, u.Role, yesNo(u.AllowODataAPI), yesNo(u.Admin))
			return nil
		},
	}
	update.Flags().BoolVar(&updAllow, "allow-odata", false, `set "Allow OData API Service" (--allow-odata=false clears it)`)
	update.Flags().BoolVar(&updAdmin, "admin", false, "administrator flag (--admin=false clears it)")
	update.Flags().StringVar(&updRole, "role", "", `role ("" for none)`)
	update.Flags().StringVar(&updIdentity, "identity", "", "identity type: windows, aad or sql")
	update.Flags().BoolVar(&asJSON, "json", false, "print the user as JSON")

	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{}, false)
			if err != nil {
				return err
			}
			defer a.Close()
			us, err := a.store.ListUsers(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]admin.UserView, len(us))
				for i, u := range us {
					out[i] = admin.ViewUser(u)
				}
				return printJSON(e.stdout, out)
			}
			rows := make([][]string, len(us))
			for i, u := range us {
				rows[i] = []string{u.Name, string(u.Identity), u.Role, yesNo(u.AllowODataAPI), yesNo(u.Admin), yesNo(u.Deleted), yesNo(u.PasswordHash != "")}
			}
			return table(e.stdout, "NAME\tIDENTITY\tROLE\tALLOW_ODATA\tADMIN\tDELETED\tPASSWORD", rows)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var showCfg auth.Config
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one user, with its lockout state",
		Long: `Show one user, with its lockout state: the failed sign-ins counted within
--lockout-window and whether they reach --lockout-threshold (read like the
server's settings: give the command the same ones).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openAdmin(cmd.Context(), e, g, showCfg, false)
			if err != nil {
				return err
			}
			defer a.Close()
			u, err := a.store.GetUser(cmd.Context(), args[0])
			if err != nil {
				return notFoundMsg(err, "user", args[0])
			}
			l, err := a.admin.LockoutState(cmd.Context(), u.Name)
			if err != nil {
				return err
			}
			j := admin.ViewUser(u)
			j.Lockout = &admin.LockoutView{Locked: l.Locked, Failures: l.Failures, Threshold: l.Threshold, Window: l.Window.String()}
			if asJSON {
				return printJSON(e.stdout, j)
			}
			lock := "no"
			if l.Locked {
				lock = "yes (gatehouse user unlock " + u.Name + " ends it)"
			}
			return table(e.stdout, "FIELD\tVALUE", [][]string{
				{"name", j.Name}, {"identity", j.Identity}, {"role", j.Role}, {"allow_odata_api", yesNo(j.AllowODataAPI)},
				{"admin", yesNo(j.Admin)}, {"deleted", yesNo(j.Deleted)}, {"password", yesNo(j.HasPassword)},
				{"locked_out", lock}, {"failed_sign_ins", fmt.Sprintf("%d in the last %s (%d lock)", l.Failures, l.Window, l.Threshold)},
				{"created_at", j.CreatedAt}, {"updated_at", j.UpdatedAt},
			})
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	{
		d := auth.Config{MaxSessions: 20, LockoutThreshold: 10}.Defaults()
		show.Flags().IntVar(&showCfg.LockoutThreshold, "lockout-threshold", d.LockoutThreshold, "failed sign-ins that lock, as the server has it")
		show.Flags().DurationVar(&showCfg.LockoutWindow, "lockout-window", d.LockoutWindow, "window of failed sign-ins, as the server has it")
	}

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user (soft: the name stays taken) and end the sessions acting as it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{}, false)
			if err != nil {
				return err
			}
			defer a.Close()
			ended, err := a.admin.DeleteUser(cmd.Context(), a.actor, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "user %s deleted; %d sessions ended\n", args[0], len(ended))
			return nil
		},
	}

	var spStdin, shStdin, keepSessions bool
	var spEnv, shEnv string
	setPw := &cobra.Command{
		Use:   "set-password NAME",
		Short: "Replace a user's password (from stdin or an environment variable) and end the user's sessions",
		Long: `Replace a user's password, or import an existing hash for it. Every session
acting as the user ends (reason password_changed): whoever knew the old
password may hold its tokens. --keep-sessions keeps them.`,
		Example: `  echo 'N3w-secret' | gatehouse user set-password api_user --password-stdin
  echo '$2b$10$…' | gatehouse user set-password api_user --password-hash-stdin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pwGiven, hashGiven := spStdin || spEnv != "", shStdin || shEnv != ""
			switch {
			case pwGiven && hashGiven:
				return &admin.InputError{Msg: "give a password or a password hash, not both"}
			case !pwGiven && !hashGiven:
				return &admin.InputError{Msg: "give --password-stdin or --password-env VAR (or a hash: --password-hash-stdin, --password-hash-env VAR)"}
			}
			secret, err := readSecret(e, "password", spStdin, spEnv)
			if hashGiven {
				secret, err = readSecret(e, "password hash", shStdin, shEnv)
			}
			if err != nil {
				return err
			}
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{}, false)
			if err != nil {
				return err
			}
			defer a.Close()
			ch := admin.PasswordChange{Password: secret, KeepSessions: keepSessions}
			if hashGiven {
				ch = admin.PasswordChange{Hash: secret, KeepSessions: keepSessions}
			}
			ended, err := a.admin.ChangePassword(cmd.Context(), a.actor, args[0], ch)
			if err != nil {
				return err
			}
			if keepSessions {
				fmt.Fprintf(e.stdout, "password of %s replaced; sessions kept\n", args[0])
			} else {
				fmt.Fprintf(e.stdout, "password of %s replaced; %d sessions ended\n", args[0], len(ended))
			}
			return nil
		},
	}
	setPw.Flags().BoolVar(&keepSessions, "keep-sessions", false, "keep the user's sessions (by default they end)")
	setPw.Flags().BoolVar(&spStdin, "password-stdin", false, "read the password from stdin")
	setPw.Flags().StringVar(&spEnv, "password-env", "", "read the password from this environment variable")
	setPw.Flags().BoolVar(&shStdin, "password-hash-stdin", false, "read an existing bcrypt or argon2id hash from stdin, instead of a password")
	setPw.Flags().StringVar(&shEnv, "password-hash-env", "", "read an existing bcrypt or argon2id hash from this environment variable")

	unlock := &cobra.Command{
		Use:   "unlock NAME",
		Short: "End a lockout by forgetting the user's failed sign-ins",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{}, false)
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.admin.UnlockUser(cmd.Context(), a.actor, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "failed sign-ins of %s forgotten\n", args[0])
			return nil
		},
	}

	cmd.AddCommand(add, update, list, show, del, setPw, unlock)
	return cmd
}
