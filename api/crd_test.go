package api_test

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/internal/seeds"
)

const crdDir = "../config/crd/bases"

// loadCRDs reads every generated CRD, keyed by kind.
func loadCRDs(t *testing.T) map[string]*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no CRDs in %s: run controller-gen", crdDir)
	}
	crds := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(data, crd); err != nil {
			t.Fatalf("%s: not a CustomResourceDefinition: %v", f, err)
		}
		if crd.Kind != "CustomResourceDefinition" || crd.APIVersion != "apiextensions.k8s.io/v1" {
			t.Fatalf("%s: kind %q apiVersion %q", f, crd.Kind, crd.APIVersion)
		}
		if _, dup := crds[crd.Spec.Names.Kind]; dup {
			t.Fatalf("%s: second CRD for kind %s", f, crd.Spec.Names.Kind)
		}
		crds[crd.Spec.Names.Kind] = crd
	}
	return crds
}

type column struct {
	name     string
	jsonPath string
	wide     bool // priority > 0: shown only with -o wide
}

// TestCRDs pins what MetalLB users see: the kinds, their group, scope,
// versions and `kubectl get` columns, in order. metallb.io holds MetalLB's
// kinds and nothing else; Herald's own are in herald-lb.io.
func TestCRDs(t *testing.T) {
	peerColumns := []column{
		{"Address", ".spec.peerAddress", false},
		{"ASN", ".spec.peerASN", false},
		{"BFD Profile", ".spec.bfdProfile", false},
		{"Multi Hops", ".spec.ebgpMultiHop", false},
	}
	want := map[string]struct {
		plural   string
		versions map[string][]column
	}{
		"IPAddressPool": {"ipaddresspools", map[string][]column{"v1beta1": {
			{"Auto Assign", ".spec.autoAssign", false},
			{"Avoid Buggy IPs", ".spec.avoidBuggyIPs", false},
			{"Addresses", ".spec.addresses", false},
			// Herald's additions, after MetalLB's columns.
			{"IPv4 In Use", ".status.assignedIPv4", false},
			{"IPv4 Free", ".status.availableIPv4", false},
			{"IPv6 In Use", ".status.assignedIPv6", true},
			{"IPv6 Free", ".status.availableIPv6Exact", true},
		}}},
		"L2Advertisement": {"l2advertisements", map[string][]column{"v1beta1": {
			{"IPAddressPools", ".spec.ipAddressPools", false},
			{"IPAddressPool Selectors", ".spec.ipAddressPoolSelectors", false},
			{"Interfaces", ".spec.interfaces", false},
			{"Node Selectors", ".spec.nodeSelectors", true},
		}}},
		"BGPAdvertisement": {"bgpadvertisements", map[string][]column{"v1beta1": {
			{"IPAddressPools", ".spec.ipAddressPools", false},
			{"IPAddressPool Selectors", ".spec.ipAddressPoolSelectors", false},
			{"Peers", ".spec.peers", false},
			{"Node Selectors", ".spec.nodeSelectors", true},
		}}},
		"BGPPeer": {"bgppeers", map[string][]column{"v1beta1": peerColumns, "v1beta2": peerColumns}},
		"BFDProfile": {"bfdprofiles", map[string][]column{"v1beta1": {
			{"Passive Mode", ".spec.passiveMode", false},
			{"Transmit Interval", ".spec.transmitInterval", false},
			{"Receive Interval", ".spec.receiveInterval", false},
			{"Multiplier", ".spec.detectMultiplier", false},
		}}},
		"Community": {"communities", map[string][]column{"v1beta1": nil}},
		"ServiceL2Status": {"servicel2statuses", map[string][]column{"v1beta1": {
			{"Allocated Node", ".status.node", false},
			{"Service Name", ".status.serviceName", false},
			{"Service Namespace", ".status.serviceNamespace", false},
		}}},
		"ServiceBGPStatus": {"servicebgpstatuses", map[string][]column{"v1beta1": {
			{"Node", ".status.node", false},
			{"Service Name", ".status.serviceName", false},
			{"Service Namespace", ".status.serviceNamespace", false},
		}}},
		"ConfigurationState": {"configurationstates", map[string][]column{"v1beta1": {
			{"Result", ".status.result", false},
			{"ErrorSummary", ".status.errorSummary", false},
			{"Age", ".metadata.creationTimestamp", false},
		}}},
		"CloudAdvertisement": {"cloudadvertisements", map[string][]column{"v1alpha1": {
			{"Provider", ".spec.provider", false},
			{"IPAddressPools", ".spec.ipAddressPools", false},
			{"IPAddressPool Selectors", ".spec.ipAddressPoolSelectors", false},
			{"Token Secret", ".spec.tokenSecretRef.name", false},
			{"Node Selectors", ".spec.nodeSelectors", true},
		}}},
		"ServiceCloudStatus": {"servicecloudstatuses", map[string][]column{"v1alpha1": {
			{"Service", ".status.serviceName", false},
			{"Namespace", ".status.serviceNamespace", false},
			{"Node", ".status.node", false},
			{"Server", ".status.server", false},
			{"Floating IP", ".status.prefix", false},
			{"Last Move", ".status.lastMove.duration", false},
			{"Since", ".status.since", false},
		}}},
	}
	// Herald's own kinds; the others are metallb.io.
	groups := map[string]string{"CloudAdvertisement": "herald-lb.io", "ServiceCloudStatus": "herald-lb.io"}

	crds := loadCRDs(t)
	for kind := range crds {
		if _, ok := want[kind]; !ok {
			t.Errorf("unexpected CRD for kind %s", kind)
		}
	}
	for kind, w := range want {
		t.Run(kind, func(t *testing.T) {
			crd, ok := crds[kind]
			if !ok {
				t.Fatalf("no CRD for kind %s", kind)
			}
			group := cmp.Or(groups[kind], "metallb.io")
			if crd.Spec.Group != group {
				t.Errorf("group %q, want %s", crd.Spec.Group, group)
			}
			if crd.Spec.Scope != apiextensionsv1.NamespaceScoped {
				t.Errorf("scope %q, want Namespaced", crd.Spec.Scope)
			}
			if crd.Name != w.plural+"."+group || crd.Spec.Names.Plural != w.plural {
				t.Errorf("name %q plural %q, want plural %q", crd.Name, crd.Spec.Names.Plural, w.plural)
			}
			if len(crd.Spec.Names.ShortNames) != 0 {
				t.Errorf("short names %v: MetalLB has none", crd.Spec.Names.ShortNames)
			}
			if len(crd.Spec.Versions) != len(w.versions) {
				t.Errorf("%d versions, want %d", len(crd.Spec.Versions), len(w.versions))
			}
			storage := 0
			for _, v := range crd.Spec.Versions {
				wantCols, ok := w.versions[v.Name]
				if !ok {
					t.Errorf("unexpected version %s", v.Name)
					continue
				}
				if !v.Served {
					t.Errorf("%s not served", v.Name)
				}
				if v.Storage {
					storage++
				}
				if v.Subresources == nil || v.Subresources.Status == nil {
					t.Errorf("%s has no status subresource", v.Name)
				}
				var got []column
				for _, c := range v.AdditionalPrinterColumns {
					got = append(got, column{c.Name, c.JSONPath, c.Priority > 0})
				}
				if !slices.Equal(got, wantCols) {
					t.Errorf("%s columns:\n got %v\nwant %v", v.Name, got, wantCols)
				}
			}
			if storage != 1 {
				t.Errorf("%d storage versions, want 1", storage)
			}
		})
	}

	t.Run("BGPPeer versions", func(t *testing.T) {
		byName := map[string]apiextensionsv1.CustomResourceDefinitionVersion{}
		for _, v := range crds["BGPPeer"].Spec.Versions {
			byName[v.Name] = v
		}
		old, cur := byName["v1beta1"], byName["v1beta2"]
		if old.Storage || !old.Deprecated || old.DeprecationWarning == nil ||
			*old.DeprecationWarning != "v1beta1 is deprecated, please use v1beta2" {
			t.Errorf("v1beta1: storage %v deprecated %v warning %v; want a deprecated, non-storage version with MetalLB's warning",
				old.Storage, old.Deprecated, old.DeprecationWarning)
		}
		if !cur.Storage || cur.Deprecated {
			t.Errorf("v1beta2: storage %v deprecated %v; want the storage version", cur.Storage, cur.Deprecated)
		}
	})
}

