package wire

// ApiVersions (key 18), versions 0–4, answered by the Server itself from the
// Registry so that advertised versions cannot drift from handlers.
//
// KIP-511: a request of a version we do not speak is answered with a v0
// response carrying UNSUPPORTED_VERSION and, as Kafka does, only our
// ApiVersions entry, so the client retries with the highest version we both
// speak. (Sending every key would also parse, but kgo then adopts the list
// without retrying, and we would never learn the client software.) v3+ requests carry the client
// software name and version, recorded on the Conn; values that do not match
// Kafka's pattern get INVALID_REQUEST, as Kafka brokers answer.
//
// v3+ also report the Registry's features (KIP-584): the supported range
// of each (before v4, leaving out those whose range starts at 0, which
// older clients fail to parse: KAFKA-17492), and the finalized level of
// each that is not 0, with epoch 0 (they never change).

import (
	"regexp"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// clientSoftwarePattern is Kafka's validation of KIP-511 software fields.
var clientSoftwarePattern = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

// answerApiVersions answers req, which is nil when its version is unsupported.
func (s *Server) answerApiVersions(c *Conn, req kmsg.Request) Reply {
	resp := kmsg.NewPtrApiVersionsResponse()
	if req == nil {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = apiVersionsKey, apiVersionsMin, apiVersionsMax
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{k}
		return Respond(resp)
	}
	resp.ApiKeys = s.apiKeys // read-only; shared by every response
	r := req.(*kmsg.ApiVersionsRequest)
	if r.Version >= 3 {
		if !clientSoftwarePattern.MatchString(r.ClientSoftwareName) ||
			!clientSoftwarePattern.MatchString(r.ClientSoftwareVersion) {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return Respond(resp)
		}
		c.software.Store(&[2]string{r.ClientSoftwareName, r.ClientSoftwareVersion})
		s.addFeatures(resp, r.Version)
	}
	return Respond(resp)
}

// addFeatures reports the features to a v3+ request.
func (s *Server) addFeatures(resp *kmsg.ApiVersionsResponse, version int16) {
	if len(s.features) == 0 {
		return
	}
	resp.FinalizedFeaturesEpoch = 0
	for _, f := range s.features {
		if version >= 4 || f.Min > 0 {
			sf := kmsg.NewApiVersionsResponseSupportedFeature()
			sf.Name, sf.MinVersion, sf.MaxVersion = f.Name, f.Min, f.Max
			resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
		}
		if f.Level != 0 {
			ff := kmsg.NewApiVersionsResponseFinalizedFeature()
			ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = f.Name, f.Level, f.Level
			resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
		}
	}
}
