package install

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	admissionregistrationclient "k8s.io/client-go/kubernetes/typed/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/internal/testcluster"
	"github.com/herald-lb/herald/internal/webhookcert"
)

// onePoolValues is a first install's values as docs/install.md shows them:
// the configuration in the same release as Herald.
const onePoolValues = `config:
  pools:
    - name: lan
      spec:
        addresses: ["192.0.2.200-192.0.2.250"]
  l2Advertisements:
    - name: lan
      spec:
        ipAddressPools: ["lan"]
`

// TestOneReleaseWithPools installs the chart with pools in its values in
// one release, with Helm's own install action (hack/chart), as `helm
// install` and a Flux HelmRelease do, into a real API server whose cluster
// has no CRDs yet. Helm creates the objects kind after kind and does not
// wait for the controller in between, so the configuration must be
// accepted before the controller serves the webhook, whichever comes first:
// Helm 4 creates the webhook configuration before the pools, Helm 3 after
// (hack/chart/order.go). Then the real controller, as the chart's
// ServiceAccount and with the chart's arguments, must fill the webhook
// configuration with webhooks that its server answers with a certificate
// their CA bundle trusts.
func TestOneReleaseWithPools(t *testing.T) {
	bin := buildHerald(t)
	for _, order := range []string{"helm4", "helm3"} {
		t.Run(order, func(t *testing.T) {
			r := installRelease(t, order, onePoolValues, "")
			for _, kind := range []string{"ipaddresspool", "l2advertisement"} {
				if out, err := r.c.Kubectl(t.Context(), "", "-n", namespace, "get", kind, "lan", "-o", "name"); err != nil {
					t.Fatalf("%s lan not created by the release: %v %s", kind, err, out)
				}
			}
			if n := len(r.webhookConfig(t).Webhooks); n != 0 {
				t.Errorf("the release's webhook configuration has %d webhooks before any controller serves them", n)
			}
			port := r.startController(t, bin)
			vwc := r.waitWebhooks(t)

			// What the API server does when it calls the webhook, but for
			// the route: trust the configuration's CA bundle, expect the
			// Service's name, POST an AdmissionReview to the configured
			// path. A pool overlapping lan is refused.
			wh := vwc.Webhooks[0]
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(wh.ClientConfig.CABundle) {
				t.Fatal("the caBundle holds no certificate")
			}
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
				RootCAs: roots, ServerName: wh.ClientConfig.Service.Name + "." + wh.ClientConfig.Service.Namespace + ".svc",
			}}}
			if allowed, msg := review(t, client, port, *wh.ClientConfig.Service.Path, `{"apiVersion":"metallb.io/v1beta1","kind":"IPAddressPool",
				"metadata":{"name":"overlap","namespace":"`+namespace+`"},"spec":{"addresses":["192.0.2.240/28"]}}`); allowed || !strings.Contains(msg, "lan") {
				t.Errorf("an overlapping pool: allowed %v (%q), want refused naming lan", allowed, msg)
			}
		})
	}
}

// TestUpgradeKeepsWebhooks: `helm upgrade` leaves the webhooks the
// controller wrote alone, since the chart does not render them; from a
// chart that did (before Herald wrote its own), Helm removes them and the
// controller writes them again. The releases hold no metallb.io objects:
// Helm patches those on every upgrade, and the API server here cannot
// reach the webhook Service.
func TestUpgradeKeepsWebhooks(t *testing.T) {
	bin := buildHerald(t)
	for _, tc := range []struct {
		name        string
		fromWebhook bool // the first release renders the webhooks itself
	}{
		{"from this chart", false},
		{"from a chart that rendered the webhooks", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chart := ""
			if tc.fromWebhook {
				chart = chartRenderingWebhooks(t)
			}
			r := installRelease(t, "helm3", "", chart)
			r.startController(t, bin)
			vwc := r.waitWebhooks(t)
			// Watch from the version seen, and fail on the first version
			// with fewer webhooks.
			w, err := r.vwcs.Watch(t.Context(), metav1.ListOptions{ResourceVersion: vwc.ResourceVersion,
				FieldSelector: fields.OneTermEqualSelector("metadata.name", vwc.Name).String()})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			chartTool(t, r.args("upgrade", "-set", "controller.logLevel=debug")...)
			if tc.fromWebhook {
				r.waitWebhooks(t)
				return
			}
			for drained := false; !drained; {
				select {
				case ev := <-w.ResultChan():
					if v, ok := ev.Object.(*admissionregistrationv1.ValidatingWebhookConfiguration); ok && len(v.Webhooks) < len(vwc.Webhooks) {
						t.Errorf("helm upgrade: %s left the configuration with %d webhooks", ev.Type, len(v.Webhooks))
					}
				case <-time.After(time.Second):
					drained = true
				}
			}
		})
	}
}

