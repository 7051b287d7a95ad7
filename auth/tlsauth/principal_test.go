package tlsauth

import (
	"crypto/x509/pkix"
	"errors"
	"testing"

	"github.com/siltstream/silt/internal/testcerts"
)

func TestPrincipalRules(t *testing.T) {
	const dn = "CN=Alice,OU=ServiceUsers,O=Acme,C=US"
	cases := []struct {
		rules, dn, want string
		noMatch         bool
	}{
		{"", dn, dn, false},
		{"DEFAULT", dn, dn, false},
		{`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/`, dn, "Alice", false},
		{`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L`, dn, "alice", false},
		{`RULE:^CN=(.*?),OU=(.*?),O=(.*?),C=(.*?)$/$1@$3/U`, dn, "ALICE@ACME", false},
		{`RULE:^CN=(.*?),OU=Admins.*$/$1/, DEFAULT`, dn, dn, false},
		{"RULE:^CN=(.*?),OU=Admins.*$/$1/\nRULE:^CN=([a-zA-Z]+),.*$/u-$1/L", dn, "u-alice", false},
		{`RULE:^CN=(.*?),OU=Admins.*$/$1/`, dn, "", true},
		{`RULE:^CN=([^,]*),.*$/a\/b-$1-\$/`, dn, "a/b-Alice-$", false},
		{`RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT`, "OU=x,CN=Bob.Jones,O=y", "bob.jones", false},
	}
	for _, c := range cases {
		m, err := ParsePrincipalRules(c.rules)
		if err != nil {
			t.Errorf("parse %q: %v", c.rules, err)
			continue
		}
		got, err := m.Map(c.dn)
		if c.noMatch {
			if !errors.Is(err, ErrNoMatchingRule) {
				t.Errorf("%q on %q: %q, %v; want no matching rule", c.rules, c.dn, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q on %q: %q, %v; want %q", c.rules, c.dn, got, err, c.want)
		}
	}
}

func TestPrincipalRulesInvalid(t *testing.T) {
	for _, rules := range []string{
		"RULE:^CN=(.*)$/$1",       // no closing slash
		"RULE:^CN=(.*$/$1/",       // bad pattern
		"DEFAULT,NOPE",            // not a rule
		"RULE:^CN=(.*)$/$1/X",     // bad case flag
		"DEFAULT DEFAULT",         // no separator
		"rule:^CN=(.*)$/$1/",      // keywords are upper case, as in Kafka
		"RULE:^CN=(.*)$/$1/L,,xx", // junk
	} {
		if _, err := ParsePrincipalRules(rules); err == nil {
			t.Errorf("ParsePrincipalRules(%q): no error", rules)
		}
	}
}

func TestSubjectDNKeepsCertificateOrder(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	leaf := ca.Client(t, "alice", pkix.Name{
		CommonName: "alice", OrganizationalUnit: []string{"eng"}, Organization: []string{"Acme, Inc."}, Country: []string{"US"},
	})
	if got, want := SubjectDN(leaf.Cert), `CN=alice,OU=eng,O=Acme\, Inc.,C=US`; got != want {
		t.Errorf("SubjectDN = %q, want %q", got, want)
	}
	m, _ := ParsePrincipalRules(`RULE:^CN=([^,]*),OU=eng,.*$/$1/U`)
	if p, err := m.Principal(leaf.Cert); err != nil || p != "User:ALICE" {
		t.Errorf("Principal = %q, %v", p, err)
	}
}
