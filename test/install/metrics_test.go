package install

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/testcluster"
)

// TestMetricsNeedAuthorization runs both components with their default
// metrics settings as the chart's ServiceAccounts, and scrapes them as
// Prometheus would: without a token the answer is 401, with the token of a
// ServiceAccount that may not get /metrics 403, and with the token of the
// ServiceAccount the chart binds to its metrics-reader ClusterRole 200.
func TestMetricsNeedAuthorization(t *testing.T) {
	c := testcluster.Start(t)
	ctx := context.Background()
	createNamespace(t, c)
	const monitoring = "monitoring"
	if out, err := c.Kubectl(ctx, "", "create", "namespace", monitoring); err != nil {
		t.Fatalf("namespace: %v %s", err, out)
	}
	for _, sa := range []string{"prometheus", "stranger"} {
		if out, err := c.Kubectl(ctx, "", "-n", monitoring, "create", "serviceaccount", sa); err != nil {
			t.Fatalf("serviceaccount %s: %v %s", sa, err, out)
		}
	}
	applyChartRBAC(t, c, "prometheus:\n  serviceAccount: prometheus\n  namespace: "+monitoring+"\n")
	const node = "herald-node-m"
	fakeNode(t, c, node)

	bin := buildHerald(t)
	ctrlAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	spkAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	start(t, bin, "controller", "--kubeconfig", kubeconfigAs(t, c, namespace, "controller"), "--namespace", namespace,
		"--webhook", "off", "--leader-elect=false", "--metrics-addr", ctrlAddr, "--health-addr", "0")
	start(t, bin, "speaker", "--kubeconfig", kubeconfigAs(t, c, namespace, "speaker"), "--namespace", namespace,
		"--node-name", node, "--ml-disabled", "--metrics-addr", spkAddr, "--handover-delay", "0s")

	token := func(sa string) string {
		out, err := c.Kubectl(ctx, "", "-n", monitoring, "create", "token", sa)
		if err != nil {
			t.Fatalf("token for %s: %v %s", sa, err, out)
		}
		return strings.TrimSpace(out)
	}
	// The certificate is self-signed, as the chart's ServiceMonitor expects
	// (insecureSkipVerify): what is checked here is who may read.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed by design
	}}
	scrape := func(addr, bearer string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
		if err != nil {
			return 0, "", err
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}

	for _, comp := range []struct{ name, addr, metric string }{
		{"controller", ctrlAddr, "controller_runtime_reconcile_total"},
		{"speaker", spkAddr, "controller_runtime_reconcile_total"},
	} {
		// Wait until it serves at all (it starts after its cache syncs).
		deadline := time.Now().Add(60 * time.Second)
		for {
			_, _, err := scrape(comp.addr, "")
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no HTTPS /metrics on %s after 60s: %v", comp.name, comp.addr, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
		for _, tc := range []struct {
			who, token string
			want       []int
		}{
			{"no token", "", []int{http.StatusUnauthorized}},
			// controller-runtime's filter answers 500 when the API server
			// rejects the token; what matters is that nothing is served.
			{"a forged token", "not-a-token", []int{http.StatusUnauthorized, http.StatusInternalServerError}},
			{"a ServiceAccount without the metrics-reader binding", token("stranger"), []int{http.StatusForbidden}},
			{"the ServiceAccount the chart binds to metrics-reader", token("prometheus"), []int{http.StatusOK}},
		} {
			code, body, err := scrape(comp.addr, tc.token)
			if err != nil {
				t.Errorf("%s, %s: %v", comp.name, tc.who, err)
				continue
			}
			if !slices.Contains(tc.want, code) {
				t.Errorf("%s, %s: HTTP %d, want %v", comp.name, tc.who, code, tc.want)
			}
			if code == http.StatusOK && !strings.Contains(body, comp.metric) {
				t.Errorf("%s, %s: the metrics lack %s:\n%.500s", comp.name, tc.who, comp.metric, body)
			}
			if code != http.StatusOK && strings.Contains(body, comp.metric) {
				t.Errorf("%s, %s: metrics served with HTTP %d", comp.name, tc.who, code)
			}
		}
	}
}