// release is a Helm release of the chart installed into its own control
// plane.
type release struct {
	c     *testcluster.Cluster
	vwcs  admissionregistrationclient.ValidatingWebhookConfigurationInterface
	flags []string // hack/chart's flags for this release
	chart string   // its chart folder; empty: charts/herald
}

// installRelease starts a control plane with no CRDs, and installs the
// chart (chartDir; empty: charts/herald) into it with values, creating
// the objects in kindOrder, without waiting for Pods (there are no nodes).
func installRelease(t *testing.T, kindOrder, values, chartDir string) *release {
	t.Helper()
	c := testcluster.Start(t, func(env *envtest.Environment) { env.CRDDirectoryPaths = nil })
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	createNamespace(t, c)
	r := &release{c: c, vwcs: cs.AdmissionregistrationV1().ValidatingWebhookConfigurations(), chart: chartDir,
		flags: []string{"-kubeconfig", c.Kubeconfig, "-namespace", namespace, "-wait=false", "-kind-order", kindOrder,
			"-f", valuesFile(t, values)}}
	chartTool(t, r.args("install")...)
	return r
}

// args are hack/chart's arguments for cmd (install, upgrade) on this
// release, with extra flags.
func (r *release) args(cmd string, extra ...string) []string {
	args := append(append([]string{cmd}, r.flags...), extra...)
	if r.chart != "" {
		args = append(args, r.chart)
	}
	return args
}

func (r *release) webhookConfig(t *testing.T) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	vwc, err := r.vwcs.Get(t.Context(), webhookcert.DefaultWebhookConfigName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the release's webhook configuration: %v", err)
	}
	return vwc
}

// startController runs the real controller as its Pod would (the
// Deployment's arguments, as the chart's ServiceAccount), but for what
// differs out of the cluster, and returns its webhook port.
func (r *release) startController(t *testing.T, bin string) int {
	t.Helper()
	out, err := r.c.Kubectl(t.Context(), "", "-n", namespace, "get", "deployment", "controller", "-o", "jsonpath={.spec.template.spec.containers[0].args}")
	if err != nil {
		t.Fatalf("controller Deployment: %v", err)
	}
	var args []string
	if err := json.Unmarshal([]byte(out), &args); err != nil {
		t.Fatalf("controller args %q: %v", out, err)
	}
	port := freePort(t)
	args = append(args, "--kubeconfig", kubeconfigAs(t, r.c, namespace, "controller"), "--namespace", namespace,
		"--webhook=on", "--webhook-port="+strconv.Itoa(port), "--cert-dir="+t.TempDir(),
		"--metrics-addr=0", "--health-addr=0")
	logs := start(t, bin, args...)
	t.Cleanup(func() {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(strings.ToLower(line), "forbidden") {
				t.Errorf("controller: %s", line)
			}
		}
	})
	return port
}

