package main

import (
	"archive/tar"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestImage packs a freshly built herald, reads both outputs back with
// go-containerregistry, and runs the binary found in the layer.
func TestImage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image holds a Linux binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "herald-build")
	const version = "v0.0.0-imagetest"
	build := exec.Command("go", "build", "-trimpath", "-ldflags",
		"-X github.com/herald-lb/herald/internal/version.Version="+version, "-o", bin, "./cmd/herald")
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	o := options{
		binary:    bin,
		out:       filepath.Join(dir, "herald.tar"),
		ociLayout: filepath.Join(dir, "oci"),
		version:   version,
		source:    "https://github.com/herald-lb/herald",
	}
	if err := run(o, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}

	img, err := tarball.ImageFromPath(o.out, nil)
	if err != nil {
		t.Fatalf("ImageFromPath: %v", err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("the archive's image is inconsistent: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != "/herald" {
		t.Errorf("entrypoint %q, want /herald", got)
	}
	if got := cf.Config.User; got != nobody {
		t.Errorf("user %q, want %q", got, nobody)
	}
	if got := cf.Config.Labels["org.opencontainers.image.version"]; got != version {
		t.Errorf("version label %q, want %q", got, version)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}

	// The layout holds the same image under the same digest.
	want, _ := img.Digest()
	idx, err := layout.ImageIndexFromPath(o.ociLayout)
	if err != nil {
		t.Fatalf("OCI layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != want {
		t.Errorf("OCI layout index %+v, want one manifest %s", im.Manifests, want)
	} else if got := im.Manifests[0].Annotations["io.containerd.image.name"]; got != "ghcr.io/herald-lb/herald:"+version {
		t.Errorf("OCI layout name %q", got)
	}

	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	if err != nil || h.Name != "herald" {
		t.Fatalf("first layer entry %v, %v; want herald", h, err)
	}
	extracted := filepath.Join(dir, "herald-from-image")
	f, err := os.OpenFile(extracted, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, tr); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("the layer holds more than herald (next: %v)", err)
	}
	out, err := exec.Command(extracted, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("herald version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "herald "+version+" ") {
		t.Errorf("herald version printed %q", out)
	}
}

// TestRefusesDynamicBinary: an image of a cgo binary would fail only at run
// time on the empty base, so the packer refuses it up front.
func TestRefusesDynamicBinary(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{"dynamic", mustLookPath(t, "ls"), "dynamically linked"},
		{"not ELF", "main.go", "not a Linux ELF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := os.ReadFile(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = staticLinuxArch(b)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("staticLinuxArch(%s) = %v, want an error with %q", tc.path, err, tc.wantErr)
			}
		})
	}
}

func mustLookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found", name)
	}
	return p
}
