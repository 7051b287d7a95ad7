// Command silt is the Silt broker binary: `silt agent` serves Kafka clients
// over an object-store bucket and a metadata store, `silt dev` runs the same
// agent on local files with nothing else to install, `silt migrate` applies
// metadata-store migrations.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run executes the command line and returns the process exit status: 0 on
// success, 2 for configuration and usage errors, 1 for everything else.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "silt: %v\n", err)
	var ce *configError
	if errors.As(err, &ce) {
		return 2
	}
	return 1
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "silt",
		Short:         "Silt: a Kafka-compatible broker whose durability comes from object storage",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &configError{fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	root.AddCommand(
		newAgentCmd(stderr),
		newDevCmd(stdout, stderr),
		newMigrateCmd(stdout, stderr),
		newVersionCmd(stdout),
		newConfigCmd(stdout),
		newTopicCmd(stdout),
		newGroupCmd(stdout),
		newUserCmd(stdout),
		newACLCmd(stdout),
		newSegmentCmd(stdout),
	)
	return root
}
