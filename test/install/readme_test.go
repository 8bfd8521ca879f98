package install

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// leaves lists the dotted paths of values.yaml's scalars, lists and empty maps.
func leaves(prefix string, v any, out *[]string) {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		*out = append(*out, prefix)
		return
	}
	for k, sub := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		leaves(p, sub, out)
	}
}

// TestEveryValueDocumented: each value in values.yaml has a row in the
// README's table, its own or its parent's (`a.{b,c}`) or, for maps given
// as a whole (securityContext), an ancestor's.
func TestEveryValueDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "charts", "herald", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var vals map[string]any
	if err := yaml.Unmarshal(data, &vals); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "charts", "herald", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		key := m[1]
		if base, group, ok := strings.Cut(key, ".{"); ok {
			for _, leaf := range strings.Split(strings.TrimSuffix(group, "}"), ",") {
				rows[base+"."+leaf] = true
			}
			continue
		}
		rows[key] = true
	}
	var paths []string
	leaves("", vals, &paths)
	sort.Strings(paths)
	for _, p := range paths {
		documented := false
		for q := p; q != ""; {
			if rows[q] {
				documented = true
				break
			}
			i := strings.LastIndex(q, ".")
			if i < 0 {
				break
			}
			q = q[:i]
		}
		if !documented {
			t.Errorf("value %s has no row in charts/herald/README.md", p)
		}
	}
}
