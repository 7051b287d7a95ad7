package deploy

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type instruction struct {
	cmd, args string
}

// parseDockerfile returns the instructions, continuation lines joined and
// comments dropped.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	ins := parseDockerfile(t, filepath.Join(root, "deploy", "Dockerfile"))
	var stages [][]instruction
	args := map[string]string{}
	for _, in := range ins {
		switch {
		case in.cmd == "FROM":
			stages = append(stages, nil)
		case in.cmd == "ARG" && len(stages) == 0:
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stages", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	// Builder: Go at least as new as go.mod asks, static binary.
	from := strings.Fields(build[0].args)
	image := from[len(from)-3] // ... IMAGE AS NAME
	image = strings.ReplaceAll(image, "${GO_VERSION}", args["GO_VERSION"])
	if !strings.HasPrefix(image, "golang:") {
		t.Fatalf("builder stage FROM %q, want golang:", image)
	}
	if want := goModVersion(t, root); !versionAtLeast(strings.TrimPrefix(strings.SplitN(image, "-", 2)[0], "golang:"), want) {
		t.Errorf("builder %s is older than go.mod's go %s", image, want)
	}
	var buildRun string
	for _, in := range build {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			buildRun = in.args
		}
	}
	if !strings.Contains(buildRun, "CGO_ENABLED=0") || !strings.Contains(buildRun, "./cmd/silt") {
		t.Errorf("builder does not build ./cmd/silt with CGO_ENABLED=0: %q", buildRun)
	}

	// Final: distroless static or scratch, non-root, entrypoint silt, ports.
	finalFrom := strings.Fields(final[0].args)[0]
	if !strings.HasPrefix(finalFrom, "gcr.io/distroless/static") && finalFrom != "scratch" {
		t.Errorf("final stage FROM %q, want distroless/static or scratch", finalFrom)
	}
	var user, entrypoint, expose string
	env := map[string]string{}
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "EXPOSE":
			expose += " " + in.args
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("final stage USER %q, want a non-root user", user)
	} else if _, err := strconv.Atoi(u); err != nil {
		t.Errorf("USER %q is not numeric: Kubernetes runAsNonRoot cannot verify a user name", user)
	}
	if !strings.HasPrefix(entrypoint, "[") || !strings.Contains(entrypoint, `/silt"`) {
		t.Errorf("ENTRYPOINT %q, want the exec form running silt", entrypoint)
	}
	cfg := checkEnvApplied(t, "Dockerfile ENV", env)
	for _, key := range []string{"listen", "http.listen"} {
		p := strconv.Itoa(port(t, key, cfg[key]))
		if !slices.Contains(strings.Fields(expose), p) {
			t.Errorf("EXPOSE %q lacks the %s port %s", expose, key, p)
		}
		if !listensOnAllInterfaces(cfg[key]) {
			t.Errorf("image default %s %q is not reachable from outside the container", key, cfg[key])
		}
	}
	ignore, err := os.ReadFile(filepath.Join(root, "deploy", "Dockerfile.dockerignore"))
	if err != nil {
		t.Fatalf("deploy/Dockerfile.dockerignore: %v", err)
	}
	for _, needed := range []string{"go.mod", "go.sum", "cmd", "metastore"} {
		for _, line := range strings.Split(string(ignore), "\n") {
			if strings.TrimSpace(line) == needed {
				t.Errorf("Dockerfile.dockerignore excludes %s, which the build needs", needed)
			}
		}
	}
}

func goModVersion(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

// versionAtLeast compares major.minor versions.
func versionAtLeast(have, want string) bool {
	parse := func(s string) (int, int) {
		a, b, _ := strings.Cut(s, ".")
		b, _, _ = strings.Cut(b, ".")
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x, y
	}
	h1, h2 := parse(have)
	w1, w2 := parse(want)
	return h1 > w1 || (h1 == w1 && h2 >= w2)
}

// --- deploy/kubernetes -------------------------------------------------------