// TestCRDsPassAPIServerValidation runs the API server's own CRD validation:
// structural schema, defaults, CEL rules compiling within the cost budget.
// A CRD that fails here would be refused by `kubectl apply`.
func TestCRDsPassAPIServerValidation(t *testing.T) {
	for kind, crd := range loadCRDs(t) {
		t.Run(kind, func(t *testing.T) {
			crd = crd.DeepCopy()
			apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(crd)
			internal := &apiextensions.CustomResourceDefinition{}
			if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(crd, internal, nil); err != nil {
				t.Fatal(err)
			}
			if errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), internal); len(errs) > 0 {
				t.Errorf("the API server would refuse this CRD:\n%v", errs.ToAggregate())
			}
		})
	}
}

// schemaChecker validates custom resources the way the API server does on
// create and update: strict unknown-field detection, defaulting, OpenAPI
// schema validation and CEL rules.
type schemaChecker struct {
	crds map[string]*apiextensionsv1.CustomResourceDefinition
}

// check returns obj after defaulting, and every error the API server would
// report for creating it (old == nil) or updating old to it.
func (c schemaChecker) check(t *testing.T, obj, old map[string]any) (map[string]any, field.ErrorList) {
	t.Helper()
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	group, version, _ := strings.Cut(apiVersion, "/")
	crd, ok := c.crds[kind]
	if !ok || group != crd.Spec.Group {
		t.Fatalf("no CRD for %s %s", apiVersion, kind)
	}
	var v1schema *apiextensionsv1.CustomResourceValidation
	for _, v := range crd.Spec.Versions {
		if v.Name == version {
			v1schema = v.Schema
		}
	}
	if v1schema == nil {
		t.Fatalf("%s has no version %s", crd.Name, version)
	}
	internal := &apiextensions.CustomResourceValidation{}
	if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(v1schema, internal, nil); err != nil {
		t.Fatal(err)
	}
	structural, err := structuralschema.NewStructural(internal.OpenAPIV3Schema)
	if err != nil {
		t.Fatal(err)
	}

	var errs field.ErrorList
	// kubectl asks for strict field validation: unknown fields are errors,
	// not silently dropped.
	for _, p := range pruning.PruneWithOptions(obj, structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}) {
		errs = append(errs, field.Forbidden(field.NewPath(p), "unknown field"))
	}
	defaulting.Default(obj, structural)
	validator, _, err := validation.NewSchemaValidator(internal.OpenAPIV3Schema)
	if err != nil {
		t.Fatal(err)
	}
	if old == nil {
		errs = append(errs, validation.ValidateCustomResource(nil, obj, validator)...)
	} else {
		errs = append(errs, validation.ValidateCustomResourceUpdate(nil, obj, old, validator)...)
	}
	var oldObj any
	if old != nil {
		oldObj = old
	}
	celErrs, _ := cel.NewValidator(structural, true, celconfig.PerCallLimit).
		Validate(context.Background(), nil, structural, obj, oldObj, celconfig.RuntimeCELCostBudget)
	return obj, append(errs, celErrs...)
}

