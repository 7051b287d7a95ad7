package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	k8syaml "sigs.k8s.io/yaml"
)

// s3Actions maps the S3 API calls of the s3 driver to the IAM actions they
// need. A call missing here fails the test: document its permission first.
var s3Actions = map[string]string{
	"PutObject":     "s3:PutObject",
	"GetObject":     "s3:GetObject",
	"HeadObject":    "s3:GetObject",
	"DeleteObject":  "s3:DeleteObject",
	"HeadBucket":    "s3:ListBucket",
	"ListObjectsV2": "s3:ListBucket",
}

// TestIAMPolicy checks that the operator guide's IAM policy grants exactly
// what the s3 driver calls.
func TestIAMPolicy(t *testing.T) {
	root := repoRoot(t)
	src, err := os.ReadFile(filepath.Join(root, "objectstore", "s3", "s3.go"))
	if err != nil {
		t.Fatal(err)
	}
	calls := regexp.MustCompile(`client\.(\w+)\(|NewListObjectsV2Paginator`).FindAllSubmatch(src, -1)
	need := map[string]bool{}
	for _, c := range calls {
		op := string(c[1])
		if op == "" {
			op = "ListObjectsV2"
		}
		action, ok := s3Actions[op]
		if !ok {
			t.Errorf("the s3 driver calls %s: add its IAM action to deploy/README.md and s3Actions", op)
			continue
		}
		need[action] = true
	}
	if len(need) < 4 {
		t.Fatalf("found only %v in the s3 driver; has it moved?", need)
	}
	readme, err := os.ReadFile(filepath.Join(root, "deploy", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```json\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("deploy/README.md has no IAM policy JSON block")
	}
	var policy struct {
		Version   string
		Statement []struct {
			Sid      string
			Effect   string
			Action   []string
			Resource string
		}
	}
	if err := k8syaml.UnmarshalStrict(m[1], &policy); err != nil {
		t.Fatalf("IAM policy is not valid JSON of the expected shape: %v", err)
	}
	granted := map[string]bool{}
	for _, s := range policy.Statement {
		if s.Effect != "Allow" {
			continue
		}
		for _, a := range s.Action {
			granted[a] = true
			if s.Resource == "" || (a == "s3:ListBucket") == strings.HasSuffix(s.Resource, "/*") {
				t.Errorf("%s granted on %q: bucket actions go on the bucket ARN, object actions on objects", a, s.Resource)
			}
		}
	}
	for a := range need {
		if !granted[a] {
			t.Errorf("IAM policy lacks %s, which the s3 driver needs", a)
		}
	}
	for a := range granted {
		if !need[a] {
			t.Errorf("IAM policy grants %s, which the s3 driver does not use", a)
		}
	}
}
