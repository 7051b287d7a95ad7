package agent_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
)

// TestFeatures: with classic groups only
// (group.coordinator.rebalance.protocols=classic), ApiVersions v4 lists
// group.version and transaction.version as supported at level 0 only and
// finalizes neither (transactions before KIP-890 part 2); v3 leaves 0-0 ranges out, as Kafka
// does. UpdateFeatures answers each update as Kafka's controller would
// with those ranges.
func TestFeatures(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, sqliteMem, func(c *agent.Config) { c.GroupProtocols = []string{agent.GroupProtocolClassic} })
	for v, want := range map[int16]string{
		3: "supported [] finalized []",
		4: "supported [group.version:0-0 transaction.version:0-0] finalized []",
	} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(v)
		req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.SetVersion(v)
		rawRequest(t, ta.addr, req, resp)
		sup, fin := []string{}, []string{}
		for _, f := range resp.SupportedFeatures {
			sup = append(sup, fmt.Sprintf("%s:%d-%d", f.Name, f.MinVersion, f.MaxVersion))
		}
		for _, f := range resp.FinalizedFeatures {
			fin = append(fin, fmt.Sprintf("%s:%d", f.Name, f.MaxVersionLevel))
		}
		if got := fmt.Sprintf("supported %v finalized %v", sup, fin); got != want {
			t.Errorf("ApiVersions v%d: %s, want %s", v, got, want)
		}
	}

	invalid := kerr.InvalidUpdateVersion.Code
	for _, tc := range []struct {
		feature string
		level   int16
		upgrade int8
		code    int16
	}{
		{"group.version", 1, 1, invalid}, // KIP-848 groups: not served
		{"group.version", 0, 1, 0},       // the level in force
		{"transaction.version", 2, 1, invalid},
		{"transaction.version", 0, 2, 0},
		{"no.such.version", 1, 1, invalid},
		{"no.such.version", 0, 1, 0},
		{"group.version", -1, 3, invalid},
		{"group.version", 0, 9, invalid}, // unknown upgrade type
	} {
		req := kmsg.NewPtrUpdateFeaturesRequest()
		req.SetVersion(1)
		u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		u.Feature, u.MaxVersionLevel, u.UpgradeType = tc.feature, tc.level, tc.upgrade
		req.FeatureUpdates = append(req.FeatureUpdates, u)
		resp := kmsg.NewPtrUpdateFeaturesResponse()
		resp.SetVersion(1)
		rawRequest(t, ta.addr, req, resp)
		if resp.ErrorCode != 0 || len(resp.Results) != 1 || resp.Results[0].ErrorCode != tc.code ||
			(tc.code != 0) != (resp.Results[0].ErrorMessage != nil) {
			t.Errorf("update %s to %d (type %d): %+v, want %v", tc.feature, tc.level, tc.upgrade, resp, kerr.ErrorForCode(tc.code))
		}
	}
	// v0 says downgrade with AllowDowngrade.
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.SetVersion(0)
	u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	u.Feature, u.MaxVersionLevel = "group.version", 0
	req.FeatureUpdates = append(req.FeatureUpdates, u)
	resp := kmsg.NewPtrUpdateFeaturesResponse()
	resp.SetVersion(0)
	rawRequest(t, ta.addr, req, resp)
	if len(resp.Results) != 1 || resp.Results[0].ErrorCode != 0 {
		t.Fatalf("UpdateFeatures v0 to the level in force: %+v", resp)
	}
}
