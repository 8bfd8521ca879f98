// Package integration holds the tests that need a real kube-apiserver and
// etcd. `make test` builds them with hack/testenv.sh and runs these tests.
package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/herald-lb/herald/internal/seeds"
	"github.com/herald-lb/herald/internal/testcluster"
)

func loadSeeds(t *testing.T) []seeds.File {
	t.Helper()
	return seeds.ForTest(t, testcluster.RepoRoot())
}

func createNamespaces(ctx context.Context, t *testing.T, c *testcluster.Cluster, names ...string) {
	t.Helper()
	for _, ns := range names {
		if _, err := c.Kubectl(ctx, "", "create", "namespace", ns); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
			t.Fatal(err)
		}
	}
}

// TestSeedManifestsAcceptedBySchema applies every seed file, whole, to the
// API server with only Herald's CRDs installed: the schema must accept every
// document, including the ones Herald's own validation refuses later (those
// are refused by the webhook, with an explanation, not by the schema).
func TestSeedManifestsAcceptedBySchema(t *testing.T) {
	c := testcluster.Start(t)
	ctx := context.Background()
	for _, f := range loadSeeds(t) {
		t.Run(f.Name, func(t *testing.T) {
			createNamespaces(ctx, t, c, f.Namespaces()...)
			out, err := c.Kubectl(ctx, f.Raw, "apply", "-f", "-")
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			for _, d := range f.Docs {
				re := regexp.MustCompile(`(?m)^` + strings.ToLower(d.Kind) + `(\.[a-z0-9.]+)?/` + regexp.QuoteMeta(d.Name) + ` (created|configured|unchanged)$`)
				if !re.MatchString(out) {
					t.Errorf("apply output does not show %s/%s accepted:\n%s", d.Kind, d.Name, out)
				}
			}
			// envtest runs no namespace controller, so a deleted
			// namespace never finishes terminating: do not wait for it.
			if _, err := c.Kubectl(ctx, f.Raw, "delete", "-f", "-", "--wait=false"); err != nil {
				t.Fatalf("delete: %v", err)
			}
		})
	}
}

var columnSplit = regexp.MustCompile(`\s{2,}`)

func header(out string) []string {
	first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	return columnSplit.Split(strings.TrimSpace(first), -1)
}

// TestPrinterColumns checks `kubectl get` for every kind against the columns
// MetalLB prints, so that operators' scripts and habits carry over.
func TestPrinterColumns(t *testing.T) {
	c := testcluster.Start(t)
	ctx := context.Background()
	createNamespaces(ctx, t, c, "metallb-system")
	objects := `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: pool, namespace: metallb-system}
spec: {addresses: ["192.0.2.0/24"]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: metallb-system}
spec: {ipAddressPools: [pool], interfaces: [eth0]}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: metallb-system}
spec: {ipAddressPools: [pool], peers: [router]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, namespace: metallb-system}
spec: {myASN: 64500, peerASN: 64501, peerAddress: 192.0.2.1, bfdProfile: fast, ebgpMultiHop: true}
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: fast, namespace: metallb-system}
spec: {receiveInterval: 100, transmitInterval: 100, detectMultiplier: 3}
---
apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: communities, namespace: metallb-system}
spec: {communities: [{name: no-advertise, value: "65535:65282"}]}
---
apiVersion: metallb.io/v1beta1
kind: ServiceL2Status
metadata: {name: l2-status, namespace: metallb-system}
---
apiVersion: metallb.io/v1beta1
kind: ServiceBGPStatus
metadata: {name: bgp-status, namespace: metallb-system}
---
apiVersion: metallb.io/v1beta1
kind: ConfigurationState
metadata: {name: controller, namespace: metallb-system}
---
apiVersion: herald-lb.io/v1alpha1
kind: CloudAdvertisement
metadata: {name: cloud, namespace: metallb-system}
spec: {provider: hetzner, tokenSecretRef: {name: hcloud}}
---
apiVersion: herald-lb.io/v1alpha1
kind: ServiceCloudStatus
metadata: {name: cloud-status, namespace: metallb-system}
`
	if _, err := c.Kubectl(ctx, objects, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		resource string
		wide     bool
		want     []string
		prefix   bool // Herald adds usage columns after MetalLB's own
	}{
		{"ipaddresspools", false, []string{"NAME", "AUTO ASSIGN", "AVOID BUGGY IPS", "ADDRESSES"}, true},
		{"l2advertisements", false, []string{"NAME", "IPADDRESSPOOLS", "IPADDRESSPOOL SELECTORS", "INTERFACES"}, false},
		{"l2advertisements", true, []string{"NAME", "IPADDRESSPOOLS", "IPADDRESSPOOL SELECTORS", "INTERFACES", "NODE SELECTORS"}, false},
		{"bgpadvertisements", false, []string{"NAME", "IPADDRESSPOOLS", "IPADDRESSPOOL SELECTORS", "PEERS"}, false},
		{"bgpadvertisements", true, []string{"NAME", "IPADDRESSPOOLS", "IPADDRESSPOOL SELECTORS", "PEERS", "NODE SELECTORS"}, false},
		{"bgppeers", false, []string{"NAME", "ADDRESS", "ASN", "BFD PROFILE", "MULTI HOPS"}, false},
		{"bgppeers.v1beta1.metallb.io", false, []string{"NAME", "ADDRESS", "ASN", "BFD PROFILE", "MULTI HOPS"}, false},
		{"bfdprofiles", false, []string{"NAME", "PASSIVE MODE", "TRANSMIT INTERVAL", "RECEIVE INTERVAL", "MULTIPLIER"}, false},
		{"communities", false, []string{"NAME", "AGE"}, false},
		{"servicel2statuses", false, []string{"NAME", "ALLOCATED NODE", "SERVICE NAME", "SERVICE NAMESPACE"}, false},
		{"servicebgpstatuses", false, []string{"NAME", "NODE", "SERVICE NAME", "SERVICE NAMESPACE"}, false},
		{"configurationstates", false, []string{"NAME", "RESULT", "ERRORSUMMARY", "AGE"}, false},
		{"cloudadvertisements", false, []string{"NAME", "PROVIDER", "IPADDRESSPOOLS", "IPADDRESSPOOL SELECTORS", "TOKEN SECRET"}, false},
		{"cloudadvertisements", true, []string{"NAME", "PROVIDER", "IPADDRESSPOOLS", "IPADDRESSPOOL SELECTORS", "TOKEN SECRET", "NODE SELECTORS"}, false},
		{"servicecloudstatuses", false, []string{"NAME", "SERVICE", "NAMESPACE", "NODE", "SERVER", "FLOATING IP", "LAST MOVE", "SINCE"}, false},
	}
	for _, tc := range tests {
		name := tc.resource
		if tc.wide {
			name += "-wide"
		}
		t.Run(name, func(t *testing.T) {
			args := []string{"get", tc.resource, "-n", "metallb-system"}
			if tc.wide {
				args = append(args, "-o", "wide")
			}
			out, err := c.Kubectl(ctx, "", args...)
			if err != nil {
				t.Fatal(err)
			}
			got := header(out)
			if tc.prefix && len(got) > len(tc.want) {
				got = got[:len(tc.want)]
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("columns:\n got %q\nwant %q\n%s", got, tc.want, out)
			}
		})
	}
	t.Run("ipaddresspool-row", func(t *testing.T) {
		out, err := c.Kubectl(ctx, "", "get", "ipaddresspool", "pool", "-n", "metallb-system")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("want a header and one row:\n%s", out)
		}
		row := columnSplit.Split(strings.TrimSpace(lines[1]), -1)
		want := []string{"pool", "true", "false", `["192.0.2.0/24"]`}
		if len(row) < len(want) || strings.Join(row[:len(want)], "|") != strings.Join(want, "|") {
			t.Errorf("row %q, want it to start with %q", row, want)
		}
	})
}

