// Package seeds reads the MetalLB manifests extracted from the operators'
// write-ups (shared/seeds/manifests) together with the expectations written in
// their header comments, so that tests can hold Herald to them.
package seeds

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// File is one seed manifest file.
type File struct {
	Path string
	Name string // base name, e.g. "002-bgp-flux-helm.yaml"
	// Raw is the file as written, for kubectl apply.
	Raw string
	// Docs are the YAML documents in order.
	Docs []Doc
	// Rejects names the documents the header says Herald must refuse.
	Rejects []string
	// Header is the leading comment block: the expectations in prose.
	Header string
}

// Doc is one YAML document of a seed file.
type Doc struct {
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	YAML       string
}

// Dir finds shared/seeds/manifests beside the checkout (CI clones the
// repository next to shared/), or where HERALD_SEEDS points.
func Dir(repoRoot string) (string, error) {
	if d := os.Getenv("HERALD_SEEDS"); d != "" {
		return d, nil
	}
	for _, c := range []string{
		filepath.Join(repoRoot, "..", "shared", "seeds", "manifests"),
		filepath.Join(repoRoot, "shared", "seeds", "manifests"),
	} {
		if st, err := os.Stat(c); err == nil && st.IsDir() {
			return c, nil
		}
	}
	return "", fmt.Errorf("seed manifests not found beside %s (set HERALD_SEEDS)", repoRoot)
}

var rejectRE = regexp.MustCompile(`reject for "([^"]+)"`)

// Load reads every *.yaml file in dir, sorted by name.
func Load(dir string) ([]File, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var files []File
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		f, err := Parse(p, raw)
		if err != nil {
			return nil, fmt.Errorf("seed %s: %w", filepath.Base(p), err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no seed manifests in %s", dir)
	}
	return files, nil
}

// Parse splits a seed file into documents and reads its header.
func Parse(path string, raw []byte) (File, error) {
	f := File{Path: path, Name: filepath.Base(path), Raw: string(raw)}
	var header strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "#") {
			break
		}
		header.WriteString(strings.TrimSpace(strings.TrimPrefix(line, "#")))
		header.WriteString("\n")
	}
	f.Header = header.String()
	for _, m := range rejectRE.FindAllStringSubmatch(f.Header, -1) {
		f.Rejects = append(f.Rejects, m[1])
	}
	for i, part := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
		if strings.TrimSpace(stripComments(part)) == "" {
			continue
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(part), &meta); err != nil {
			return f, fmt.Errorf("document %d: %w", i, err)
		}
		f.Docs = append(f.Docs, Doc{
			APIVersion: meta.APIVersion, Kind: meta.Kind,
			Name: meta.Metadata.Name, Namespace: meta.Metadata.Namespace,
			YAML: part,
		})
	}
	return f, nil
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l)
			b.WriteString("\n")
		}
	}
	return b.String()
}

// Namespaces lists the namespaces the file's documents live in, except the
// ones the file creates itself.
func (f File) Namespaces() []string {
	created := map[string]bool{}
	for _, d := range f.Docs {
		if d.Kind == "Namespace" {
			created[d.Name] = true
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, d := range f.Docs {
		ns := d.Namespace
		if ns == "" || created[ns] || seen[ns] {
			continue
		}
		seen[ns] = true
		out = append(out, ns)
	}
	return out
}

// ForTest loads the seed files for a test, failing it when they cannot be
// found: the seeds are part of the suite, and a test that skips silently
// without them could not fail.
func ForTest(t testing.TB, repoRoot string) []File {
	t.Helper()
	dir, err := Dir(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return files
}
