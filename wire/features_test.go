package wire

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestApiVersionsFeatures: v3+ answers report the registry's features:
// supported ranges (before v4 without those starting at 0, KAFKA-17492)
// and finalized levels other than 0; v0–v2 have no such fields.
func TestApiVersionsFeatures(t *testing.T) {
	reg := newTestRegistry(&testHandlers{})
	reg.SetFeatures([]Feature{{Name: "off.version", Min: 0, Max: 0}, {Name: "on.version", Min: 1, Max: 3, Level: 2}})
	_, addr := startServer(t, Config{}, reg)
	nc := dial(t, addr)
	for v, want := range map[int16]string{
		2: "supported [] finalized [] epoch -1",
		3: "supported [on.version:1-3] finalized [on.version:2-2] epoch 0",
		4: "supported [off.version:0-0 on.version:1-3] finalized [on.version:2-2] epoch 0",
	} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
		write(t, nc, encodeRequest(req, v, int32(v), nil))
		_, body := mustReadResponse(t, nc)
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = v
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		var sup, fin []string
		for _, f := range resp.SupportedFeatures {
			sup = append(sup, fmt.Sprintf("%s:%d-%d", f.Name, f.MinVersion, f.MaxVersion))
		}
		for _, f := range resp.FinalizedFeatures {
			fin = append(fin, fmt.Sprintf("%s:%d-%d", f.Name, f.MinVersionLevel, f.MaxVersionLevel))
		}
		got := fmt.Sprintf("supported %v finalized %v epoch %d", sup, fin, resp.FinalizedFeaturesEpoch)
		if got != want {
			t.Errorf("v%d: %s, want %s", v, got, want)
		}
	}
}