// waitWebhooks waits up to a minute for the controller's webhooks in the
// configuration, and returns it.
func (r *release) waitWebhooks(t *testing.T) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	want := controller.WebhookConfiguration(webhookcert.DefaultWebhookConfigName, namespace, webhookcert.DefaultServiceName, "", nil, admissionregistrationv1.Fail)
	deadline := time.Now().Add(60 * time.Second)
	for {
		vwc := r.webhookConfig(t)
		last := webhooksDiffer(vwc, want)
		if last == "" {
			return vwc
		}
		if time.Now().After(deadline) {
			t.Fatalf("the controller did not fill the webhook configuration in 60s: %s", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// chartRenderingWebhooks is a copy of charts/herald whose configuration
// renders the webhooks itself, with no CA bundle, as Herald's chart did
// before the controller wrote them.
func chartRenderingWebhooks(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "herald")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(root, "charts", "herald"))); err != nil {
		t.Fatal(err)
	}
	cfg := controller.WebhookConfiguration(webhookcert.DefaultWebhookConfigName, namespace, webhookcert.DefaultServiceName, "", nil, admissionregistrationv1.Fail)
	hooks, err := yaml.Marshal(map[string]any{"webhooks": cfg.Webhooks})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "templates", "webhook.yaml")
	tpl, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(strings.TrimSpace(string(tpl)), "{{- end }}")
	if err := os.WriteFile(path, []byte(s+"\n"+string(hooks)+"{{- end }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// webhooksDiffer says how cfg's webhooks differ from want's, the CA bundle
// aside, which must be set; "" when they do not.
func webhooksDiffer(cfg, want *admissionregistrationv1.ValidatingWebhookConfiguration) string {
	if len(cfg.Webhooks) != len(want.Webhooks) {
		return fmt.Sprintf("%d webhooks, want %d", len(cfg.Webhooks), len(want.Webhooks))
	}
	for i, w := range want.Webhooks {
		got := cfg.Webhooks[i]
		svc := got.ClientConfig.Service
		switch {
		case got.Name != w.Name:
			return fmt.Sprintf("webhook %d is %s, want %s", i, got.Name, w.Name)
		case len(got.ClientConfig.CABundle) == 0:
			return got.Name + " has no caBundle"
		case svc == nil || svc.Name != w.ClientConfig.Service.Name || svc.Namespace != w.ClientConfig.Service.Namespace ||
			svc.Path == nil || *svc.Path != *w.ClientConfig.Service.Path:
			return fmt.Sprintf("%s calls %+v", got.Name, svc)
		case got.FailurePolicy == nil || *got.FailurePolicy != *w.FailurePolicy:
			return got.Name + " has another failurePolicy"
		case len(got.Rules) != 1 || fmt.Sprint(got.Rules[0].Operations, got.Rules[0].APIGroups, got.Rules[0].APIVersions, got.Rules[0].Resources) !=
			fmt.Sprint(w.Rules[0].Operations, w.Rules[0].APIGroups, w.Rules[0].APIVersions, w.Rules[0].Resources):
			return fmt.Sprintf("%s rules %+v, want %+v", got.Name, got.Rules, w.Rules)
		}
	}
	return ""
}

// review POSTs an AdmissionReview creating obj to the controller's webhook
// server on 127.0.0.1:port and returns its verdict.
func review(t *testing.T, client *http.Client, port int, path, obj string) (bool, string) {
	t.Helper()
	var o struct {
		Kind     string
		Metadata struct{ Name, Namespace string }
	}
	if err := json.Unmarshal([]byte(obj), &o); err != nil {
		t.Fatal(err)
	}
	req := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "install-test", Operation: admissionv1.Create, Name: o.Metadata.Name, Namespace: o.Metadata.Namespace,
			Kind:   metav1.GroupVersionKind{Group: "metallb.io", Version: "v1beta1", Kind: o.Kind},
			Object: runtime.RawExtension{Raw: []byte(obj)},
		},
	}
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Post("https://127.0.0.1:"+strconv.Itoa(port)+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("webhook %s: %v", path, err)
	}
	defer resp.Body.Close()
	var got admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got.Response == nil {
		t.Fatalf("webhook %s: status %s, %v", path, resp.Status, err)
	}
	msg := ""
	if got.Response.Result != nil {
		msg = got.Response.Result.Message
	}
	return got.Response.Allowed, msg
}
