package manifest

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/ipam"
)

// FuzzValidate runs one file through what `herald validate` does: split into
// documents, decode every metallb.io kind and herald-lb.io's
// CloudAdvertisement, build and check the configuration. Beyond not
// panicking: the same input gives the same report; every finding says
// something and points at a line of the file; the report agrees with
// Decode followed by config.Validate; and a valid configuration is one the
// controller's allocator takes and whose lookups by name find every object.
//
// The seed corpus (testdata/fuzz/FuzzValidate) holds the operators' seed
// manifests, the YAML of the docs and the manifests of the tests.
func FuzzValidate(f *testing.F) {
	f.Add([]byte(poolYAML))
	f.Add([]byte(cloudYAML))
	f.Fuzz(func(t *testing.T, data []byte) {
		srcs := []Source{{Name: "in.yaml", Data: data}}
		r := Validate(srcs, DefaultNamespace)
		if again := Validate(srcs, DefaultNamespace); !reflect.DeepEqual(r, again) {
			t.Fatalf("two runs disagree:\n%+v\n%+v", r, again)
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, fs := range [][]Finding{r.Problems, r.Warnings} {
			for _, fd := range fs {
				placed := fd.File == "in.yaml" && fd.Line >= 1 && fd.Line <= lines
				if fd.Message == "" || !placed && fd.File != "(all files)" {
					t.Fatalf("finding %+v: no message, or not at a line of the %d-line file", fd, lines)
				}
			}
		}
		res, dr := Decode(srcs, DefaultNamespace)
		cr := config.Validate(res)
		if want := len(dr.Problems) == 0 && len(cr.Problems) == 0; r.Valid() != want {
			t.Fatalf("Validate says valid=%v; Decode has %d problems, config.Validate %d", r.Valid(), len(dr.Problems), len(cr.Problems))
		}
		if len(cr.Problems) > 0 {
			return
		}
		checkConfig(t, cr.Config)
	})
}

// checkConfig checks what the controller and the speakers rely on in a
// configuration that passed validation.
func checkConfig(t *testing.T, cfg *config.Config) {
	t.Helper()
	if cfg == nil {
		t.Fatal("no problems but no configuration")
	}
	if _, err := ipam.New().SetPools(cfg.IPAMPools()); err != nil {
		t.Fatalf("the allocator refuses the valid pools: %v", err)
	}
	for _, p := range cfg.Pools {
		if cfg.Pool(p.Name) != p {
			t.Fatalf("Pool(%q) does not find it among %d pools", p.Name, len(cfg.Pools))
		}
	}
	for _, p := range cfg.Peers {
		if cfg.Peer(p.Name) != p {
			t.Fatalf("Peer(%q) does not find it among %d peers", p.Name, len(cfg.Peers))
		}
	}
	for _, p := range cfg.BFDProfiles {
		if cfg.BFDProfile(p.Name) != p {
			t.Fatalf("BFDProfile(%q) does not find it among %d profiles", p.Name, len(cfg.BFDProfiles))
		}
	}
}
