package main

// silt user: SCRAM credentials, through any agent with
// AlterUserScramCredentials and DescribeUserScramCredentials (so it works
// against Kafka too), or with --metastore-url straight in the metastore, to
// create the first admin before any agent runs.

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/siltstream/silt/auth"
	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/metastore/metastoreurl"
)

// saslFlags are how admin commands authenticate to a SASL listener.
type saslFlags struct {
	mech, username, password string
}

func (f *saslFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.mech, "sasl-mechanism", os.Getenv("SILT_ADMIN_SASL_MECHANISM"), "authenticate to the brokers with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (env SILT_ADMIN_SASL_MECHANISM)")
	pf.StringVar(&f.username, "sasl-username", os.Getenv("SILT_ADMIN_SASL_USERNAME"), "SASL user name (env SILT_ADMIN_SASL_USERNAME)")
	pf.StringVar(&f.password, "sasl-password", "", "SASL password (env SILT_ADMIN_SASL_PASSWORD, which keeps it out of ps)")
}

// mechanism returns the franz-go mechanism the flags ask for, nil for none.
func (f *saslFlags) mechanism() (sasl.Mechanism, error) {
	if f.mech == "" {
		return nil, nil
	}
	pass := f.password
	if pass == "" {
		pass = os.Getenv("SILT_ADMIN_SASL_PASSWORD")
	}
	if f.username == "" {
		return nil, configErrorf("--sasl-username: required with --sasl-mechanism")
	}
	switch f.mech {
	case auth.Plain:
		return plain.Auth{User: f.username, Pass: pass}.AsMechanism(), nil
	case auth.ScramSHA256.Name():
		return scram.Auth{User: f.username, Pass: pass}.AsSha256Mechanism(), nil
	case auth.ScramSHA512.Name():
		return scram.Auth{User: f.username, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, configErrorf("--sasl-mechanism: %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", f.mech)
}

// userFlags are what every user subcommand shares.
type userFlags struct {
	admin        adminFlags
	metastoreURL string
}

func newUserCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Create, delete and list users' SCRAM credentials, through any agent or (--metastore-url) in the metastore",
	}
	var uf userFlags
	uf.admin.register(cmd)
	cmd.PersistentFlags().StringVar(&uf.metastoreURL, "metastore-url", "",
		"work in this metastore directly instead of through --brokers (bootstrapping the first admin)")
	cmd.AddCommand(newUserCreateCmd(stdout, &uf), newUserDeleteCmd(stdout, &uf), newUserListCmd(stdout, &uf))
	return cmd
}

// scramMechanisms parses --mechanism values; none means both.
func scramMechanisms(names []string) ([]auth.ScramMechanism, error) {
	if len(names) == 0 {
		return []auth.ScramMechanism{auth.ScramSHA256, auth.ScramSHA512}, nil
	}
	var out []auth.ScramMechanism
	for _, n := range names {
		m, ok := auth.ScramMechanismByName(n)
		if !ok {
			return nil, configErrorf("--mechanism: %q is not SCRAM-SHA-256 or SCRAM-SHA-512", n)
		}
		out = append(out, m)
	}
	return out, nil
}

func kadmMechanism(m auth.ScramMechanism) kadm.ScramMechanism {
	if m.Name() == auth.ScramSHA256.Name() {
		return kadm.ScramSha256
	}
	return kadm.ScramSha512
}

// openMetastore migrates and opens the store of --metastore-url.
func (uf *userFlags) openMetastore(ctx context.Context) (metastore.Store, error) {
	if err := metastoreurl.Migrate(ctx, uf.metastoreURL); err != nil {
		return nil, fmt.Errorf("migrate metastore %s: %w", redactURL(uf.metastoreURL), err)
	}
	return metastoreurl.Open(ctx, uf.metastoreURL)
}

func (uf *userFlags) context(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), uf.admin.timeout)
}

