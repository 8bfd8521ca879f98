package manifest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-lb/herald/internal/seeds"
)

func TestSplitDocuments(t *testing.T) {
	in := "# header comment\n" + // 1
		"---\n" + // 2
		"a: 1\n" + // 3
		"--- # second\n" + // 4
		"\n" + // 5
		"# lead\n" + // 6
		"b: 2\n" + // 7
		"---\n" + // 8
		"# only a comment\n" + // 9
		"---\n" + // 10
		"c: 3\n" + // 11
		"...\n" + // 12
		"--- d: 4\n" // 13
	docs := splitDocuments(0, []byte(in))
	want := []struct {
		line int
		text string
	}{{3, "a: 1"}, {7, "b: 2"}, {11, "c: 3"}, {13, "d: 4"}}
	if len(docs) != len(want) {
		t.Fatalf("got %d documents, want %d: %+v", len(docs), len(want), docs)
	}
	for i, w := range want {
		if docs[i].line != w.line || !strings.Contains(string(docs[i].data), w.text) || docs[i].index != i {
			t.Errorf("document %d: line %d index %d %q; want line %d containing %q", i, docs[i].line, docs[i].index, docs[i].data, w.line, w.text)
		}
	}
}

const poolYAML = `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: pool
spec:
  addresses:
  - 192.0.2.0/24
`

// cloudYAML is seed 000's floating IP as a pool, announced through Hetzner
// Cloud's API (the address moved into a documentation range).
const cloudYAML = `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: fip
spec:
  addresses:
  - 198.51.100.24/32
---
apiVersion: herald-lb.io/v1alpha1
kind: CloudAdvertisement
metadata:
  name: hetzner
spec:
  ipAddressPools: [fip]
  provider: hetzner
  tokenSecretRef:
    name: hcloud
`

func validate(t *testing.T, ns string, files ...string) Report {
	t.Helper()
	var srcs []Source
	for i := 0; i+1 < len(files); i += 2 {
		srcs = append(srcs, Source{Name: files[i], Data: []byte(files[i+1])})
	}
	return Validate(srcs, ns)
}