func parseYAML(t *testing.T, doc string) map[string]any {
	t.Helper()
	obj, err := decode([]byte(doc))
	if err != nil {
		t.Fatalf("parse %q: %v", doc, err)
	}
	return obj
}

// decode reads one YAML document as the API server sees it: whole numbers
// become int64, not float64.
func decode(doc []byte) (map[string]any, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	obj := map[string]any{}
	if err := utiljson.Unmarshal(js, &obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// TestSeedManifests applies the schema to every metallb.io document of the
// seed manifests: all must be accepted. Semantic checks (such as the "*"
// label value in 001) belong to Herald's webhook, not the schema.
func TestSeedManifests(t *testing.T) {
	// ForTest fails without the seeds: a test that skipped could not fail.
	files := seeds.ForTest(t, "..")
	c := schemaChecker{crds: loadCRDs(t)}
	checked := 0
	for _, f := range files {
		r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(f.Raw)))
		for i := 0; ; i++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
			obj, err := decode(doc)
			if err != nil {
				t.Fatalf("%s document %d: %v", f.Name, i, err)
			}
			apiVersion, _ := obj["apiVersion"].(string)
			if !strings.HasPrefix(apiVersion, "metallb.io/") {
				continue
			}
			checked++
			name := f.Name + "/" + obj["kind"].(string)
			if _, errs := c.check(t, obj, nil); len(errs) > 0 {
				t.Errorf("%s (document %d) rejected by the schema:\n%v", name, i, errs.ToAggregate())
			}
		}
	}
	if checked == 0 {
		t.Error("no metallb.io documents found in the seed manifests")
	}
}

