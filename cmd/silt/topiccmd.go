package main

// Admin commands (topic, group) talk Kafka to any agent through franz-go's
// kadm, so they work the same against Silt and against Kafka.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const defaultBrokers = "127.0.0.1:9092"

// adminFlags are the connection flags shared by the admin commands.
type adminFlags struct {
	brokers string
	timeout time.Duration
	sasl    saslFlags // usercmd.go
}

// register adds --brokers and --timeout as persistent flags of cmd.
func (f *adminFlags) register(cmd *cobra.Command) {
	def := os.Getenv("SILT_BROKERS")
	if def == "" {
		def = defaultBrokers
	}
	cmd.PersistentFlags().StringVarP(&f.brokers, "brokers", "b", def, "comma-separated bootstrap brokers (env SILT_BROKERS)")
	cmd.PersistentFlags().DurationVar(&f.timeout, "timeout", 30*time.Second, "give up after this long")
	f.sasl.register(cmd)
}

// client connects a kadm client to the brokers. The caller closes it.
func (f *adminFlags) client(parent context.Context) (*kadm.Client, context.Context, context.CancelFunc, error) {
	var seeds []string
	for _, b := range strings.Split(f.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			seeds = append(seeds, b)
		}
	}
	if len(seeds) == 0 {
		return nil, nil, nil, configErrorf("--brokers: no broker address given")
	}
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.RetryTimeout(f.timeout)}
	mech, err := f.sasl.mechanism()
	if err != nil {
		return nil, nil, nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, nil, nil, configErrorf("--brokers: %v", err)
	}
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, f.timeout)
	return kadm.NewClient(cl), ctx, cancel, nil
}

func newTopicCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, alter and delete topics through any agent",
	}
	var af adminFlags
	af.register(cmd)
	cmd.AddCommand(
		newTopicCreateCmd(stdout, &af),
		newTopicListCmd(stdout, &af),
		newTopicDescribeCmd(stdout, &af),
		newTopicAlterCmd(stdout, &af),
		newTopicDeleteCmd(stdout, &af),
	)
	return cmd
}

// parseConfigPairs turns repeated key=value flags into kadm's config map.
func parseConfigPairs(pairs []string) (map[string]*string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	out := make(map[string]*string, len(pairs))
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, configErrorf("--config %q: want key=value", kv)
		}
		out[k] = &v
	}
	return out, nil
}

// errWithMessage joins a Kafka error and the broker's message, if any.
func errWithMessage(err error, msg string) error {
	if msg == "" || strings.Contains(err.Error(), msg) {
		return err
	}
	return fmt.Errorf("%w: %s", err, msg)
}

// errSomeFailed is returned when some of the named topics or groups failed;
// each failure has been printed already.
var errSomeFailed = errors.New("some operations failed")

func newTopicCreateCmd(stdout io.Writer, af *adminFlags) *cobra.Command {
	var (
		partitions  int32
		replication int16
		configs     []string
		ifNotExists bool
	)
	cmd := &cobra.Command{
		Use:   "create TOPIC...",
		Short: "Create topics",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			cfg, err := parseConfigPairs(configs)
			if err != nil {
				return err
			}
			adm, ctx, cancel, err := af.client(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			resps, err := adm.CreateTopics(ctx, partitions, replication, cfg, topics...)
			if err != nil {
				return fmt.Errorf("create topics: %w", err)
			}
			failed := false
			for _, r := range resps.Sorted() {
				switch {
				case r.Err == nil:
					fmt.Fprintf(stdout, "created topic %s (%d partitions, id %s)\n", r.Topic, r.NumPartitions, r.ID)
				case ifNotExists && errors.Is(r.Err, kerr.TopicAlreadyExists):
					fmt.Fprintf(stdout, "topic %s already exists\n", r.Topic)
				default:
					failed = true
					fmt.Fprintf(cmd.ErrOrStderr(), "create topic %s: %v\n", r.Topic, errWithMessage(r.Err, r.ErrMessage))
				}
			}
			if failed {
				return errSomeFailed
			}
			return nil
		},
	}
	cmd.Flags().Int32VarP(&partitions, "partitions", "p", -1, "partition count (-1: the agent's num.partitions)")
	cmd.Flags().Int16VarP(&replication, "replication-factor", "r", -1, "accepted for compatibility; Silt's replica is the bucket")
	cmd.Flags().StringArrayVar(&configs, "config", nil, "topic config key=value (repeatable), e.g. retention.ms=86400000")
	cmd.Flags().BoolVar(&ifNotExists, "if-not-exists", false, "succeed if the topic already exists")
	return cmd
}

