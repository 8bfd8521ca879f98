// Command image packs the static herald binary into a container image
// archive without a Docker engine or a registry: one layer holding /herald
// on an empty base, written in the `docker save` format that `docker load`,
// `ctr images import` and `kind load image-archive` all read, and optionally
// as an OCI image layout directory for tools such as crane and skopeo.
//
// It is a module of its own so that Herald's module does not depend on
// go-containerregistry.
//
//	go -C hack/image run . -binary ../../bin/herald -version v0.1.0 -out ../../dist/herald-v0.1.0.tar
package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// nobody is the user the image runs as: Herald needs no file it does not
// bring, and the controller needs no privilege. The speaker's Pod runs it as
// root instead, with every capability dropped but NET_RAW: a non-root
// process gets no effective capability from the Pod's `add` (no ambient
// capabilities in Kubernetes), and file capabilities would not survive
// allowPrivilegeEscalation: false (no_new_privs).
const nobody = "65534:65534"

type options struct {
	binary    string
	out       string
	ociLayout string
	image     string
	version   string
	revision  string
	created   string
	source    string
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "bin/herald", "the static herald binary to pack")
	flag.StringVar(&o.out, "out", "", "the image archive to write (docker save format); required")
	flag.StringVar(&o.ociLayout, "oci-layout", "", "also write an OCI image layout into this directory (replaced if it exists)")
	flag.StringVar(&o.image, "image", "", "the image name recorded in the archive (default ghcr.io/herald-lb/herald:<version>)")
	flag.StringVar(&o.version, "version", "dev", "the version, for the default tag and the labels")
	flag.StringVar(&o.revision, "revision", "", "the git commit, for the labels")
	flag.StringVar(&o.created, "created", "", "the image's creation time, RFC 3339 (default: the Unix epoch, so that the same binary gives the same image)")
	flag.StringVar(&o.source, "source", "https://github.com/herald-lb/herald", "the source repository, for the labels")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(o, log); err != nil {
		log.Error("image", "err", err)
		os.Exit(1)
	}
}

func run(o options, log *slog.Logger) error {
	if o.out == "" {
		return errors.New("-out is required")
	}
	if o.image == "" {
		o.image = "ghcr.io/herald-lb/herald:" + o.version
	}
	ref, err := name.NewTag(o.image, name.WeakValidation)
	if err != nil {
		return fmt.Errorf("image name %q: %w", o.image, err)
	}
	created := time.Unix(0, 0).UTC()
	if o.created != "" {
		if created, err = time.Parse(time.RFC3339, o.created); err != nil {
			return fmt.Errorf("-created: %w", err)
		}
	}

	bin, err := os.ReadFile(o.binary)
	if err != nil {
		return fmt.Errorf("binary: %w", err)
	}
	arch, err := staticLinuxArch(bin)
	if err != nil {
		return fmt.Errorf("binary %s: %w", o.binary, err)
	}

	img, err := build(bin, arch, created, labels(o, created))
	if err != nil {
		return err
	}

	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	// Written beside the target and renamed, so an interrupted run leaves no
	// truncated archive for a loader to choke on.
	tmp := o.out + ".partial"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", o.out, err)
	}
	if err := os.Rename(tmp, o.out); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	log.Info("wrote image archive", "path", o.out, "image", ref.String(), "digest", digest.String(), "arch", arch)

	if o.ociLayout != "" {
		if err := writeLayout(o.ociLayout, ref, img); err != nil {
			return fmt.Errorf("OCI layout %s: %w", o.ociLayout, err)
		}
		log.Info("wrote OCI layout", "path", o.ociLayout)
	}
	return nil
}

// build assembles the image: empty base, one layer, the runtime config.
func build(bin []byte, arch string, created time.Time, labels map[string]string) (v1.Image, error) {
	layerTar, err := singleFileTar("herald", bin, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	img, err = mutate.Config(img, v1.Config{
		Entrypoint: []string{"/herald"},
		User:       nobody,
		WorkingDir: "/",
		Labels:     labels,
	})
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	// mutate.Config sets only the runtime part; the platform and times live
	// beside it in the config file.
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = arch
	cf.Created = v1.Time{Time: created}
	cf.History = []v1.History{{Created: v1.Time{Time: created}, CreatedBy: "hack/image: COPY herald /herald"}}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return img, nil
}

func labels(o options, created time.Time) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       "herald",
		"org.opencontainers.image.description": "Bare-metal LoadBalancer for Kubernetes, a drop-in replacement for MetalLB",
		"org.opencontainers.image.version":     o.version,
		"org.opencontainers.image.source":      o.source,
		"org.opencontainers.image.url":         o.source,
		"org.opencontainers.image.created":     created.Format(time.RFC3339),
	}
	if o.revision != "" {
		l["org.opencontainers.image.revision"] = o.revision
	}
	return l
}

// singleFileTar is the layer's content: the binary, executable by anyone,
// owned by root so that the unprivileged user cannot replace it.
func singleFileTar(path string, data []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     path,
		Mode:     0o755,
		Size:     int64(len(data)),
		ModTime:  mtime,
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// staticLinuxArch returns the binary's GOARCH and refuses anything that
// could not run on an empty base: a dynamically linked binary (built with
// cgo) needs a loader and a libc the image does not have.
func staticLinuxArch(bin []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return "", fmt.Errorf("not a Linux ELF executable: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", errors.New("dynamically linked (build with CGO_ENABLED=0, as `make build` does)")
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	case elf.EM_ARM:
		return "arm", nil
	case elf.EM_RISCV:
		return "riscv64", nil
	case elf.EM_PPC64:
		return "ppc64le", nil
	case elf.EM_S390:
		return "s390x", nil
	}
	return "", fmt.Errorf("unsupported machine %v", f.Machine)
}

// writeLayout writes a fresh OCI image layout. The two name annotations are
// what `ctr images import` (io.containerd.image.name, the full name) and the
// OCI tools (org.opencontainers.image.ref.name, the tag) read as the name.
func writeLayout(dir string, ref name.Tag, img v1.Image) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          ref.Name(),
		"org.opencontainers.image.ref.name": ref.TagStr(),
	}))
}