// TestSchemaDefaults checks the defaults the API server fills in.
func TestSchemaDefaults(t *testing.T) {
	c := schemaChecker{crds: loadCRDs(t)}
	tests := []struct {
		name string
		obj  string
		path []string
		want any
	}{
		{"pool autoAssign", poolYAML, []string{"spec", "autoAssign"}, true},
		{"pool avoidBuggyIPs", poolYAML, []string{"spec", "avoidBuggyIPs"}, false},
		{"advertisement aggregationLength", "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nspec: {}", []string{"spec", "aggregationLength"}, int64(32)},
		{"advertisement aggregationLengthV6", "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nspec: {}", []string{"spec", "aggregationLengthV6"}, int64(128)},
		{"peer port", peerYAML, []string{"spec", "peerPort"}, int64(179)},
		{"peer disableMP", peerYAML, []string{"spec", "disableMP"}, false},
		{"peer dualStackAddressFamily", peerYAML, []string{"spec", "dualStackAddressFamily"}, false},
		{"cloud token key", cloudYAML, []string{"spec", "tokenSecretRef", "key"}, "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, errs := c.check(t, parseYAML(t, tt.obj), nil)
			if len(errs) > 0 {
				t.Fatalf("rejected: %v", errs.ToAggregate())
			}
			var got any = obj
			for _, k := range tt.path {
				m, _ := got.(map[string]any)
				got = m[k]
			}
			if got != tt.want {
				t.Errorf("%s = %#v, want %#v", strings.Join(tt.path, "."), got, tt.want)
			}
		})
	}
}

const (
	poolYAML = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec:\n  addresses: [192.0.2.0/24]\n"
	peerYAML = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p}\nspec:\n  myASN: 64500\n  peerASN: 64501\n  peerAddress: 192.0.2.1\n"
	// cloudYAML has no key in its tokenSecretRef, and ends inside it.
	cloudYAML = "apiVersion: herald-lb.io/v1alpha1\nkind: CloudAdvertisement\nmetadata: {name: c}\nspec:\n  provider: hetzner\n  tokenSecretRef:\n    name: hcloud\n"
)

