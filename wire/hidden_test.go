package wire

import (
	"context"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRegisterHidden: a hidden key is answered by its handler but not
// advertised in ApiVersions.
func TestRegisterHidden(t *testing.T) {
	reg := newTestRegistry(&testHandlers{})
	reg.RegisterHidden(int16(kmsg.ShareGroupHeartbeat), 1, 1, func(_ context.Context, _ *Conn, req kmsg.Request) Reply {
		resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		return Respond(resp)
	})
	if slices.ContainsFunc(reg.Versions(), func(k kmsg.ApiVersionsResponseApiKey) bool { return k.ApiKey == int16(kmsg.ShareGroupHeartbeat) }) {
		t.Fatal("a hidden key is advertised")
	}
	_, addr := startServer(t, Config{}, reg)
	nc := dial(t, addr)
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.GroupID, req.MemberID = "g", "m"
	write(t, nc, encodeRequest(req, 1, 9, nil))
	corr, body := mustReadResponse(t, nc)
	if corr != 9 {
		t.Fatalf("correlation id %d, want 9", corr)
	}
	resp := kmsg.NewPtrShareGroupHeartbeatResponse()
	resp.Version = 1
	// Flexible response header: one empty tag buffer before the body.
	if err := resp.ReadFrom(body[1:]); err != nil || resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("hidden key answered %+v, %v; want UNSUPPORTED_VERSION", resp, err)
	}
}