func newUserCreateCmd(stdout io.Writer, uf *userFlags) *cobra.Command {
	var (
		password   string
		mechs      []string
		iterations int32
	)
	cmd := &cobra.Command{
		Use:   "create USER",
		Short: "Create or replace a user's SCRAM credentials (PLAIN checks the same ones)",
		Long: `Create or replace USER's SCRAM credentials for each --mechanism (default:
both SCRAM-SHA-256 and SCRAM-SHA-512). Only the salt, iteration count,
StoredKey and ServerKey are stored, never the password. The password comes
from --password or SILT_USER_PASSWORD.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			user := args[0]
			if password == "" {
				password = os.Getenv("SILT_USER_PASSWORD")
			}
			if password == "" {
				return configErrorf("--password: required (or SILT_USER_PASSWORD)")
			}
			ms, err := scramMechanisms(mechs)
			if err != nil {
				return err
			}
			if err := auth.CheckIterations(iterations); err != nil {
				return configErrorf("--iterations: %v", err)
			}
			ctx, cancel := uf.context(cmd)
			defer cancel()
			if uf.metastoreURL != "" {
				store, err := uf.openMetastore(ctx)
				if err != nil {
					return err
				}
				defer store.Close()
				var creds []metastore.ScramCredential
				for _, m := range ms {
					c, err := auth.NewCredential(user, m, password, iterations)
					if err != nil {
						return err
					}
					creds = append(creds, c)
				}
				if _, err := store.AlterScramCredentials(ctx, nil, creds); err != nil {
					return err
				}
			} else {
				adm, actx, acancel, err := uf.admin.client(ctx)
				if err != nil {
					return err
				}
				defer acancel()
				defer adm.Close()
				// One request per mechanism: Kafka refuses a user altered
				// twice in one request.
				for _, m := range ms {
					res, err := adm.AlterUserSCRAMs(actx, nil, []kadm.UpsertSCRAM{{
						User: user, Mechanism: kadmMechanism(m), Iterations: iterations, Password: password,
					}})
					if err != nil {
						return fmt.Errorf("create user %s: %w", user, err)
					}
					if r := res[user]; r.Err != nil {
						return fmt.Errorf("create user %s (%s): %w", user, m.Name(), errWithMessage(r.Err, r.ErrMessage))
					}
				}
			}
			for _, m := range ms {
				fmt.Fprintf(stdout, "user %s: %s credential set (%d iterations)\n", user, m.Name(), iterations)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&password, "password", "", "the password (env SILT_USER_PASSWORD, which keeps it out of ps)")
	cmd.Flags().StringSliceVar(&mechs, "mechanism", nil, "SCRAM-SHA-256 and/or SCRAM-SHA-512 (default both)")
	cmd.Flags().Int32Var(&iterations, "iterations", 8192, "SCRAM iterations, 4096 to 16384")
	return cmd
}

func newUserDeleteCmd(stdout io.Writer, uf *userFlags) *cobra.Command {
	var mechs []string
	cmd := &cobra.Command{
		Use:   "delete USER",
		Short: "Delete a user's SCRAM credentials (all of them unless --mechanism)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			user := args[0]
			ctx, cancel := uf.context(cmd)
			defer cancel()
			var ms []auth.ScramMechanism
			if len(mechs) > 0 {
				var err error
				if ms, err = scramMechanisms(mechs); err != nil {
					return err
				}
			}
			if uf.metastoreURL != "" {
				store, err := uf.openMetastore(ctx)
				if err != nil {
					return err
				}
				defer store.Close()
				var keys []metastore.ScramCredentialKey
				if ms == nil {
					creds, err := store.ScramCredentials(ctx, []string{user})
					if err != nil {
						return err
					}
					for _, c := range creds {
						keys = append(keys, c.ScramCredentialKey)
					}
				}
				for _, m := range ms {
					keys = append(keys, metastore.ScramCredentialKey{User: user, Mechanism: m.Name()})
				}
				if len(keys) == 0 {
					return fmt.Errorf("delete user %s: %w", user, kerr.ResourceNotFound)
				}
				notFound, err := store.AlterScramCredentials(ctx, keys, nil)
				if err != nil {
					return err
				}
				if len(notFound) > 0 {
					return fmt.Errorf("delete user %s (%s): %w", user, notFound[0].Mechanism, kerr.ResourceNotFound)
				}
				for _, k := range keys {
					fmt.Fprintf(stdout, "user %s: %s credential deleted\n", user, k.Mechanism)
				}
				return nil
			}
			adm, actx, acancel, err := uf.admin.client(ctx)
			if err != nil {
				return err
			}
			defer acancel()
			defer adm.Close()
			if ms == nil {
				described, err := adm.DescribeUserSCRAMs(actx, user)
				if err != nil {
					return fmt.Errorf("delete user %s: %w", user, err)
				}
				d := described[user]
				if d.Err != nil {
					return fmt.Errorf("delete user %s: %w", user, errWithMessage(d.Err, d.ErrMessage))
				}
				for _, ci := range d.CredInfos {
					if m, ok := auth.ScramMechanismByType(int8(ci.Mechanism)); ok {
						ms = append(ms, m)
					}
				}
			}
			for _, m := range ms {
				res, err := adm.AlterUserSCRAMs(actx, []kadm.DeleteSCRAM{{User: user, Mechanism: kadmMechanism(m)}}, nil)
				if err != nil {
					return fmt.Errorf("delete user %s: %w", user, err)
				}
				if r := res[user]; r.Err != nil {
					return fmt.Errorf("delete user %s (%s): %w", user, m.Name(), errWithMessage(r.Err, r.ErrMessage))
				}
				fmt.Fprintf(stdout, "user %s: %s credential deleted\n", user, m.Name())
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&mechs, "mechanism", nil, "only these mechanisms (SCRAM-SHA-256, SCRAM-SHA-512)")
	return cmd
}

func newUserListCmd(stdout io.Writer, uf *userFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list [USER...]",
		Short: "List users with their SCRAM mechanisms and iteration counts",
		RunE: func(cmd *cobra.Command, users []string) error {
			ctx, cancel := uf.context(cmd)
			defer cancel()
			type row struct {
				user, mechanism string
				iterations      int32
			}
			var rows []row
			failed := false
			if uf.metastoreURL != "" {
				store, err := uf.openMetastore(ctx)
				if err != nil {
					return err
				}
				defer store.Close()
				var filter []string
				if len(users) > 0 {
					filter = users
				}
				creds, err := store.ScramCredentials(ctx, filter)
				if err != nil {
					return err
				}
				for _, c := range creds {
					rows = append(rows, row{c.User, c.Mechanism, c.Iterations})
				}
				for _, u := range users {
					if !slices.ContainsFunc(creds, func(c metastore.ScramCredential) bool { return c.User == u }) {
						failed = true
						fmt.Fprintf(cmd.ErrOrStderr(), "user %s: %v\n", u, kerr.ResourceNotFound)
					}
				}
			} else {
				adm, actx, acancel, err := uf.admin.client(ctx)
				if err != nil {
					return err
				}
				defer acancel()
				defer adm.Close()
				described, err := adm.DescribeUserSCRAMs(actx, users...)
				if err != nil {
					return fmt.Errorf("list users: %w", err)
				}
				for _, d := range described.Sorted() {
					if d.Err != nil {
						failed = true
						fmt.Fprintf(cmd.ErrOrStderr(), "user %s: %v\n", d.User, errWithMessage(d.Err, d.ErrMessage))
						continue
					}
					for _, ci := range d.CredInfos {
						rows = append(rows, row{d.User, ci.Mechanism.String(), ci.Iterations})
					}
				}
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tMECHANISM\tITERATIONS")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%d\n", r.user, r.mechanism, r.iterations)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if failed {
				return errSomeFailed
			}
			return nil
		},
	}
}
