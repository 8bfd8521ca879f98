package integration

import (
	"context"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/internal/testcluster"
)

// webhookEnv starts a control plane whose API server calls the controller's
// validating webhook, served from this process with envtest's certificate.
func webhookEnv(t *testing.T) *env {
	t.Helper()
	var wh *envtest.WebhookInstallOptions
	c := testcluster.Start(t, func(env *envtest.Environment) {
		env.WebhookInstallOptions.ValidatingWebhooks = []*admissionregistrationv1.ValidatingWebhookConfiguration{
			controller.WebhookConfiguration("herald-validating-webhook-configuration", ns, "herald-webhook-service", "", nil, admissionregistrationv1.Fail),
		}
		wh = &env.WebhookInstallOptions
	})
	scheme, _ := controller.Scheme()
	e := newEnvFrom(t, c, scheme)
	e.namespaces(ns, "metallb", "apps")
	e.startController(ns, func(o *controller.Options) {
		o.Webhook = &controller.WebhookOptions{Host: wh.LocalServingHost, Port: wh.LocalServingPort, CertDir: wh.LocalServingCertDir}
	})
	return e
}

// verdict checks kubectl's error text msg: "" (accepted) when reject is
// empty, else a refusal mentioning every fragment of reject.
func verdict(t *testing.T, msg string, reject []string) {
	t.Helper()
	if len(reject) == 0 {
		if msg != "" {
			t.Fatalf("refused: %s", msg)
		}
		return
	}
	if msg == "" {
		t.Fatal("accepted")
	}
	for _, frag := range reject {
		if !strings.Contains(msg, frag) {
			t.Errorf("refusal %q does not mention %q", msg, frag)
		}
	}
}

// cloudAdvertisement announces a pool as Hetzner floating IPs.
func cloudAdvertisement(name, pool string) string {
	return `apiVersion: herald-lb.io/v1alpha1
kind: CloudAdvertisement
metadata: {name: ` + name + `, namespace: ` + ns + `}
spec:
  ipAddressPools: [` + pool + `]
  provider: hetzner
  tokenSecretRef: {name: hcloud}
`
}

// l2Advertisement announces a pool in Layer 2.
func l2Advertisement(name, pool string) string {
	return `apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: ` + name + `, namespace: ` + ns + `}
spec: {ipAddressPools: [` + pool + `]}
`
}

// applyErr applies YAML and returns kubectl's error text ("" when accepted).
// The webhook may take a moment to come up: until it answers, every
// request fails with a connection error, which is retried.
func (e *env) applyErr(yaml string) string {
	e.t.Helper()
	var msg string
	e.eventually("webhook answering", func() (bool, string) {
		_, err := e.c.Kubectl(context.Background(), yaml, "apply", "-f", "-")
		if err == nil {
			msg = ""
			return true, ""
		}
		msg = err.Error()
		return !strings.Contains(msg, "failed calling webhook"), msg
	})
	return msg
}

