package main

// silt acl create|list|delete: Kafka ACLs through any agent, with the
// CreateAcls, DescribeAcls and DeleteAcls APIs (so it works against Kafka
// too). The agents must run with authorizer=acl, and the command's
// connection must be allowed to ALTER (create, delete) or DESCRIBE (list)
// the cluster, e.g. as a super user.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/auth/acl"
	"github.com/siltstream/silt/metastore"
)

func newACLCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Create, list and delete Kafka ACLs through any agent (authorizer=acl)",
	}
	var af adminFlags
	af.register(cmd)
	cmd.AddCommand(newACLCreateCmd(stdout, &af), newACLListCmd(stdout, &af), newACLDeleteCmd(stdout, &af))
	return cmd
}

// aclFlags name a resource and who may do what to it.
type aclFlags struct {
	topic, group, txnID string
	cluster             bool
	pattern             string
	principals          []string
	host                string
	operations          []string
	permission          string
}

func (f *aclFlags) register(cmd *cobra.Command, filter bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.topic, "topic", "", "the topic (with --pattern prefixed: the topic name prefix; * for every topic)")
	fl.StringVar(&f.group, "group", "", "the consumer group (or prefix, or *)")
	fl.StringVar(&f.txnID, "transactional-id", "", "the transactional id (or prefix, or *)")
	fl.BoolVar(&f.cluster, "cluster", false, "the cluster (for cluster operations: CREATE, ALTER, DESCRIBE, IDEMPOTENT_WRITE, ...)")
	fl.StringArrayVar(&f.principals, "principal", nil, "principal, Type:Name, e.g. User:alice or User:* (repeatable)")
	fl.StringArrayVar(&f.operations, "operation", nil, "READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, CLUSTER_ACTION or ALL (repeatable)")
	if filter {
		fl.StringVar(&f.pattern, "pattern", "any", "resource pattern type: literal, prefixed, match (every ACL that applies to the name) or any")
		fl.StringVar(&f.host, "host", "", "only ACLs for this host")
		fl.StringVar(&f.permission, "permission", "any", "allow, deny or any")
		return
	}
	fl.StringVar(&f.pattern, "pattern", "literal", "resource pattern type: literal or prefixed")
	fl.StringVar(&f.host, "host", "*", "host (IP) the ACL applies to, * for any")
	fl.StringVar(&f.permission, "permission", "allow", "allow or deny")
}

// resource returns the one resource named, or (ANY, nil) if none and any
// is acceptable.
func (f *aclFlags) resource(anyOK bool) (metastore.ACLResourceType, *string, error) {
	var rt metastore.ACLResourceType
	var name *string
	n := 0
	for _, r := range []struct {
		set  bool
		t    metastore.ACLResourceType
		name string
	}{
		{f.topic != "", metastore.ResourceTopic, f.topic},
		{f.group != "", metastore.ResourceGroup, f.group},
		{f.txnID != "", metastore.ResourceTransactionalID, f.txnID},
		{f.cluster, metastore.ResourceCluster, acl.ClusterName},
	} {
		if r.set {
			n++
			rt, name = r.t, &r.name
		}
	}
	switch {
	case n > 1:
		return 0, nil, configErrorf("name one resource: --topic, --group, --transactional-id or --cluster")
	case n == 0 && !anyOK:
		return 0, nil, configErrorf("name the resource: --topic, --group, --transactional-id or --cluster")
	case n == 0:
		return metastore.ResourceAny, nil, nil
	}
	return rt, name, nil
}

func (f *aclFlags) ops(anyOK bool) ([]metastore.ACLOperation, error) {
	if len(f.operations) == 0 {
		if anyOK {
			return []metastore.ACLOperation{metastore.OpAny}, nil
		}
		return nil, configErrorf("--operation: give at least one")
	}
	var out []metastore.ACLOperation
	for _, s := range f.operations {
		for _, part := range strings.Split(s, ",") {
			op, err := acl.ParseOperation(part)
			if err != nil || (op == metastore.OpAny && !anyOK) {
				return nil, configErrorf("--operation: unknown operation %q", part)
			}
			out = append(out, op)
		}
	}
	return out, nil
}

