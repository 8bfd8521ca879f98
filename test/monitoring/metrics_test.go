// Package monitoring checks that what the Helm chart monitors exists: every
// metric name its dashboards, alerts and templates mention is one Herald
// exports. A renamed metric otherwise shows up only as an empty panel or an
// alert that can never fire.
package monitoring

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var metricName = regexp.MustCompile(`\b(metallb|herald)_[a-z0-9_]+`)

func TestChartMetricsExist(t *testing.T) {
	root := repoRoot(t)
	chart := filepath.Join(root, "charts", "herald")
	if _, err := os.Stat(chart); err != nil {
		if os.Getenv("HERALD_REQUIRE_ENVTEST") != "" {
			t.Fatalf("the Helm chart %s is missing: %v", chart, err)
		}
		t.Skipf("no Helm chart at %s", chart)
	}

	used := chartMetricNames(t, chart)
	if len(used) == 0 {
		if os.Getenv("HERALD_REQUIRE_ENVTEST") == "" {
			t.Skipf("no metallb_*/herald_* metric name in %s yet", chart)
		}
		t.Fatalf("no metallb_*/herald_* metric name found in %s: the chart monitors nothing, or this test reads the wrong files", chart)
	}
	exported := goMetricNames(t, filepath.Join(root, "internal"))
	if len(exported) == 0 {
		t.Fatal("no metric name found in internal/: this test's reading of the Go code is broken")
	}

	for _, name := range slices.Sorted(maps.Keys(used)) {
		if ok, why := exists(name, exported); !ok {
			t.Errorf("%s (used in %s) is not a metric Herald exports%s", name, strings.Join(used[name], ", "), why)
		}
	}
}

// exists reports whether a name from PromQL is an exported series: the
// metric itself, or a histogram's/summary's _bucket/_sum/_count series.
func exists(name string, exported map[string]kind) (bool, string) {
	if _, ok := exported[name]; ok {
		return true, ""
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch k, found := exported[base]; {
		case !found:
		case k == histogram, k == summary && suffix != "_bucket":
			return true, ""
		default:
			return false, " (" + base + " exists but is not a histogram)"
		}
	}
	return false, ""
}

// chartMetricNames maps each metric name in the chart's templates, values
// and dashboards to the files that mention it.
func chartMetricNames(t *testing.T, chart string) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	err := filepath.WalkDir(chart, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml", ".json", ".tpl":
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(chart, path)
		for _, n := range slices.Compact(slices.Sorted(slices.Values(metricName.FindAllString(string(b), -1)))) {
			used[n] = append(used[n], rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the chart: %v", err)
	}
	return used
}

type kind int

const (
	plain kind = iota
	histogram
	summary
)

// goMetricNames finds the metric names in Herald's Go code: every string
// literal that is a whole metallb_*/herald_* name, outside tests. A name
// given as the Name of a HistogramOpts or SummaryOpts is marked as such, so
// that PromQL's _bucket/_sum/_count series are accepted only for those.
// (The speaker's metrics are unexported types built inside the speaker, so
// reading the source is simpler than registering them.)
func goMetricNames(t *testing.T, dir string) map[string]kind {
	t.Helper()
	whole := regexp.MustCompile(`^(metallb|herald)_[a-z0-9_]+$`)
	names := map[string]kind{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				k := optsKind(n.Type)
				if k == plain {
					return true
				}
				for _, e := range n.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					if id, ok := kv.Key.(*ast.Ident); ok && id.Name == "Name" {
						if s, ok := stringLit(kv.Value); ok && whole.MatchString(s) {
							names[s] = k
						}
					}
				}
			case *ast.BasicLit:
				if s, ok := stringLit(n); ok && whole.MatchString(s) {
					if _, seen := names[s]; !seen {
						names[s] = plain
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatalf("reading the Go code: %v", err)
	}
	return names
}

func optsKind(typ ast.Expr) kind {
	sel, ok := typ.(*ast.SelectorExpr)
	if !ok {
		return plain
	}
	switch sel.Sel.Name {
	case "HistogramOpts":
		return histogram
	case "SummaryOpts":
		return summary
	}
	return plain
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// TestExists checks the matching itself, on a known set of names.
func TestExists(t *testing.T) {
	exported := map[string]kind{
		"metallb_speaker_announced":    plain,
		"herald_reconcile_seconds":     histogram,
		"herald_probe_latency_seconds": summary,
		"metallb_bgp_updates_total":    plain,
	}
	tests := []struct {
		name string
		want bool
	}{
		{"metallb_speaker_announced", true},
		{"metallb_bgp_updates_total", true},
		{"metallb_speaker_announce", false},
		{"herald_reconcile_seconds_bucket", true},
		{"herald_reconcile_seconds_sum", true},
		{"herald_reconcile_seconds_count", true},
		{"herald_probe_latency_seconds_count", true},
		{"herald_probe_latency_seconds_bucket", false},
		{"metallb_speaker_announced_count", false},
		{"metallb_bgp_updates_total_sum", false},
		{"herald_missing_bucket", false},
	}
	for _, tc := range tests {
		if got, _ := exists(tc.name, exported); got != tc.want {
			t.Errorf("exists(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestGoMetricNames checks that the Go reading finds the names the
// controller and speaker are known to register, histograms marked as such.
func TestGoMetricNames(t *testing.T) {
	dir := t.TempDir()
	src := `package x

import "github.com/prometheus/client_golang/prometheus"

var (
	_ = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "metallb_speaker_announced"}, nil)
	_ = prometheus.NewHistogram(prometheus.HistogramOpts{Help: "h", Name: "herald_reconcile_seconds"})
	_ = prometheus.NewDesc("metallb_bgp_session_up", "", nil, nil)
	_ = "metallb_ prefix alone, and metallb_in_a_sentence"
)
`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x_test.go"), []byte("package x\nvar _ = \"herald_only_in_a_test\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := goMetricNames(t, dir)
	want := map[string]kind{
		"metallb_speaker_announced": plain,
		"herald_reconcile_seconds":  histogram,
		"metallb_bgp_session_up":    plain,
	}
	if !maps.Equal(got, want) {
		t.Errorf("goMetricNames = %v, want %v", got, want)
	}

	// And the real code: names from each of the three places metrics are defined.
	real := goMetricNames(t, filepath.Join(repoRoot(t), "internal"))
	for _, n := range []string{"metallb_allocator_addresses_in_use_total", "metallb_layer2_requests_received", "metallb_bgp_session_up"} {
		if _, ok := real[n]; !ok {
			t.Errorf("%s not found in internal/", n)
		}
	}
}