func TestWebhook(t *testing.T) {
	e := webhookEnv(t)
	e.apply(pool("existing", "192.0.2.0/28"))

	tests := []struct {
		name   string
		yaml   string
		reject []string // fragments of the refusal; none means accepted
	}{
		{"overlapping pool", pool("overlap", "192.0.2.8/29"), []string{"overlap", "existing"}},
		{"bad address", pool("bad", "192.168.1.300/24"), []string{"192.168.1.300"}},
		{"range end below start", pool("backwards", "198.51.100.9-198.51.100.1"), []string{"198.51.100.9-198.51.100.1"}},
		{"range mixing families", pool("mixed", "198.51.100.1-2001:db8::1"), []string{"famil"}},
		{"good pool", pool("fine", "198.51.100.0/24"), nil},
		{"wrong namespace", strings.Replace(pool("elsewhere", "203.0.113.0/24"), "namespace: "+ns, "namespace: apps", 1), []string{"metallb-system"}},
		{"wildcard node selector", `apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: wild, namespace: metallb-system}
spec:
  nodeSelectors:
  - matchLabels: {kubernetes.io/hostname: "*"}
`, []string{"spec.nodeSelectors[0].matchLabels", "wildcard", "Omitting nodeSelectors selects every node"}},
		{"aggregation length too short for the pool", `apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: agg, namespace: metallb-system}
spec: {ipAddressPools: [existing], aggregationLength: 24}
`, []string{"aggregationLength"}},
		{"bad community", `apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: comm, namespace: metallb-system}
spec: {communities: ["65536:1"]}
`, []string{"communities"}},
		{"ebgpMultiHop on iBGP", `apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: ibgp, namespace: metallb-system}
spec: {myASN: 64500, peerASN: 64500, peerAddress: 192.0.2.1, ebgpMultiHop: true}
`, []string{"ebgpMultiHop"}},
		{"vrf not supported yet", `apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: vrf, namespace: metallb-system}
spec: {myASN: 64500, peerASN: 64501, peerAddress: 192.0.2.1, vrf: red}
`, []string{"vrf"}},
		{"v1beta1 peer is validated too", `apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: old, namespace: metallb-system}
spec: {myASN: 0, peerASN: 64501, peerAddress: 192.0.2.1}
`, []string{"myASN"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { verdict(t, e.applyErr(tc.yaml), tc.reject) })
	}

	// Before seed 001, whose L2Advertisement of every pool would take the
	// floating IPs' pool too; what this creates is deleted at the end.
	t.Run("CloudAdvertisement", func(t *testing.T) {
		if msg := e.applyErr(pool("fip", "203.0.113.24/32") + "---\n" + cloudAdvertisement("hetzner", "fip")); msg != "" {
			t.Fatalf("a valid CloudAdvertisement was refused: %s", msg)
		}
		defer func() {
			if out, err := e.c.Kubectl(context.Background(), "", "-n", ns, "delete", "cloudadvertisement", "hetzner"); err != nil {
				t.Errorf("delete: %v %s", err, out)
			}
		}()
		for _, tc := range []struct {
			name, yaml string
			reject     []string // none: accepted
		}{
			{"an L2Advertisement of its pool", l2Advertisement("lan", "fip"),
				[]string{`pool "fip" is announced by L2Advertisement "lan" and CloudAdvertisement "hetzner"`, "ARP/NDP answers for it are never seen"}},
			{"an L2Advertisement of another pool", l2Advertisement("lan-existing", "existing"), nil},
			{"a CloudAdvertisement of that pool", cloudAdvertisement("existing-fip", "existing"),
				[]string{`pool "existing" is announced by L2Advertisement "lan-existing" and CloudAdvertisement "existing-fip"`}},
			{"an unknown provider", strings.Replace(cloudAdvertisement("other", "fip"), "provider: hetzner", "provider: vultr", 1),
				// The schema's enum refuses it before the webhook sees it.
				[]string{"vultr"}},
			{"an IPv6 range across two /64s", pool("fip6", "2001:db8:0:1::ff00-2001:db8:0:2::ff") + "---\n" + cloudAdvertisement("v6", "fip6"),
				[]string{"CloudAdvertisement/v6", "spans more than one /64"}},
		} {
			t.Run(tc.name, func(t *testing.T) { verdict(t, e.applyErr(tc.yaml), tc.reject) })
		}
	})

	t.Run("seed 001", func(t *testing.T) {
		f := seedFile(t, "001-goldentooth-l2-migration.yaml")
		// Herald's namespace is metallb-system here; the seed lives in
		// "metallb", so it is checked as the operator's own install would be.
		yaml := strings.ReplaceAll(f.Raw, "namespace: metallb\n", "namespace: "+ns+"\n")
		yaml = strings.ReplaceAll(yaml, "10.4.11.0-10.4.15.254", "10.4.11.0-10.4.15.254") // no overlap with "existing"
		msg := e.applyErr(yaml)
		if !strings.Contains(msg, "primary-eth0") || !strings.Contains(msg, "wildcard") {
			t.Errorf("want primary-eth0 refused with the wildcard explanation, got %q", msg)
		}
		for _, name := range []string{"ipaddresspool/primary", "l2advertisement/primary"} {
			if _, err := e.c.Kubectl(context.Background(), "", "get", name, "-n", ns); err != nil {
				t.Errorf("%s was not created alongside: %v", name, err)
			}
		}
	})

	t.Run("BFD profile in use cannot be deleted", func(t *testing.T) {
		if msg := e.applyErr(`apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: fast, namespace: metallb-system}
spec: {receiveInterval: 100, transmitInterval: 100}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: withbfd, namespace: metallb-system}
spec: {myASN: 64500, peerASN: 64501, peerAddress: 192.0.2.1, bfdProfile: fast}
`); msg != "" {
			t.Fatal(msg)
		}
		_, err := e.c.Kubectl(context.Background(), "", "delete", "bfdprofile", "fast", "-n", ns)
		if err == nil || !strings.Contains(err.Error(), "withbfd") {
			t.Errorf("delete of a BFD profile in use: %v", err)
		}
	})
}