// TestBGPPeerV1beta1ReadAsV1beta2 writes a peer in the deprecated version and
// reads it back in the storage version: every field keeps its meaning, and a
// missing holdTime stays missing (MetalLB's conversion turns it into 0s,
// which disables the hold timer).
func TestBGPPeerV1beta1ReadAsV1beta2(t *testing.T) {
	c := testcluster.Start(t)
	ctx := context.Background()
	createNamespaces(ctx, t, c, "metallb-system")
	peers := `
apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: full, namespace: metallb-system}
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: 192.0.2.1
  sourceAddress: 192.0.2.10
  peerPort: 1179
  holdTime: 9s
  keepaliveTime: 3s
  routerID: 192.0.2.10
  password: secret
  bfdProfile: fast
  ebgpMultiHop: true
  nodeSelectors:
  - matchLabels: {rack: a}
    matchExpressions:
    - {key: zone, operator: In, values: [z1, z2]}
---
apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: minimal, namespace: metallb-system}
spec:
  myASN: 64500
  peerASN: 64500
  peerAddress: 2001:db8::1
`
	_, stderr, err := c.KubectlStderr(ctx, peers, "apply", "-f", "-")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "v1beta1 is deprecated, please use v1beta2") {
		t.Errorf("applying a v1beta1 BGPPeer gave no deprecation warning; stderr:\n%s", stderr)
	}
	get := func(name string) map[string]any {
		t.Helper()
		out, err := c.Kubectl(ctx, "", "get", "bgppeers.v1beta2.metallb.io", name, "-n", "metallb-system", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var obj struct {
			APIVersion string         `json:"apiVersion"`
			Spec       map[string]any `json:"spec"`
		}
		if err := json.Unmarshal([]byte(out), &obj); err != nil {
			t.Fatal(err)
		}
		if obj.APIVersion != "metallb.io/v1beta2" {
			t.Fatalf("read back as %s", obj.APIVersion)
		}
		return obj.Spec
	}
	full := get("full")
	tests := []struct {
		field string
		want  string
	}{
		{"myASN", "64500"}, {"peerASN", "64501"}, {"peerAddress", "192.0.2.1"},
		{"sourceAddress", "192.0.2.10"}, {"peerPort", "1179"}, {"holdTime", "9s"},
		{"keepaliveTime", "3s"}, {"routerID", "192.0.2.10"}, {"password", "secret"},
		{"bfdProfile", "fast"}, {"ebgpMultiHop", "true"},
		{"nodeSelectors", `[{"matchExpressions":[{"key":"zone","operator":"In","values":["z1","z2"]}],"matchLabels":{"rack":"a"}}]`},
	}
	for _, tc := range tests {
		b, _ := json.Marshal(full[tc.field])
		got := strings.Trim(string(b), `"`)
		if got != tc.want {
			t.Errorf("full.%s = %s, want %s", tc.field, got, tc.want)
		}
	}
	minimal := get("minimal")
	if v, ok := minimal["holdTime"]; ok {
		t.Errorf("minimal.holdTime = %v; a peer written without a hold time must not gain one", v)
	}
	if got := fmt.Sprint(minimal["peerPort"]); got != "179" {
		t.Errorf("minimal.peerPort = %s, want the v1beta2 default 179", got)
	}
}
