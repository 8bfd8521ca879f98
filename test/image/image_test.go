// Package image tests `make image`'s output from outside: it packs a freshly
// built herald with hack/image, then reads the archive with nothing but the
// standard library, the way a loader would, and runs the binary it finds.
// (go-containerregistry's own reading of the archive is tested in
// hack/image, which is a separate module.)
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// archiveManifest is one entry of a `docker save` archive's manifest.json.
type archiveManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Entrypoint []string
		Cmd        []string
		User       string
		Labels     map[string]string
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

func TestImageArchive(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image holds a Linux binary")
	}
	root := repoRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "herald-build")
	const version = "v0.0.0-imagetest"

	build := exec.Command("go", "build", "-trimpath", "-ldflags",
		"-X github.com/herald-lb/herald/internal/version.Version="+version, "-o", bin, "./cmd/herald")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	archive := filepath.Join(dir, "herald.tar")
	pack := exec.Command("go", "-C", filepath.Join(root, "hack", "image"), "run", ".",
		"-binary", bin, "-version", version, "-revision", "0123abc", "-out", archive)
	if out, err := pack.CombinedOutput(); err != nil {
		t.Fatalf("hack/image: %v\n%s", err, out)
	}

	files := readTar(t, archive)
	var manifests []archiveManifest
	if err := json.Unmarshal(files["manifest.json"], &manifests); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifests) != 1 {
		t.Fatalf("manifest.json has %d images, want 1", len(manifests))
	}
	m := manifests[0]
	if want := []string{"ghcr.io/herald-lb/herald:" + version}; !equal(m.RepoTags, want) {
		t.Errorf("RepoTags = %q, want %q", m.RepoTags, want)
	}
	if len(m.Layers) != 1 {
		t.Fatalf("%d layers, want 1", len(m.Layers))
	}

	var cfg imageConfig
	if err := json.Unmarshal(files[m.Config], &cfg); err != nil {
		t.Fatalf("config %s: %v", m.Config, err)
	}
	checks := []struct {
		what      string
		got, want string
	}{
		{"os", cfg.OS, "linux"},
		{"architecture", cfg.Architecture, runtime.GOARCH},
		{"entrypoint", strings.Join(cfg.Config.Entrypoint, " "), "/herald"},
		{"cmd", strings.Join(cfg.Config.Cmd, " "), ""},
		{"user's uid", strings.SplitN(cfg.Config.User, ":", 2)[0], "65534"},
		{"version label", cfg.Config.Labels["org.opencontainers.image.version"], version},
		{"revision label", cfg.Config.Labels["org.opencontainers.image.revision"], "0123abc"},
		{"title label", cfg.Config.Labels["org.opencontainers.image.title"], "herald"},
		{"source label", cfg.Config.Labels["org.opencontainers.image.source"], "https://github.com/herald-lb/herald"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if len(cfg.RootFS.DiffIDs) != 1 {
		t.Errorf("rootfs has %d diff_ids, want 1", len(cfg.RootFS.DiffIDs))
	}

	// The layer holds the binary and nothing else.
	zr, err := gzip.NewReader(bytes.NewReader(files[m.Layers[0]]))
	if err != nil {
		t.Fatalf("layer %s: %v", m.Layers[0], err)
	}
	layer := readTarStream(t, zr)
	if len(layer) != 1 || layer["herald"] == nil {
		t.Fatalf("layer holds %q, want only herald", keys(layer))
	}
	extracted := filepath.Join(dir, "herald-from-image")
	if err := os.WriteFile(extracted, layer["herald"], 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(extracted, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("herald version from the image: %v\n%s", err, out)
	}
	if want := "herald " + version + " "; !strings.HasPrefix(string(out), want) {
		t.Errorf("herald version printed %q, want it to start with %q", out, want)
	}
}

func readTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readTarStream(t, f)
}

// readTarStream returns the regular files of a tar stream by name; the
// image's mode bits are checked here too, since the entrypoint must be
// executable.
func readTarStream(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			t.Errorf("tar entry %s has type %q, want a regular file", h.Name, h.Typeflag)
			continue
		}
		if h.Name == "herald" && h.Mode&0o111 != 0o111 {
			t.Errorf("herald's mode is %o, want executable by all", h.Mode)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("tar %s: %v", h.Name, err)
		}
		files[h.Name] = b
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func equal(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00")
}

func keys(m map[string][]byte) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}