// filters are the DescribeAcls/DeleteAcls filters the flags select: one
// per principal and operation.
func (f *aclFlags) filters() ([]metastore.ACLFilter, error) {
	rt, name, err := f.resource(true)
	if err != nil {
		return nil, err
	}
	pt, err := acl.ParsePatternType(f.pattern)
	if err != nil {
		return nil, configErrorf("--pattern: %v", err)
	}
	perm, err := acl.ParsePermission(f.permission)
	if err != nil {
		return nil, configErrorf("--permission: %v", err)
	}
	ops, err := f.ops(true)
	if err != nil {
		return nil, err
	}
	var host *string
	if f.host != "" {
		host = &f.host
	}
	principals := []*string{nil}
	if len(f.principals) > 0 {
		principals = nil
		for i := range f.principals {
			principals = append(principals, &f.principals[i])
		}
	}
	var out []metastore.ACLFilter
	for _, p := range principals {
		for _, op := range ops {
			out = append(out, metastore.ACLFilter{ResourceType: rt, ResourceName: name, PatternType: pt,
				Principal: p, Host: host, Operation: op, Permission: perm})
		}
	}
	return out, nil
}

// kgoClient connects to the brokers; the caller closes it.
func (f *adminFlags) kgoClient(parent context.Context) (*kgo.Client, context.Context, context.CancelFunc, error) {
	var seeds []string
	for _, b := range strings.Split(f.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			seeds = append(seeds, b)
		}
	}
	if len(seeds) == 0 {
		return nil, nil, nil, configErrorf("--brokers: no broker address given")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RetryTimeout(f.timeout))
	if err != nil {
		return nil, nil, nil, configErrorf("--brokers: %v", err)
	}
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, f.timeout)
	return cl, ctx, cancel, nil
}

