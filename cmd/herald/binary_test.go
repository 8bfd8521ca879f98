package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// clientGoTesting is test support that client-go's typed clients import
// themselves (k8s.io/client-go/gentype, for its fake clients): no herald
// code reaches it, and neither package has an init or package state that
// does anything at start.
var clientGoTesting = map[string]bool{
	"k8s.io/client-go/testing":                        true,
	"k8s.io/apimachinery/pkg/api/meta/testrestmapper": true,
}

// stdTestingImporters may import the standard testing package in the
// shipped binary: hcloud-go's hcloud package keeps a test helper
// (testing.go, mustParseTime) outside its _test files. Importing testing
// runs no init that touches the filesystem or flags (testing.Init is only
// called by a test main); anything else that imports it still fails.
var stdTestingImporters = map[string]bool{
	"github.com/hetznercloud/hcloud-go/v2/hcloud": true,
}

// testMachinery reports whether an import path is test code: the testing
// package, envtest and its control plane, and Herald's own test-only
// packages (the lab, the test cluster, the seeds, the namespace helpers).
func testMachinery(pkg string) bool {
	if clientGoTesting[pkg] {
		return false
	}
	switch {
	case pkg == "testing", strings.HasPrefix(pkg, "testing/"),
		strings.Contains(pkg, "/envtest"),
		strings.Contains(pkg, "/testing/"), strings.HasSuffix(pkg, "/testing"),
		strings.HasSuffix(pkg, "/internal/lab"), strings.HasSuffix(pkg, "/internal/testcluster"),
		strings.HasSuffix(pkg, "/internal/seeds"), strings.Contains(pkg, "/nstest"):
		return true
	}
	return false
}

// TestShippedBinaryHasNoTestMachinery: the binary `make build` and `make
// image` ship links no test code. envtest once came in through the lab
// subcommand, and its package init (mkdir of a cache folder) crashed the
// speaker on a read-only root filesystem.
func TestShippedBinaryHasNoTestMachinery(t *testing.T) {
	for _, tc := range []struct {
		tags    string
		wantLab bool // the lab's packages are (only) in the lab build
	}{
		{"", false},
		{"lab", true},
	} {
		t.Run("tags="+tc.tags, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-tags", tc.tags, "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", ".").Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			importers := map[string][]string{}
			var found []string
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				f := strings.Fields(line)
				for _, imp := range f[1:] {
					importers[imp] = append(importers[imp], f[0])
				}
				if testMachinery(f[0]) {
					found = append(found, f[0])
				}
			}
			if tc.wantLab {
				if len(found) == 0 {
					t.Error("the lab build has no lab: -tags lab no longer selects lab.go")
				}
				return
			}
			for _, pkg := range found {
				by := importers[pkg]
				if pkg == "testing" && !slices.ContainsFunc(by, func(p string) bool { return !stdTestingImporters[p] }) {
					continue
				}
				t.Errorf("%s is in the shipped binary (imported by %s)", pkg, strings.Join(by, ", "))
			}
		})
	}
}

// TestShippedBinaryStartsOnReadOnlyRoot runs the shipped binary with no
// writable cache, home or temporary folder, as on a read-only root
// filesystem: no package init may need one. The paths lie under a regular
// file, so mkdir fails even for root.
func TestShippedBinaryStartsOnReadOnlyRoot(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "herald")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	file := filepath.Join(dir, "not-a-folder")
	if err := os.WriteFile(file, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	nowhere := filepath.Join(file, "x")
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + nowhere, "XDG_CACHE_HOME=" + nowhere, "TMPDIR=" + nowhere}
	for _, tc := range []struct {
		args []string
		want string // in the output
	}{
		{[]string{"version"}, "herald "},
		{[]string{"speaker", "--help"}, "-node-name"},
		{[]string{"controller", "--help"}, "-webhook"},
		{[]string{"help"}, "speaker"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if strings.Contains(string(out), "panic") || !strings.Contains(string(out), tc.want) {
				t.Fatalf("herald %s (%v):\n%s", strings.Join(tc.args, " "), err, out)
			}
			if strings.Contains(string(out), "lab-down") {
				t.Errorf("herald %s offers the lab's subcommands:\n%s", strings.Join(tc.args, " "), out)
			}
		})
	}
}
