package tlsauth

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// PrincipalMapper turns a client certificate's subject into a principal
// name, with the rules of Kafka's ssl.principal.mapping.rules:
//
//	RULE:pattern/replacement/[L|U], …, DEFAULT
//
// Rules are tried in order against the subject's distinguished name in RFC
// 2253 form (CN=alice,OU=eng,O=Acme,C=US: most specific first, in the
// certificate's order). The first rule whose pattern matches the whole name
// gives the principal: the name with the pattern replaced by replacement
// ($1 … name the pattern's groups), lower-cased with L or upper-cased with
// U. DEFAULT gives the name unchanged. If no rule matches, the client is
// refused. The empty rule list is DEFAULT.
//
// Patterns are Go regular expressions (RE2), which accept the patterns
// Kafka's documentation shows; look-around and back-references are not
// supported.
type PrincipalMapper struct {
	rules []rule
}

type rule struct {
	isDefault   bool
	pattern     *regexp.Regexp
	replacement string // in regexp.Expand's template syntax
	caseMode    byte   // 0, 'L' or 'U'
}

// ErrNoMatchingRule is returned by Map when no rule matches a name.
var ErrNoMatchingRule = errors.New("no ssl.principal.mapping.rules rule matches")

// ParsePrincipalRules parses ssl.principal.mapping.rules. Rules are
// separated by commas or newlines; a comma inside a RULE's pattern or
// replacement belongs to it, and \/ stands for a slash there.
func ParsePrincipalRules(s string) (*PrincipalMapper, error) {
	m := &PrincipalMapper{}
	rest := s
	for {
		rest = strings.TrimLeft(rest, " \t\r\n")
		if rest == "" {
			break
		}
		var r rule
		switch {
		case strings.HasPrefix(rest, "DEFAULT"):
			r.isDefault = true
			rest = rest[len("DEFAULT"):]
		case strings.HasPrefix(rest, "RULE:"):
			var pat, repl string
			var ok bool
			pat, rest, ok = cutUnescapedSlash(rest[len("RULE:"):])
			if !ok {
				return nil, fmt.Errorf("invalid rule %q: want RULE:pattern/replacement/[LU]", s)
			}
			repl, rest, ok = cutUnescapedSlash(rest)
			if !ok {
				return nil, fmt.Errorf("invalid rule %q: want RULE:pattern/replacement/[LU]", s)
			}
			re, err := regexp.Compile("^(?:" + pat + ")$")
			if err != nil {
				return nil, fmt.Errorf("invalid rule pattern %q: %v", pat, err)
			}
			r.pattern, r.replacement = re, javaReplacement(repl)
			if rest != "" && (rest[0] == 'L' || rest[0] == 'U') {
				r.caseMode, rest = rest[0], rest[1:]
			}
		default:
			return nil, fmt.Errorf("invalid rule %q: each rule is DEFAULT or RULE:pattern/replacement/[LU]", firstRule(rest))
		}
		m.rules = append(m.rules, r)
		rest = strings.TrimLeft(rest, " \t\r")
		if rest == "" {
			break
		}
		if rest[0] != ',' && rest[0] != '\n' {
			return nil, fmt.Errorf("invalid rule %q: rules are separated by commas", firstRule(rest))
		}
		rest = rest[1:]
	}
	if len(m.rules) == 0 {
		m.rules = []rule{{isDefault: true}}
	}
	return m, nil
}

func firstRule(s string) string {
	if i := strings.IndexAny(s, ",\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// cutUnescapedSlash splits s at its first slash not preceded by a
// backslash; the part before keeps its escapes.
func cutUnescapedSlash(s string) (before, after string, ok bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '/':
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// javaReplacement turns a java.util.regex replacement ($1, \$ for a
// dollar) into regexp.Expand's template (${1}, $$).
func javaReplacement(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			if s[i] == '$' {
				b.WriteString("$$")
			} else {
				b.WriteByte(s[i])
			}
		case c == '$':
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j == i+1 {
				b.WriteString("$$")
				continue
			}
			b.WriteString("${" + s[i+1:j] + "}")
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Map applies the rules to a distinguished name.
func (m *PrincipalMapper) Map(dn string) (string, error) {
	for _, r := range m.rules {
		if r.isDefault {
			return dn, nil
		}
		idx := r.pattern.FindStringSubmatchIndex(dn)
		if idx == nil {
			continue
		}
		out := string(r.pattern.ExpandString(nil, r.replacement, dn, idx))
		switch r.caseMode {
		case 'L':
			out = strings.ToLower(out)
		case 'U':
			out = strings.ToUpper(out)
		}
		return out, nil
	}
	return "", fmt.Errorf("%w %q", ErrNoMatchingRule, dn)
}

// Principal returns the principal ("User:" + the mapped name) of a client
// certificate.
func (m *PrincipalMapper) Principal(cert *x509.Certificate) (string, error) {
	name, err := m.Map(SubjectDN(cert))
	if err != nil {
		return "", err
	}
	return "User:" + name, nil
}

// SubjectDN is a certificate's subject in RFC 2253 form, in the order the
// certificate lists it (reversed, as RFC 2253 writes names), as Java's
// X500Principal.getName() gives it to Kafka's mapping rules. Attributes
// without an RFC 2253 keyword appear as OID=#hex, as in Java.
func SubjectDN(cert *x509.Certificate) string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(cert.RawSubject, &seq); err != nil || len(rest) > 0 {
		return cert.Subject.String()
	}
	return seq.String()
}
