package torture

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// violations collects what the run found wrong, by kind, keeping the
// first few examples of each.
type violations struct {
	mu       sync.Mutex
	counts   map[string]int
	examples map[string][]string
}

const examplesPerKind = 8

func (v *violations) add(kind, format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.counts == nil {
		v.counts = make(map[string]int)
		v.examples = make(map[string][]string)
	}
	v.counts[kind]++
	if len(v.examples[kind]) < examplesPerKind {
		v.examples[kind] = append(v.examples[kind], fmt.Sprintf(format, args...))
	}
}

func (v *violations) count(kind string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.counts[kind]
}

func (v *violations) total() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, c := range v.counts {
		n += c
	}
	return n
}

// kinds returns the kinds found, sorted.
func (v *violations) kinds() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for k := range v.counts {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// report lists every kind with its count and examples.
func (v *violations) report() string {
	var b strings.Builder
	for _, k := range v.kinds() {
		v.mu.Lock()
		fmt.Fprintf(&b, "%s: %d\n", k, v.counts[k])
		for _, e := range v.examples[k] {
			fmt.Fprintf(&b, "    %s\n", e)
		}
		v.mu.Unlock()
	}
	return b.String()
}
