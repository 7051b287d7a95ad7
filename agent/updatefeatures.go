package agent

// UpdateFeatures, versions 0–1, and the features ApiVersions reports.
//
// Kafka 4 clients read finalized feature levels to choose protocols:
// group.version 1 turns on the KIP-848 consumer group protocol and
// transaction.version 2 the KIP-890 transactions (EndTxn v5, an epoch bump
// per transaction). Silt serves classic groups only and transactions of
// transaction.version 0 (EndTxn up to v4), so it supports exactly level 0
// of both, and level 0, off, is what is finalized: ApiVersions lists the
// ranges and no finalized level, as Kafka does for features at level 0.
// With consumer groups on (group.coordinator.rebalance.protocols lists
// consumer), group.version supports 0-1 and 1 is finalized.
//
// Silt's features are fixed, so UpdateFeatures changes nothing; it answers
// each update as Kafka's controller would with these supported ranges: a
// level outside the range (or for a feature Silt does not know, above 0)
// is INVALID_UPDATE_VERSION, a downgrade without a downgrade type and an
// upgrade with one too, and an update to the level in force succeeds.
// ALTER on the cluster is required (CLUSTER_AUTHORIZATION_FAILED).

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

// features are the feature flags Silt supports and has in force:
// group.version 1 while consumer groups are on
// (group.coordinator.rebalance.protocols has consumer), as Kafka 4
// reports it, else 0.
func (a *Agent) features() []wire.Feature {
	gv := wire.Feature{Name: "group.version", Min: 0, Max: 0, Level: 0}
	if a.cfg.ConsumerGroups() {
		gv = wire.Feature{Name: "group.version", Min: 0, Max: 1, Level: 1}
	}
	fs := []wire.Feature{gv, {Name: "transaction.version", Min: 0, Max: 0, Level: 0}}
	if a.cfg.ShareGroups() {
		// share.version 1 turns on share groups for Kafka 4.1+ clients.
		fs = append(fs, wire.Feature{Name: "share.version", Min: 0, Max: 1, Level: 1})
	}
	return fs
}

// KIP-778 upgrade types.
const (
	upgradeTypeUpgrade         = 1
	upgradeTypeSafeDowngrade   = 2
	upgradeTypeUnsafeDowngrade = 3
)

func (a *Agent) handleUpdateFeatures(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.UpdateFeaturesRequest)
	resp := req.ResponseKind().(*kmsg.UpdateFeaturesResponse)
	if !a.access(c).cluster(metastore.OpAlter) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Description)
		return wire.Respond(resp)
	}
	seen := make(map[string]bool, len(req.FeatureUpdates))
	for _, u := range req.FeatureUpdates {
		if seen[u.Feature] { // Kafka keys updates by feature name
			continue
		}
		seen[u.Feature] = true
		upgrade := u.UpgradeType
		if req.Version == 0 {
			upgrade = upgradeTypeUpgrade
			if u.AllowDowngrade {
				upgrade = upgradeTypeSafeDowngrade
			}
		}
		r := kmsg.NewUpdateFeaturesResponseResult()
		r.Feature = u.Feature
		if msg := checkFeatureUpdate(a.features(), u.Feature, u.MaxVersionLevel, upgrade); msg != "" {
			r.ErrorCode = kerr.InvalidUpdateVersion.Code
			r.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("Invalid update version %d for feature %s. %s", u.MaxVersionLevel, u.Feature, msg))
		}
		resp.Results = append(resp.Results, r)
	}
	return wire.Respond(resp)
}

// checkFeatureUpdate returns why Kafka's controller would refuse to set
// feature name to level with upgrade type upgrade, or "" if it would take
// it (which, all levels being fixed, changes nothing).
func checkFeatureUpdate(features []wire.Feature, name string, level int16, upgrade int8) string {
	if upgrade < upgradeTypeUpgrade || upgrade > upgradeTypeUnsafeDowngrade {
		return "The controller does not support the given upgrade type."
	}
	if level < 0 {
		return "A feature version cannot be less than 0."
	}
	f := wire.Feature{Name: name} // a feature Silt does not know: [0, 0]
	for _, k := range features {
		if k.Name == name {
			f = k
		}
	}
	switch {
	case level < f.Min || level > f.Max:
		if f.Max == 0 {
			return "Silt does not support this feature."
		}
		return fmt.Sprintf("Silt only supports versions %d-%d.", f.Min, f.Max)
	case level < f.Level && upgrade == upgradeTypeUpgrade:
		return "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade."
	case level > f.Level && upgrade != upgradeTypeUpgrade:
		return "Can't downgrade to a newer version."
	}
	return ""
}
