package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/siltstream/silt/agent"
)

// TestConfigAuthorizerKeys: authorizer, super.users and
// allow.everyone.if.no.acl.found by file, environment and flag.
func TestConfigAuthorizerKeys(t *testing.T) {
	s, err := loadSettingsT(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Agent.Authorizer != agent.AuthorizerNone || len(s.Agent.SuperUsers) != 0 || s.Agent.AllowEveryoneIfNoACL {
		t.Fatalf("defaults: authorizer %q, super users %v, allow everyone %v", s.Agent.Authorizer, s.Agent.SuperUsers, s.Agent.AllowEveryoneIfNoACL)
	}

	t.Setenv("SILT_SUPER_USERS", "User:admin; User:ops")
	s, err = loadSettingsT(t, "authorizer: acl\nallow.everyone.if.no.acl.found: true\n")
	if err != nil {
		t.Fatal(err)
	}
	if s.Agent.Authorizer != agent.AuthorizerACL || !slices.Equal(s.Agent.SuperUsers, []string{"User:admin", "User:ops"}) || !s.Agent.AllowEveryoneIfNoACL {
		t.Fatalf("file + env: authorizer %q, super users %v, allow everyone %v", s.Agent.Authorizer, s.Agent.SuperUsers, s.Agent.AllowEveryoneIfNoACL)
	}
	s, err = loadSettingsT(t, "", "--authorizer", "acl", "--super-users", "User:root", "--allow-everyone-if-no-acl-found=false")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Agent.SuperUsers, []string{"User:root"}) || s.Agent.AllowEveryoneIfNoACL {
		t.Fatalf("flags: super users %v, allow everyone %v", s.Agent.SuperUsers, s.Agent.AllowEveryoneIfNoACL)
	}

	for args, key := range map[string]string{"--authorizer=simple": "authorizer", "--super-users=admin": "super.users"} {
		if _, err := loadSettingsT(t, "", args); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: error %v, want one naming %s", args, err, key)
		}
	}
}