// TestSchemaRules checks the schema's limits and CEL rules on both sides of
// each boundary.
func TestSchemaRules(t *testing.T) {
	c := schemaChecker{crds: loadCRDs(t)}
	adv := "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nspec:\n"
	tests := []struct {
		name   string
		obj    string
		old    string // set for an update
		accept bool
	}{
		{"service selectors with default aggregation", adv + "  serviceSelectors: [{matchLabels: {a: b}}]\n  aggregationLength: 32\n  aggregationLengthV6: 128", "", true},
		{"service selectors with aggregationLength 24", adv + "  serviceSelectors: [{matchLabels: {a: b}}]\n  aggregationLength: 24", "", false},
		{"service selectors with aggregationLengthV6 64", adv + "  serviceSelectors: [{}]\n  aggregationLengthV6: 64", "", false},
		{"empty service selectors with aggregationLength 24", adv + "  serviceSelectors: []\n  aggregationLength: 24", "", true},
		{"aggregationLength 0", adv + "  aggregationLength: 0", "", false},
		{"communities and localPref", adv + "  localPref: 100\n  communities: [\"65535:65282\", \"large:1:2:3\", my-alias]", "", true},

		{"peer connectTime 10s", peerYAML + "  connectTime: 10s", "", true},
		{"peer connectTime 65535s", peerYAML + "  connectTime: 65535s", "", true},
		{"peer connectTime 0s", peerYAML + "  connectTime: 0s", "", false},
		{"peer connectTime 65536s", peerYAML + "  connectTime: 65536s", "", false},
		{"peer connectTime 1500ms", peerYAML + "  connectTime: 1500ms", "", false},
		{"peer port 0", peerYAML + "  peerPort: 0", "", false},
		{"peer port 16384", peerYAML + "  peerPort: 16384", "", true},
		{"peer port 16385", peerYAML + "  peerPort: 16385", "", false},
		{"peer dynamicASN external", strings.Replace(peerYAML, "peerASN: 64501", "dynamicASN: external", 1), "", true},
		{"peer dynamicASN bogus", strings.Replace(peerYAML, "peerASN: 64501", "dynamicASN: both", 1), "", false},
		{"peer 32-bit ASNs", strings.Replace(peerYAML, "64500", "4294967295", 1) + "  localASN: 4200000000", "", true},
		{"peer localASN 0", peerYAML + "  localASN: 0", "", false},
		{"peer passwordSecret and timers", peerYAML + "  passwordSecret: {name: s, namespace: metallb-system}\n  holdTime: 9s\n  keepaliveTime: 3s", "", true},
		{"peer without myASN", "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nspec: {peerASN: 1}", "", false},
		{"peer graceful restart kept", peerYAML + "  enableGracefulRestart: true", peerYAML + "  enableGracefulRestart: true", true},
		{"peer graceful restart changed", peerYAML + "  enableGracefulRestart: false", peerYAML + "  enableGracefulRestart: true", false},

		{"v1beta1 peer legacy selector", "apiVersion: metallb.io/v1beta1\nkind: BGPPeer\nspec:\n  myASN: 1\n  peerASN: 2\n  peerAddress: 192.0.2.1\n  holdTime: 90s\n  nodeSelectors: [{matchLabels: {a: b}, matchExpressions: [{key: k, operator: In, values: [v]}]}]", "", true},
		{"v1beta1 peer expression without values", "apiVersion: metallb.io/v1beta1\nkind: BGPPeer\nspec:\n  myASN: 1\n  peerASN: 2\n  peerAddress: 192.0.2.1\n  nodeSelectors: [{matchExpressions: [{key: k, operator: Exists, values: []}]}]", "", false},
		{"v1beta1 peer without peerAddress", "apiVersion: metallb.io/v1beta1\nkind: BGPPeer\nspec: {myASN: 1, peerASN: 2}", "", false},
		{"v1beta1 peer v1beta2-only field", "apiVersion: metallb.io/v1beta1\nkind: BGPPeer\nspec: {myASN: 1, peerASN: 2, peerAddress: 192.0.2.1, vrf: red}", "", false},

		{"pool without addresses", "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nspec: {autoAssign: false}", "", false},
		{"pool with serviceAllocation", poolYAML + "  serviceAllocation:\n    priority: 50\n    namespaces: [a]\n    namespaceSelectors: [{matchLabels: {team: blue}}]\n    serviceSelectors: [{matchExpressions: [{key: app, operator: In, values: [web]}]}]", "", true},
		{"pool with unknown field", poolYAML + "  autoassign: true", "", false},

		{"l2 preferred weight 100", "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nspec:\n  preferredNodeSelectors: [{weight: 100, preference: {matchLabels: {role: edge}}}]", "", true},
		{"l2 preferred weight 0", "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nspec:\n  preferredNodeSelectors: [{weight: 0, preference: {}}]", "", false},
		{"l2 preferred weight 101", "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nspec:\n  preferredNodeSelectors: [{weight: 101, preference: {}}]", "", false},

		{"bfd full profile", "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nspec: {receiveInterval: 10, transmitInterval: 60000, echoInterval: 50, detectMultiplier: 255, echoMode: true, passiveMode: true, minimumTtl: 254}", "", true},
		{"bfd receiveInterval 9", "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nspec: {receiveInterval: 9}", "", false},
		{"bfd detectMultiplier 1", "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nspec: {detectMultiplier: 1}", "", false},
		{"bfd minimumTtl 255", "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nspec: {minimumTtl: 255}", "", false},

		{"community aliases", "apiVersion: metallb.io/v1beta1\nkind: Community\nspec:\n  communities: [{name: no-export, value: \"65535:65281\"}]", "", true},

		{"l2 status written", "apiVersion: metallb.io/v1beta1\nkind: ServiceL2Status\nstatus: {node: n1, serviceName: s, serviceNamespace: ns, interfaces: [{name: eth0}]}", "", true},
		{"l2 status namespace changed", "apiVersion: metallb.io/v1beta1\nkind: ServiceL2Status\nstatus: {node: n1, serviceName: s, serviceNamespace: other}", "apiVersion: metallb.io/v1beta1\nkind: ServiceL2Status\nstatus: {node: n1, serviceName: s, serviceNamespace: ns}", false},
		{"l2 status interfaces changed", "apiVersion: metallb.io/v1beta1\nkind: ServiceL2Status\nstatus: {node: n1, serviceName: s, serviceNamespace: ns, interfaces: [{name: eth1}]}", "apiVersion: metallb.io/v1beta1\nkind: ServiceL2Status\nstatus: {node: n1, serviceName: s, serviceNamespace: ns}", true},
		{"bgp status node changed", "apiVersion: metallb.io/v1beta1\nkind: ServiceBGPStatus\nstatus: {node: n2, serviceName: s, serviceNamespace: ns, peers: [p1]}", "apiVersion: metallb.io/v1beta1\nkind: ServiceBGPStatus\nstatus: {node: n1, serviceName: s, serviceNamespace: ns, peers: [p1]}", false},

		{"configuration state valid", "apiVersion: metallb.io/v1beta1\nkind: ConfigurationState\nstatus:\n  result: Invalid\n  errorSummary: \"bad peer\"\n  conditions: [{type: configReconcilerValid, status: \"False\", reason: ConfigurationError, message: bad, lastTransitionTime: \"2026-01-01T00:00:00Z\"}]", "", true},
		{"configuration state bad result", "apiVersion: metallb.io/v1beta1\nkind: ConfigurationState\nstatus: {result: Broken}", "", false},

		{"cloud advertisement", cloudYAML + "    key: api-token\n  ipAddressPools: [fip]\n  nodeSelectors: [{matchLabels: {topology.kubernetes.io/region: fsn1}}]\n  serviceSelectors: [{matchLabels: {app: web}}]", "", true},
		{"cloud unknown provider", strings.Replace(cloudYAML, "hetzner", "digitalocean", 1), "", false},
		{"cloud without provider", strings.Replace(cloudYAML, "  provider: hetzner\n", "", 1), "", false},
		{"cloud without token Secret", "apiVersion: herald-lb.io/v1alpha1\nkind: CloudAdvertisement\nspec: {provider: hetzner}", "", false},
		{"cloud empty token Secret name", strings.Replace(cloudYAML, "name: hcloud", "name: \"\"", 1), "", false},
		{"cloud without spec", "apiVersion: herald-lb.io/v1alpha1\nkind: CloudAdvertisement\nmetadata: {name: c}", "", false},
		{"cloud interfaces are L2's", cloudYAML + "  interfaces: [eth0]", "", false},
		{"cloud status conditions", cloudYAML + "status:\n  conditions: [{type: Ready, status: \"True\", reason: Assigned, message: ok, lastTransitionTime: \"2026-01-01T00:00:00Z\"}]", "", true},

		{"pool status large IPv6", poolYAML + "status: {assignedIPv4: 1, assignedIPv6: 2, availableIPv4: 253, availableIPv6: 9223372036854775807, availableIPv6Exact: \"18446744073709551614\"}", "", true},
		{"pool status exact count not a number", poolYAML + "status: {assignedIPv4: 0, assignedIPv6: 0, availableIPv4: 0, availableIPv6: 0, availableIPv6Exact: \"lots\"}", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var old map[string]any
			if tt.old != "" {
				old = parseYAML(t, tt.old)
			}
			_, errs := c.check(t, parseYAML(t, tt.obj), old)
			if tt.accept && len(errs) > 0 {
				t.Errorf("rejected, want accepted: %v", errs.ToAggregate())
			}
			if !tt.accept && len(errs) == 0 {
				t.Error("accepted, want rejected")
			}
		})
	}
}
