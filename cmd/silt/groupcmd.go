package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newGroupCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List consumer groups and describe them with their lag, through any agent",
	}
	var af adminFlags
	af.register(cmd)
	cmd.AddCommand(newGroupListCmd(stdout, &af), newGroupDescribeCmd(stdout, &af))
	return cmd
}

func newGroupListCmd(stdout io.Writer, af *adminFlags) *cobra.Command {
	var states []string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List consumer groups with their state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, ctx, cancel, err := af.client(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			groups, err := adm.ListGroups(ctx, states...)
			if err != nil {
				return fmt.Errorf("list groups: %w", err)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE\tCOORDINATOR")
			for _, g := range groups.Sorted() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", g.Group, dash(g.State), dash(g.ProtocolType), g.Coordinator)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringSliceVar(&states, "state", nil, "only groups in these states (Stable, Empty, PreparingRebalance, ...)")
	return cmd
}

func newGroupDescribeCmd(stdout io.Writer, af *adminFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe GROUP...",
		Short: "Show a group's members and, per partition, committed offset, end offset and lag",
		Long: `Show a consumer group's state and members, then one line per partition it
has committed offsets for or is assigned: the committed offset, the partition's
end offset (high watermark) and the lag between them. Lag is "-" where the
group has not committed (the consumer starts where its reset policy says).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, groups []string) error {
			adm, ctx, cancel, err := af.client(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			lags, err := adm.Lag(ctx, groups...)
			if err != nil && len(lags) == 0 {
				return fmt.Errorf("describe groups: %w", err)
			}
			failed := false
			for i, name := range groups {
				if i > 0 {
					fmt.Fprintln(stdout)
				}
				l, ok := lags[name]
				if !ok {
					failed = true
					fmt.Fprintf(cmd.ErrOrStderr(), "describe group %s: not in the response\n", name)
					continue
				}
				if l.DescribeErr != nil {
					failed = true
					fmt.Fprintf(cmd.ErrOrStderr(), "describe group %s: %v\n", name, l.DescribeErr)
					continue
				}
				printGroupLag(stdout, l)
				if l.FetchErr != nil {
					failed = true
					fmt.Fprintf(cmd.ErrOrStderr(), "fetch offsets of group %s: %v\n", name, l.FetchErr)
				}
			}
			if failed {
				return errSomeFailed
			}
			return nil
		},
	}
	return cmd
}

// printGroupLag prints one group: a header, its members, and its lag table.
func printGroupLag(w io.Writer, l kadm.DescribedGroupLag) {
	fmt.Fprintf(w, "Group: %s\nState: %s\nProtocol: %s/%s\nCoordinator: %d (%s:%d)\nMembers: %d\n",
		l.Group, dash(l.State), dash(l.ProtocolType), dash(l.Protocol),
		l.Coordinator.NodeID, l.Coordinator.Host, l.Coordinator.Port, len(l.Members))
	for _, m := range l.Members {
		fmt.Fprintf(w, "  %s client=%s host=%s\n", m.MemberID, m.ClientID, m.ClientHost)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tMEMBER\tCLIENT")
	var total int64
	for _, ml := range l.Lag.Sorted() {
		commit, end, lag := "-", "-", "-"
		if ml.Commit.At >= 0 {
			commit = fmt.Sprint(ml.Commit.At)
		}
		if ml.End.Err == nil {
			end = fmt.Sprint(ml.End.Offset)
		}
		if ml.Lag >= 0 && commit != "-" {
			lag = fmt.Sprint(ml.Lag)
			total += ml.Lag
		}
		member, client := "-", "-"
		if ml.Member != nil {
			member, client = ml.Member.MemberID, ml.Member.ClientID
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", ml.Topic, ml.Partition, commit, end, lag, member, client)
		if ml.Err != nil {
			fmt.Fprintf(tw, "\t\terror: %s\n", strings.TrimSpace(ml.Err.Error()))
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "Total lag: %d\n", total)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
