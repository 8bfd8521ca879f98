package install

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/herald-lb/herald/internal/kubeconfig"
	"github.com/herald-lb/herald/internal/testcluster"
)

// valuesFile writes chart values to a file for render.
func valuesFile(t *testing.T, values string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(path, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// applyChartRBAC renders the chart with values (empty: the defaults),
// applies its ServiceAccounts, Roles, ClusterRoles and bindings, and
// returns every rendered object.
func applyChartRBAC(t *testing.T, c *testcluster.Cluster, values string) []*unstructured.Unstructured {
	t.Helper()
	var files []string
	if values != "" {
		files = append(files, valuesFile(t, values))
	}
	all := objects(t, render(t, files...))
	var rbac []*unstructured.Unstructured
	for _, o := range all {
		switch o.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding":
			rbac = append(rbac, o)
		}
	}
	if out, err := c.Kubectl(context.Background(), toYAML(t, rbac), "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("apply RBAC: %v %s", err, out)
	}
	return all
}

// kubeconfigAs writes a kubeconfig that acts as the ServiceAccount ns/sa,
// through impersonation, and checks that the impersonation is in effect.
func kubeconfigAs(t *testing.T, c *testcluster.Cluster, ns, sa string) string {
	t.Helper()
	cfg := *c.Config
	cfg.Impersonate.UserName = "system:serviceaccount:" + ns + ":" + sa
	path := filepath.Join(t.TempDir(), sa+".kubeconfig")
	if err := kubeconfig.Write(&cfg, path); err != nil {
		t.Fatal(err)
	}
	out, err := c.Kubectl(context.Background(), "", "--kubeconfig", path, "auth", "can-i", "create", "clusterroles")
	if err == nil || strings.TrimSpace(out) != "no" {
		t.Fatalf("%s may create clusterroles (%q, %v): impersonation is not in effect", sa, out, err)
	}
	return path
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// fakeNode creates a Ready Node with InternalIP 192.0.2.100 (no traffic
// goes there: the speakers bind memberlist to 127.0.0.1).
func fakeNode(t *testing.T, c *testcluster.Cluster, name string) {
	t.Helper()
	ctx := context.Background()
	node := `{"apiVersion":"v1","kind":"Node","metadata":{"name":"` + name + `","labels":{"kubernetes.io/hostname":"` + name + `"}}}`
	if out, err := c.Kubectl(ctx, node, "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("node: %v %s", err, out)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	status := `{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"test","lastHeartbeatTime":"` +
		now + `","lastTransitionTime":"` + now + `"}],"addresses":[{"type":"InternalIP","address":"192.0.2.100"}]}}`
	if out, err := c.Kubectl(ctx, "", "patch", "node", name, "--subresource=status", "--type=merge", "-p", status); err != nil {
		t.Fatalf("node status: %v %s", err, out)
	}
}

// TestRBACIsEnough runs the real controller and speaker as the chart's
// ServiceAccounts (impersonated) with only the chart's RBAC, with
// everything on that touches a Secret: the webhook and its certificate
// rotation, the memberlist key, a BGP password and a cloud API token (with
// a CloudAdvertisement naming it). They must do their work without a single
// "forbidden", and read no Secret beyond those; the cloud token is the
// speakers' alone.
func TestRBACIsEnough(t *testing.T) {
	c := testcluster.Start(t)
	ctx := context.Background()
	createNamespace(t, c)
	const password, cloudToken = "rbac-bgp-password", "rbac-cloud-token"
	all := applyChartRBAC(t, c, "rbac:\n  bgpPasswordSecrets: ["+password+"]\ncloud:\n  tokenSecretName: "+cloudToken+"\n")
	ctrlKC := kubeconfigAs(t, c, namespace, "controller")
	spkKC := kubeconfigAs(t, c, namespace, "speaker")

	const node = "herald-node-a"
	fakeNode(t, c, node)
	bgpPort := 16179 // the CRD allows at most 16384; nothing listens: refused
	if ln, err := net.Listen("tcp", "127.0.0.1:16179"); err != nil {
		t.Fatalf("port 16179 for the refused BGP session: %v", err)
	} else {
		ln.Close()
	}
	setup := `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: rbac-pool
  namespace: ` + namespace + `
spec:
  addresses:
  - 192.0.2.0/28
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: rbac-l2
  namespace: ` + namespace + `
spec:
  ipAddressPools: [rbac-pool]
  # No such interface: the speaker does its API work but sends no frame.
  interfaces: [herald-none0]
---
apiVersion: v1
kind: Secret
metadata:
  name: ` + password + `
  namespace: ` + namespace + `
type: kubernetes.io/basic-auth
stringData:
  password: rbac-test
---
apiVersion: v1
kind: Secret
metadata:
  name: ` + cloudToken + `
  namespace: ` + namespace + `
stringData:
  token: not-a-real-token
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: rbac-fip
  namespace: ` + namespace + `
spec:
  addresses:
  - 198.51.100.24/32
  autoAssign: false
---
apiVersion: herald-lb.io/v1alpha1
kind: CloudAdvertisement
metadata:
  name: rbac-cloud
  namespace: ` + namespace + `
spec:
  ipAddressPools: [rbac-fip]
  provider: hetzner
  tokenSecretRef:
    name: ` + cloudToken + `
---
apiVersion: v1
kind: Secret
metadata:
  name: unrelated
  namespace: ` + namespace + `
stringData:
  token: not-for-herald
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: rbac-peer
  namespace: ` + namespace + `
spec:
  myASN: 64512
  peerASN: 64513
  peerAddress: 127.0.0.1
  peerPort: ` + strconv.Itoa(bgpPort) + `
  passwordSecret:
    name: ` + password + `
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  type: LoadBalancer
  ports:
  - port: 80
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
- port: 80
  protocol: TCP
endpoints:
- addresses: [198.51.100.10]
  nodeName: ` + node + `
  conditions: {ready: true}
`
	if out, err := c.Kubectl(ctx, setup, "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("setup: %v %s", err, out)
	}
	// The webhook configuration last: the API server cannot reach the
	// webhook Service, so metallb.io writes would fail from now on. The
	// controller's rotator injects its CA bundle into it.
	vwc := find(all, "ValidatingWebhookConfiguration", "herald-validating-webhook-configuration")
	if vwc == nil {
		t.Fatal("the chart renders no ValidatingWebhookConfiguration")
	}
	if out, err := c.Kubectl(ctx, toYAML(t, []*unstructured.Unstructured{vwc}), "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("webhook configuration: %v %s", err, out)
	}

	bin := buildHerald(t)
	certDir := t.TempDir()
	ctrlLogs := start(t, bin, "controller", "--kubeconfig", ctrlKC, "--namespace", namespace,
		"--webhook", "on", "--webhook-port", strconv.Itoa(freePort(t)), "--cert-dir", certDir,
		"--leader-elect", "--metrics-addr", "0", "--health-addr", "0", "--log-level", "debug")
	spkLogs := start(t, bin, "speaker", "--kubeconfig", spkKC, "--namespace", namespace, "--node-name", node,
		"--ml-bind-addr", "127.0.0.1", "--ml-bind-port", strconv.Itoa(freePort(t)),
		"--metrics-addr", "0", "--handover-delay", "0s", "--log-level", "debug")

	kubectl := func(args ...string) func() (string, error) {
		return func() (string, error) { return c.Kubectl(ctx, "", args...) }
	}
	logs := func(l *syncBuffer) func() (string, error) {
		return func() (string, error) { return l.String(), nil }
	}
	file := func(name string) func() (string, error) {
		return func() (string, error) {
			b, err := os.ReadFile(filepath.Join(certDir, name))
			return string(b), err
		}
	}
	checks := []struct {
		what string
		get  func() (string, error)
		ok   func(string) bool
	}{
		{"Service has an address", kubectl("-n", "default", "get", "svc", "web", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"),
			func(s string) bool { return strings.HasPrefix(s, "192.0.2.") }},
		{"IPAddressPool status written", kubectl("-n", namespace, "get", "ipaddresspool", "rbac-pool", "-o", "jsonpath={.status.assignedIPv4}/{.status.availableIPv4}"),
			func(s string) bool { return s == "1/15" }},
		{"ConfigurationState controller valid", kubectl("-n", namespace, "get", "configurationstates", "controller", "-o", "jsonpath={.status.result}"),
			func(s string) bool { return s == "Valid" }},
		{"ConfigurationState speaker-" + node + " valid (the BGP password was read)",
			kubectl("-n", namespace, "get", "configurationstates", "speaker-"+node, "-o", "jsonpath={.status.result}"),
			func(s string) bool { return s == "Valid" }},
		{"memberlist Secret", kubectl("-n", namespace, "get", "secret", "memberlist", "-o", "jsonpath={.data.secretkey}"),
			func(s string) bool { return s != "" }},
		{"speaker joined memberlist encrypted", logs(spkLogs),
			func(s string) bool {
				return strings.Contains(s, `"msg":"memberlist started"`) && strings.Contains(s, `"encrypted":true`)
			}},
		{"webhook certificate Secret", kubectl("-n", namespace, "get", "secret", "herald-webhook-server-cert", "-o", "jsonpath={.data.tls\\.crt}"),
			func(s string) bool { return s != "" }},
		{"CA bundle injected", kubectl("get", "validatingwebhookconfiguration", "herald-validating-webhook-configuration", "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}"),
			func(s string) bool { return s != "" }},
		{"serving certificate written", file("tls.crt"), func(s string) bool { return strings.Contains(s, "BEGIN CERTIFICATE") }},
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, ch := range checks {
		var last string
		for {
			out, err := ch.get()
			last = fmt.Sprintf("%.200q %v", out, err)
			if err == nil && ch.ok(strings.TrimSpace(out)) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: not after 60s (last: %s)", ch.what, last)
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}

	// Each component may read the Secrets it needs, and no other.
	for _, tc := range []struct {
		sa, verb, what string
		allowed        bool
	}{
		{"speaker", "get", "secret/memberlist", true},
		{"speaker", "get", "secret/" + password, true},
		{"speaker", "get", "secret/herald-webhook-server-cert", false},
		{"speaker", "get", "secret/unrelated", false},
		{"speaker", "get", "secret/" + cloudToken, true},
		{"speaker", "watch", "secret/" + cloudToken, true},
		{"speaker", "list", "cloudadvertisements.herald-lb.io", true},
		{"speaker", "create", "servicecloudstatuses.herald-lb.io", true},
		{"speaker", "deletecollection", "servicecloudstatuses.herald-lb.io", true},
		{"controller", "create", "servicecloudstatuses.herald-lb.io", false},
		{"speaker", "create", "leases.coordination.k8s.io", true},
		{"speaker", "watch", "leases.coordination.k8s.io", true},
		{"speaker", "update", "leases.coordination.k8s.io/herald-fip-198.51.100.24", true},
		{"speaker", "delete", "leases.coordination.k8s.io/herald-fip-198.51.100.24", false},
		{"controller", "get", "secret/" + cloudToken, false},
		{"controller", "list", "cloudadvertisements.herald-lb.io", true},
		{"speaker", "list", "secrets", false},
		{"controller", "get", "secret/herald-webhook-server-cert", true},
		{"controller", "get", "secret/memberlist", true},
		{"controller", "get", "secret/" + password, true},
		{"controller", "get", "secret/unrelated", false},
		{"controller", "list", "secrets", false},
	} {
		out, _ := c.Kubectl(ctx, "", "auth", "can-i", tc.verb, tc.what, "-n", namespace,
			"--as", "system:serviceaccount:"+namespace+":"+tc.sa)
		if got := strings.TrimSpace(out) == "yes"; got != tc.allowed {
			t.Errorf("%s may %s %s: %v, want %v", tc.sa, tc.verb, tc.what, got, tc.allowed)
		}
	}
	// And the real read is refused.
	if out, err := c.Kubectl(ctx, "", "--kubeconfig", spkKC, "-n", namespace, "get", "secret", "herald-webhook-server-cert"); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("the speaker read the webhook certificate Secret (the CA's private key): %v %.100s", err, out)
	}

	// Give late calls (status writes, Events) a moment, then scan the logs.
	time.Sleep(2 * time.Second)
	for name, logs := range map[string]*syncBuffer{"controller": ctrlLogs, "speaker": spkLogs} {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(strings.ToLower(line), "forbidden") {
				t.Errorf("%s: %s", name, line)
			}
		}
	}
}
