package api_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestGeneratedFilesAreFresh runs controller-gen (pinned in go.mod) into a
// scratch folder and compares its output with the committed CRDs and
// deepcopy code: a change to the types without `make generate` fails here.
func TestGeneratedFilesAreFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("runs controller-gen")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	scratch := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", append([]string{"tool", "controller-gen"}, args...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("controller-gen %v: %v\n%s", args, err, out)
		}
	}
	run("crd", "paths=./api/...", "output:crd:artifacts:config="+filepath.Join(scratch, "crd"))
	compareDirs(t, filepath.Join(root, "config", "crd", "bases"), filepath.Join(scratch, "crd"), "*.yaml")

	// Deepcopy is written beside the types, so generate it in a copy of
	// the module's api tree.
	mod := filepath.Join(scratch, "mod")
	copyTree(t, filepath.Join(root, "api"), filepath.Join(mod, "api"))
	copyTree(t, filepath.Join(root, "hack"), filepath.Join(mod, "hack"))
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mod, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "tool", "controller-gen", "object:headerFile=hack/boilerplate.go.txt", "paths=./api/...")
	cmd.Dir = mod
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen object: %v\n%s", err, out)
	}
	for _, v := range []string{"v1alpha1", "v1beta1", "v1beta2"} {
		compareDirs(t, filepath.Join(root, "api", v), filepath.Join(mod, "api", v), "zz_generated.deepcopy.go")
	}
}

func compareDirs(t *testing.T, committed, fresh, pattern string) {
	t.Helper()
	want, _ := filepath.Glob(filepath.Join(fresh, pattern))
	have, _ := filepath.Glob(filepath.Join(committed, pattern))
	if len(want) != len(have) {
		t.Errorf("%s: %d files committed, controller-gen makes %d: run `make generate`", committed, len(have), len(want))
	}
	for _, f := range want {
		a, err := os.ReadFile(filepath.Join(committed, filepath.Base(f)))
		if err != nil {
			t.Errorf("%v: run `make generate`", err)
			continue
		}
		b, _ := os.ReadFile(f)
		if !bytes.Equal(a, b) {
			t.Errorf("%s is stale: run `make generate`", filepath.Join(committed, filepath.Base(f)))
		}
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