func newACLCreateCmd(stdout io.Writer, af *adminFlags) *cobra.Command {
	var f aclFlags
	cmd := &cobra.Command{
		Use:   "create --principal User:NAME --operation OP (--topic T | --group G | --transactional-id ID | --cluster)",
		Short: "Create ACLs: each principal gets each operation on the resource",
		Example: `  silt acl create --principal User:alice --operation read --operation describe --topic orders
  silt acl create --principal User:etl --operation write --topic etl. --pattern prefixed
  silt acl create --principal User:* --operation write --topic audit --permission deny`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rt, name, err := f.resource(false)
			if err != nil {
				return err
			}
			pt, err := acl.ParsePatternType(f.pattern)
			if err != nil {
				return configErrorf("--pattern: %v", err)
			}
			perm, err := acl.ParsePermission(f.permission)
			if err != nil {
				return configErrorf("--permission: %v", err)
			}
			ops, err := f.ops(false)
			if err != nil {
				return err
			}
			if len(f.principals) == 0 {
				return configErrorf("--principal: give at least one (User:NAME)")
			}
			var bs []metastore.ACL
			for _, p := range f.principals {
				for _, op := range ops {
					b := metastore.ACL{ResourceType: rt, ResourceName: *name, PatternType: pt, Principal: p,
						Host: f.host, Operation: op, Permission: perm}
					if err := acl.ValidateBinding(b); err != nil {
						return configErrorf("%v", err)
					}
					bs = append(bs, b)
				}
			}
			cl, ctx, cancel, err := af.kgoClient(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			defer cl.Close()
			req := kmsg.NewPtrCreateACLsRequest()
			for _, b := range bs {
				c := kmsg.NewCreateACLsRequestCreation()
				c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceType(b.ResourceType), b.ResourceName, kmsg.ACLResourcePatternType(b.PatternType)
				c.Principal, c.Host = b.Principal, b.Host
				c.Operation, c.PermissionType = kmsg.ACLOperation(b.Operation), kmsg.ACLPermissionType(b.Permission)
				req.Creations = append(req.Creations, c)
			}
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return fmt.Errorf("create acls: %w", err)
			}
			failed := false
			for i, r := range resp.Results {
				if r.ErrorCode != 0 {
					failed = true
					fmt.Fprintf(cmd.ErrOrStderr(), "create acl %s: %v\n", acl.String(bs[i]), errWithMessage(kerr.ErrorForCode(r.ErrorCode), deref(r.ErrorMessage)))
					continue
				}
				fmt.Fprintf(stdout, "created acl %s\n", acl.String(bs[i]))
			}
			if failed {
				return errSomeFailed
			}
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}

func newACLListCmd(stdout io.Writer, af *adminFlags) *cobra.Command {
	var f aclFlags
	cmd := &cobra.Command{
		Use:   "list [filters]",
		Short: "List ACLs, all or those the filters select",
		Example: `  silt acl list
  silt acl list --topic orders --pattern match   # every ACL that applies to topic orders
  silt acl list --principal User:alice`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs, err := f.filters()
			if err != nil {
				return err
			}
			cl, ctx, cancel, err := af.kgoClient(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			defer cl.Close()
			seen := make(map[metastore.ACL]bool)
			var all []metastore.ACL
			for _, flt := range fs {
				req := kmsg.NewPtrDescribeACLsRequest()
				req.ResourceType, req.ResourceName, req.ResourcePatternType = kmsg.ACLResourceType(flt.ResourceType), flt.ResourceName, kmsg.ACLResourcePatternType(flt.PatternType)
				req.Principal, req.Host = flt.Principal, flt.Host
				req.Operation, req.PermissionType = kmsg.ACLOperation(flt.Operation), kmsg.ACLPermissionType(flt.Permission)
				resp, err := req.RequestWith(ctx, cl)
				if err != nil {
					return fmt.Errorf("list acls: %w", err)
				}
				if resp.ErrorCode != 0 {
					return fmt.Errorf("list acls: %w", errWithMessage(kerr.ErrorForCode(resp.ErrorCode), deref(resp.ErrorMessage)))
				}
				for _, r := range resp.Resources {
					for _, e := range r.ACLs {
						b := metastore.ACL{ResourceType: metastore.ACLResourceType(r.ResourceType), ResourceName: r.ResourceName,
							PatternType: metastore.ACLPatternType(r.ResourcePatternType), Principal: e.Principal, Host: e.Host,
							Operation: metastore.ACLOperation(e.Operation), Permission: metastore.ACLPermission(e.PermissionType)}
						if !seen[b] {
							seen[b] = true
							all = append(all, b)
						}
					}
				}
			}
			return printACLs(stdout, all)
		},
	}
	f.register(cmd, true)
	return cmd
}

func newACLDeleteCmd(stdout io.Writer, af *adminFlags) *cobra.Command {
	var f aclFlags
	var all bool
	cmd := &cobra.Command{
		Use:   "delete (filters | --all)",
		Short: "Delete the ACLs the filters select",
		Example: `  silt acl delete --principal User:alice --topic orders --pattern literal
  silt acl delete --all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !all && f.topic == "" && f.group == "" && f.txnID == "" && !f.cluster && len(f.principals) == 0 {
				return configErrorf("name a resource or --principal to delete, or --all to delete every ACL")
			}
			fs, err := f.filters()
			if err != nil {
				return err
			}
			cl, ctx, cancel, err := af.kgoClient(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			defer cl.Close()
			req := kmsg.NewPtrDeleteACLsRequest()
			for _, flt := range fs {
				df := kmsg.NewDeleteACLsRequestFilter()
				df.ResourceType, df.ResourceName, df.ResourcePatternType = kmsg.ACLResourceType(flt.ResourceType), flt.ResourceName, kmsg.ACLResourcePatternType(flt.PatternType)
				df.Principal, df.Host = flt.Principal, flt.Host
				df.Operation, df.PermissionType = kmsg.ACLOperation(flt.Operation), kmsg.ACLPermissionType(flt.Permission)
				req.Filters = append(req.Filters, df)
			}
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return fmt.Errorf("delete acls: %w", err)
			}
			n := 0
			for _, r := range resp.Results {
				if r.ErrorCode != 0 {
					return fmt.Errorf("delete acls: %w", errWithMessage(kerr.ErrorForCode(r.ErrorCode), deref(r.ErrorMessage)))
				}
				for _, m := range r.MatchingACLs {
					n++
					fmt.Fprintf(stdout, "deleted acl %s\n", acl.String(metastore.ACL{ResourceType: metastore.ACLResourceType(m.ResourceType),
						ResourceName: m.ResourceName, PatternType: metastore.ACLPatternType(m.ResourcePatternType), Principal: m.Principal,
						Host: m.Host, Operation: metastore.ACLOperation(m.Operation), Permission: metastore.ACLPermission(m.PermissionType)}))
				}
			}
			fmt.Fprintf(stdout, "%d acl(s) deleted\n", n)
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&all, "all", false, "delete every ACL")
	return cmd
}

func printACLs(w io.Writer, bs []metastore.ACL) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tPATTERN\tNAME\tPRINCIPAL\tHOST\tOPERATION\tPERMISSION")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", acl.ResourceTypeName(b.ResourceType), acl.PatternTypeName(b.PatternType),
			b.ResourceName, b.Principal, b.Host, acl.OperationName(b.Operation), acl.PermissionName(b.Permission))
	}
	return tw.Flush()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