func newTopicListCmd(stdout io.Writer, af *adminFlags) *cobra.Command {
	var internal bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List topics with their partition counts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, ctx, cancel, err := af.client(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			var details kadm.TopicDetails
			if internal {
				details, err = adm.ListTopicsWithInternal(ctx)
			} else {
				details, err = adm.ListTopics(ctx)
			}
			if err != nil {
				return fmt.Errorf("list topics: %w", err)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tID")
			for _, d := range details.Sorted() {
				fmt.Fprintf(tw, "%s\t%d\t%s\n", d.Topic, len(d.Partitions), d.ID)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&internal, "internal", false, "include internal topics")
	return cmd
}

func newTopicDescribeCmd(stdout io.Writer, af *adminFlags) *cobra.Command {
	var allConfigs bool
	cmd := &cobra.Command{
		Use:   "describe TOPIC...",
		Short: "Show a topic's partitions (leader, log start and end offsets, bytes stored in the bucket) and configs",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			adm, ctx, cancel, err := af.client(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			details, err := adm.ListTopics(ctx, topics...)
			if err != nil {
				return fmt.Errorf("describe topics: %w", err)
			}
			starts, err := adm.ListStartOffsets(ctx, topics...)
			if err != nil {
				return fmt.Errorf("list start offsets: %w", err)
			}
			ends, err := adm.ListEndOffsets(ctx, topics...)
			if err != nil {
				return fmt.Errorf("list end offsets: %w", err)
			}
			// Stored bytes: each agent describes the partitions it leads
			// (DescribeLogDirs), so the answers add up to each once. A
			// partition missing (its leader moved between the calls, or an
			// agent did not answer) shows "-".
			stored := map[string]map[int32]int64{}
			if dirs, err := adm.DescribeAllLogDirs(ctx, details.TopicsSet()); err == nil || len(dirs) > 0 {
				for _, bd := range dirs {
					bd.EachPartition(func(d kadm.DescribedLogDirPartition) {
						if stored[d.Topic] == nil {
							stored[d.Topic] = map[int32]int64{}
						}
						stored[d.Topic][d.Partition] += d.Size
					})
				}
			}
			configs, err := adm.DescribeTopicConfigs(ctx, topics...)
			if err != nil && len(configs) == 0 {
				return fmt.Errorf("describe topic configs: %w", err)
			}
			failed := false
			for i, topic := range topics {
				if i > 0 {
					fmt.Fprintln(stdout)
				}
				d, ok := details[topic]
				if !ok || d.Err != nil {
					failed = true
					derr := d.Err
					if derr == nil {
						derr = errors.New("not in the metadata response")
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "describe topic %s: %v\n", topic, derr)
					continue
				}
				fmt.Fprintf(stdout, "Topic: %s\nID: %s\nPartitions: %d\n", d.Topic, d.ID, len(d.Partitions))
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PARTITION\tLEADER\tEPOCH\tSTART-OFFSET\tEND-OFFSET\tSTORED-BYTES\tERROR")
				for _, p := range d.Partitions.Sorted() {
					start, end := "-", "-"
					var perr error = p.Err
					if o, ok := starts.Lookup(topic, p.Partition); ok {
						if o.Err != nil {
							perr = errors.Join(perr, o.Err)
						} else {
							start = fmt.Sprint(o.Offset)
						}
					}
					if o, ok := ends.Lookup(topic, p.Partition); ok {
						if o.Err != nil {
							perr = errors.Join(perr, o.Err)
						} else {
							end = fmt.Sprint(o.Offset)
						}
					}
					es := ""
					if perr != nil {
						es = perr.Error()
					}
					size := "-"
					if n, ok := stored[topic][p.Partition]; ok {
						size = fmt.Sprint(n)
					}
					fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\t%s\n", p.Partition, p.Leader, p.LeaderEpoch, start, end, size, es)
				}
				tw.Flush()
				printTopicConfigs(stdout, configs, topic, allConfigs)
			}
			if failed {
				return errSomeFailed
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&allConfigs, "all-configs", false, "show default configs too, not only those set on the topic")
	return cmd
}

// printTopicConfigs prints topic's configs: those set on the topic, or all
// of them with their source.
func printTopicConfigs(w io.Writer, configs kadm.ResourceConfigs, topic string, all bool) {
	rc, err := configs.On(topic, nil)
	if err != nil {
		return
	}
	if rc.Err != nil {
		fmt.Fprintf(w, "Configs: %v\n", errWithMessage(rc.Err, rc.ErrMessage))
		return
	}
	var lines []string
	for _, c := range rc.Configs {
		if !all && c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			continue
		}
		v := "(null)"
		switch {
		case c.Sensitive:
			v = "(sensitive)"
		case c.Value != nil:
			v = *c.Value
		}
		if all {
			lines = append(lines, fmt.Sprintf("  %s=%s\t(%s)", c.Key, v, strings.ToLower(c.Source.String())))
		} else {
			lines = append(lines, fmt.Sprintf("  %s=%s", c.Key, v))
		}
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		fmt.Fprintln(w, "Configs: (none set; --all-configs shows defaults)")
		return
	}
	fmt.Fprintln(w, "Configs:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, l := range lines {
		fmt.Fprintln(tw, l)
	}
	tw.Flush()
}

func newTopicAlterCmd(stdout io.Writer, af *adminFlags) *cobra.Command {
	var (
		set        []string
		del        []string
		partitions int
	)
	cmd := &cobra.Command{
		Use:   "alter TOPIC...",
		Short: "Set or delete topic configs, or grow the partition count",
		Long: `Set (--set key=value) or delete (--delete key) topic configs with an
incremental alter, and/or grow the topic to --partitions partitions in total.
Partitions can only be added, never removed.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			var alters []kadm.AlterConfig
			for _, kv := range set {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return configErrorf("--set %q: want key=value", kv)
				}
				alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
			}
			for _, k := range del {
				alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
			}
			if len(alters) == 0 && partitions <= 0 {
				return configErrorf("nothing to alter: give --set, --delete or --partitions")
			}
			adm, ctx, cancel, err := af.client(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			failed := false
			if partitions > 0 {
				resps, err := adm.UpdatePartitions(ctx, partitions, topics...)
				if err != nil {
					return fmt.Errorf("update partitions: %w", err)
				}
				for _, r := range resps.Sorted() {
					if r.Err != nil {
						failed = true
						fmt.Fprintf(cmd.ErrOrStderr(), "set partitions of %s to %d: %v\n", r.Topic, partitions, errWithMessage(r.Err, r.ErrMessage))
						continue
					}
					fmt.Fprintf(stdout, "topic %s: %d partitions\n", r.Topic, partitions)
				}
			}
			if len(alters) > 0 {
				resps, err := adm.AlterTopicConfigs(ctx, alters, topics...)
				if err != nil {
					return fmt.Errorf("alter topic configs: %w", err)
				}
				for _, r := range resps {
					if r.Err != nil {
						failed = true
						fmt.Fprintf(cmd.ErrOrStderr(), "alter configs of %s: %v\n", r.Name, errWithMessage(r.Err, r.ErrMessage))
						continue
					}
					fmt.Fprintf(stdout, "topic %s: configs altered\n", r.Name)
				}
			}
			if failed {
				return errSomeFailed
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&set, "set", nil, "set a topic config key=value (repeatable)")
	cmd.Flags().StringArrayVar(&del, "delete", nil, "delete a topic config, restoring its default (repeatable)")
	cmd.Flags().IntVarP(&partitions, "partitions", "p", 0, "grow the topic to this many partitions in total")
	return cmd
}

func newTopicDeleteCmd(stdout io.Writer, af *adminFlags) *cobra.Command {
	var ifExists bool
	cmd := &cobra.Command{
		Use:   "delete TOPIC...",
		Short: "Delete topics: their records are unreadable at once (bucket space is not reclaimed yet)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			adm, ctx, cancel, err := af.client(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			resps, err := adm.DeleteTopics(ctx, topics...)
			if err != nil {
				return fmt.Errorf("delete topics: %w", err)
			}
			failed := false
			for _, r := range resps.Sorted() {
				switch {
				case r.Err == nil:
					fmt.Fprintf(stdout, "deleted topic %s\n", r.Topic)
				case ifExists && errors.Is(r.Err, kerr.UnknownTopicOrPartition):
					fmt.Fprintf(stdout, "topic %s does not exist\n", r.Topic)
				default:
					failed = true
					fmt.Fprintf(cmd.ErrOrStderr(), "delete topic %s: %v\n", r.Topic, errWithMessage(r.Err, r.ErrMessage))
				}
			}
			if failed {
				return errSomeFailed
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&ifExists, "if-exists", false, "succeed if the topic does not exist")
	return cmd
}
