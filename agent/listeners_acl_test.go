package agent_test

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/agent"
	"github.com/siltstream/silt/internal/poll"
	"github.com/siltstream/silt/internal/testcerts"
	"github.com/siltstream/silt/wire"
)

// TestSSLPrincipalAuthorized: the principal an SSL client certificate maps
// to is the one the ACL authorizer checks, while a loopback PLAINTEXT
// listener with super.users=User:ANONYMOUS is the operator's path (issue
// 13's admin setup).
func TestSSLPrincipalAuthorized(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk backend) {
		f := newTLSFixture(t)
		bob := f.ca.Client(t, "bob", pkix.Name{CommonName: "Bob", OrganizationalUnit: []string{"clients"}})
		ta := startAgent(t, bk, func(c *agent.Config) {
			c.Listeners = []agent.Listener{
				{Name: "PLAINTEXT", Protocol: wire.Plaintext, Listen: "127.0.0.1:0"},
				{Name: "SSL", Protocol: wire.SSL, Listen: "127.0.0.1:0"},
			}
			c.TLS = f.agentTLS("required")
			c.Authorizer = agent.AuthorizerACL
			c.SuperUsers = []string{wire.AnonymousPrincipal}
		})
		admin := newClient(t, listenerAddr(t, ta, "PLAINTEXT"), nil)
		createTopic(t, admin, "secured", 1, nil)
		ssl := listenerAddr(t, ta, "SSL")
		produce := func(leaf *testcerts.Leaf) error {
			cl := newClient(t, ssl, f.clientTLS(leaf), kgo.DefaultProduceTopic("secured"), kgo.RecordRetries(1))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return cl.ProduceSync(ctx, kgo.StringRecord("x")).FirstErr()
		}
		if err := produce(f.alice); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("User:alice without ACLs: %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
		createACLs(t, admin,
			allow(rtTopic, "secured", "alice", kmsg.ACLOperationWrite),
			allow(rtTopic, "secured", "alice", kmsg.ACLOperationDescribe))
		poll.Until(t, "User:alice (from her certificate) to be allowed to produce", func() bool { return produce(f.alice) == nil })
		if err := produce(bob); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Errorf("User:bob with alice's ACLs: %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
	})
}