// hasFinding reports whether a finding's formatted line contains every
// fragment.
func hasFinding(fs []Finding, fragments ...string) bool {
	for _, f := range fs {
		s := f.String()
		ok := true
		for _, fr := range fragments {
			if !strings.Contains(s, fr) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		ns        string
		files     []string
		valid     bool
		objects   int
		fragments []string // of one problem, or of a warning when valid
	}{
		{name: "valid, namespace defaulted", files: []string{"a.yaml", poolYAML + "---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: l2\n"},
			valid: true, objects: 2},
		{name: "other kinds ignored", files: []string{"a.yaml", poolYAML + "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n"},
			valid: true, objects: 1},
		{name: "status kinds ignored", files: []string{"a.yaml", poolYAML + "---\napiVersion: metallb.io/v1beta1\nkind: ConfigurationState\nmetadata:\n  name: controller\n"},
			valid: true, objects: 1},
		{name: "object in another namespace", files: []string{"a.yaml", strings.Replace(poolYAML, "  name: pool\n", "  name: pool\n  namespace: metallb\n", 1)},
			objects: 1, fragments: []string{"a.yaml:1: IPAddressPool/pool: metadata.namespace:", `namespace "metallb-system"`, "--namespace"}},
		{name: "namespace flag", ns: "metallb", files: []string{"a.yaml", strings.Replace(poolYAML, "  name: pool\n", "  name: pool\n  namespace: metallb\n", 1)},
			valid: true, objects: 1},
		{name: "config problem placed at its document", files: []string{"a.yaml", "# comment\n---\n" + strings.Replace(poolYAML, "192.0.2.0/24", "192.168.1.300/24", 1)},
			objects: 1, fragments: []string{"a.yaml:3: IPAddressPool/pool: spec.addresses[0]: ", "not a valid IP address"}},
		{name: "unknown metallb.io kind", files: []string{"a.yaml", "apiVersion: metallb.io/v1beta1\nkind: AddressPool\nmetadata:\n  name: old\n"},
			objects: 1, fragments: []string{"a.yaml:1: AddressPool/old: ", "unknown metallb.io kind or version"}},
		{name: "unknown metallb.io version", files: []string{"a.yaml", strings.Replace(poolYAML, "v1beta1", "v1", 1)},
			objects: 1, fragments: []string{"IPAddressPool/pool", `"metallb.io/v1 IPAddressPool"`}},
		{name: "unknown field", files: []string{"a.yaml", poolYAML + "  nodeSelector: {}\n"},
			objects: 1, fragments: []string{"IPAddressPool/pool", `unknown field "nodeSelector"`}},
		{name: "bad YAML", files: []string{"a.yaml", poolYAML + "---\nkind: [\n"},
			objects: 1, fragments: []string{"a.yaml:9: ", "not a valid YAML object"}},
		{name: "no kind", files: []string{"a.yaml", "metadata:\n  name: x\n"},
			fragments: []string{"a.yaml:1: ", "no apiVersion or kind"}},
		{name: "object defined twice", files: []string{"a.yaml", poolYAML, "b.yaml", poolYAML},
			objects: 1, fragments: []string{"b.yaml:1: IPAddressPool/pool: also defined at a.yaml:1"}},
		{name: "overlap across files", files: []string{"a.yaml", poolYAML, "b.yaml", strings.NewReplacer("name: pool", "name: other", "192.0.2.0/24", "192.0.2.128/25").Replace(poolYAML)},
			objects: 2, fragments: []string{"b.yaml:1: IPAddressPool/other: spec.addresses[0]", "overlaps"}},
		{name: "v1 List", files: []string{"a.yaml", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: metallb.io/v1beta1\n  kind: IPAddressPool\n  metadata:\n    name: p\n  spec:\n    addresses: [192.0.2.0/24]\n- apiVersion: metallb.io/v1beta1\n  kind: IPAddressPool\n  metadata:\n    name: q\n  spec:\n    addresses: [192.0.2.0/25]\n"},
			objects: 2, fragments: []string{"a.yaml:1: IPAddressPool/q", "overlaps"}},
		{name: "JSON", files: []string{"a.json", `{"apiVersion":"metallb.io/v1beta1","kind":"IPAddressPool","metadata":{"name":"p"},"spec":{"addresses":["192.0.2.0/24"]}}`},
			valid: true, objects: 1},
		{name: "v1beta1 BGPPeer converted, with a deprecation warning", files: []string{"a.yaml", "apiVersion: metallb.io/v1beta1\nkind: BGPPeer\nmetadata:\n  name: q\nspec:\n  myASN: 64500\n  peerASN: 64501\n  peerAddress: 192.0.2.1\n"},
			valid: true, objects: 1, fragments: []string{"BGPPeer/q", "deprecated"}},
		{name: "password Secret read from the files", files: []string{"a.yaml", "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: q\nspec:\n  myASN: 64500\n  peerASN: 64501\n  peerAddress: 192.0.2.1\n  passwordSecret:\n    name: pw\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: pw\ntype: kubernetes.io/basic-auth\nstringData:\n  password: x\n"},
			valid: true, objects: 1},
		{name: "CloudAdvertisement", files: []string{"a.yaml", cloudYAML}, valid: true, objects: 2},
		{name: "CloudAdvertisement with an unknown provider", files: []string{"a.yaml", strings.Replace(cloudYAML, "provider: hetzner", "provider: vultr", 1)},
			objects: 2, fragments: []string{"a.yaml:9: CloudAdvertisement/hetzner: spec.provider: ", `unknown provider "vultr"`}},
		{name: "pool announced by Layer 2 and the cloud", files: []string{"a.yaml", cloudYAML, "b.yaml", "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: lan\n"},
			objects: 3, fragments: []string{"b.yaml:1: L2Advertisement/lan: spec.ipAddressPools: ", `pool "fip" is announced by L2Advertisement "lan" and CloudAdvertisement "hetzner"`, "ARP/NDP answers for it are never seen"}},
		{name: "unknown herald-lb.io kind", files: []string{"a.yaml", "apiVersion: herald-lb.io/v1alpha1\nkind: FloatingIP\nmetadata:\n  name: f\n"},
			objects: 1, fragments: []string{"FloatingIP/f", "unknown herald-lb.io kind or version", "CloudAdvertisement in herald-lb.io/v1alpha1"}},
		{name: "CloudAdvertisement field unknown", files: []string{"a.yaml", cloudYAML + "  interfaces: [eth0]\n"},
			objects: 2, fragments: []string{"CloudAdvertisement/hetzner", `unknown field "interfaces"`}},
		{name: "password Secret missing", files: []string{"a.yaml", "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: q\nspec:\n  myASN: 64500\n  peerASN: 64501\n  peerAddress: 192.0.2.1\n  passwordSecret:\n    name: pw\n"},
			objects: 1, fragments: []string{"BGPPeer/q: spec.passwordSecret.name: ", "does not exist"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := tc.ns
			if ns == "" {
				ns = DefaultNamespace
			}
			r := validate(t, ns, tc.files...)
			if r.Valid() != tc.valid {
				t.Fatalf("valid = %v, want %v; problems:\n%v", r.Valid(), tc.valid, r.Problems)
			}
			if r.Objects != tc.objects {
				t.Errorf("objects = %d, want %d", r.Objects, tc.objects)
			}
			list := r.Problems
			if tc.valid {
				list = r.Warnings
			}
			if len(tc.fragments) > 0 && !hasFinding(list, tc.fragments...) {
				t.Errorf("no finding containing %q in:\nproblems %v\nwarnings %v", tc.fragments, r.Problems, r.Warnings)
			}
		})
	}
}

func TestDecodeFeedsCoreKinds(t *testing.T) {
	in := poolYAML + "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n  labels:\n    team: a\n" +
		"---\napiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n" +
		"---\napiVersion: metallb.io/v1beta1\nkind: BGPPeer\nmetadata:\n  name: q\nspec:\n  myASN: 64500\n  peerASN: 64501\n  peerAddress: 192.0.2.1\n"
	res, rep := Decode([]Source{{Name: "a.yaml", Data: []byte(in)}}, "herald")
	if len(rep.Problems) != 0 {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if len(res.Namespaces) != 1 || res.Namespaces[0].Labels["team"] != "a" || len(res.Nodes) != 1 {
		t.Errorf("namespaces %v nodes %v", res.Namespaces, res.Nodes)
	}
	if len(res.Pools) != 1 || res.Pools[0].Namespace != "herald" || res.Namespace != "herald" {
		t.Errorf("pool namespace not defaulted: %+v", res.Pools)
	}
	// v1beta1 without holdTime converts to "unset" (the 90s default), not
	// to an explicit 0s as in MetalLB.
	if len(res.BGPPeers) != 1 || res.BGPPeers[0].Spec.HoldTime != nil {
		t.Errorf("v1beta1 peer converted to %+v", res.BGPPeers)
	}
}

func TestFindingString(t *testing.T) {
	f := Finding{File: "f.yaml", Line: 3, Kind: "L2Advertisement", Name: "x", Field: "spec.interfaces[0]", Message: "bad"}
	if got, want := f.String(), "f.yaml:3: L2Advertisement/x: spec.interfaces[0]: bad"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	f = Finding{File: "f.yaml", Message: "bad"}
	if got, want := f.String(), "f.yaml: bad"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestReportWrite(t *testing.T) {
	var buf bytes.Buffer
	r := validate(t, DefaultNamespace, "a.yaml", poolYAML)
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "1 object valid\n" {
		t.Errorf("output %q", buf.String())
	}
}

func TestReadSources(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"b.yaml": poolYAML, "a.yml": "x: 1\n", "c.json": "{}", "notes.txt": "no"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srcs, err := ReadSources([]string{dir, "-"}, func() ([]byte, error) { return []byte(poolYAML), nil })
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range srcs {
		names = append(names, filepath.Base(s.Name))
	}
	if got := strings.Join(names, " "); got != "a.yml b.yaml c.json <stdin>" {
		t.Errorf("sources %s", got)
	}
	if _, err := ReadSources([]string{filepath.Join(dir, "missing.yaml")}, nil); err == nil {
		t.Error("a missing file was read")
	}
}

// TestSeeds checks each seed file on its own: every one is valid except
// the documents its header says to reject.
func TestSeeds(t *testing.T) {
	files := seeds.ForTest(t, "../..")
	for _, f := range files {
		t.Run(f.Name, func(t *testing.T) {
			ns := DefaultNamespace
			for _, d := range f.Docs {
				if strings.HasPrefix(d.APIVersion, "metallb.io/") && d.Namespace != "" {
					ns = d.Namespace
				}
			}
			r := Validate([]Source{{Name: f.Name, Data: []byte(f.Raw)}}, ns)
			if len(f.Rejects) == 0 {
				if !r.Valid() {
					t.Errorf("refused:\n%v", r.Problems)
				}
				return
			}
			for _, p := range r.Problems {
				found := false
				for _, name := range f.Rejects {
					found = found || p.Name == name
				}
				if !found {
					t.Errorf("unexpected problem %s", p)
				}
			}
			for _, name := range f.Rejects {
				if !hasFinding(r.Problems, "/"+name+": ") {
					t.Errorf("%s not refused: %v", name, r.Problems)
				}
			}
		})
	}
}
