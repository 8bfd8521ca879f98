package cluster

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/internal/lab"
)

// TestChartLayer2 installs the chart with its pool in config.* values, as
// one Helm release, on three real nodes, and proves on Pods what the
// process-based e2e proves: a Service gets an address that the client
// reaches through kube-proxy; deleting the announcing node's speaker Pod
// hands over without a failed request; a killed node fails over; the
// speakers' metrics are served.
func TestChartLayer2(t *testing.T) {
	l := startCluster(t, 3)
	helm(t, l, "install", lab.L2Values)

	addr := backends(t, l, "web", corev1.ServiceExternalTrafficPolicyCluster)
	first := curlUntil(t, l, addr, time.Minute)
	t.Logf("%s answered by Pod %s on %s", addr, first.pod, first.node)

	t.Run("metrics from the Pods", func(t *testing.T) {
		announcer, err := l.WaitAnnouncer(ctxT(t, 30*time.Second), addr)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range l.Nodes() {
			body := scrape(t, l, n.Name, n.IPv4.String()+":7472")
			announced := strings.Contains(body, `metallb_speaker_announced{ip="`+addr.String()+`",node="`+n.Name+`",protocol="layer2",service="default/web"} 1`)
			if announced != (n.Name == announcer) {
				t.Errorf("speaker on %s: metallb_speaker_announced for %s is %v, but %s answers ARP for it", n.Name, addr, announced, announcer)
			}
		}
	})

	t.Run("speaker Pod deleted on the announcing node", func(t *testing.T) {
		ctx := ctxT(t, 2*time.Minute)
		from, err := l.WaitAnnouncer(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		speakerPodDrill(ctx, t, l, addr, from, nil, func(pod string) {
			if err := l.Client().CoreV1().Pods(lab.HeraldNamespace).Delete(ctx, pod, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		})
	})

	t.Run("announcing node killed", func(t *testing.T) {
		// Local traffic policy: the surviving announcer sends to its own
		// backend, so what is measured is Herald's failover, not how soon
		// the dead node's Pods leave the endpoints.
		ctx := ctxT(t, 3*time.Minute)
		local := backends(t, l, "local", corev1.ServiceExternalTrafficPolicyLocal)
		curlUntil(t, l, local, time.Minute)
		from, err := l.WaitAnnouncer(ctx, local)
		if err != nil {
			t.Fatal(err)
		}
		probe := l.Probe(ctx, local, 80, 20*time.Millisecond)
		time.Sleep(time.Second)
		killed := time.Now()
		if err := l.KillNode(from); err != nil {
			t.Fatal(err)
		}
		s, err := probe.Wait(ctxT(t, 30*time.Second), func(s lab.Sample) bool {
			a, ok := parseAnswer(s.Node)
			return s.Err == nil && ok && a.node != from && s.Start.After(killed)
		})
		if err != nil {
			t.Fatalf("no answer from another node within 30s of killing %s", from)
		}
		recovered := s.End
		time.Sleep(3 * time.Second)
		samples := probe.Stop()
		for _, x := range samples {
			if x.Start.After(recovered) && x.Err != nil {
				t.Fatalf("request at +%s failed after the failover: %v", x.Start.Sub(killed).Round(time.Millisecond), x.Err)
			}
		}
		t.Logf("killed %s: answered from %s after %s", from, s.Node, recovered.Sub(killed).Round(time.Millisecond))
	})
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// scrape reads /metrics at hostport from inside node's network namespace as
// a Prometheus would: over HTTPS with a ServiceAccount token bound to the
// chart's metrics-reader ClusterRole when the speakers serve it securely.
func scrape(t *testing.T, l *lab.Lab, node, hostport string) string {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	ds, err := l.Client().AppsV1().DaemonSets(lab.HeraldNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=speaker"})
	if err != nil || len(ds.Items) != 1 {
		t.Fatalf("speaker DaemonSet: %v (%d found)", err, len(ds.Items))
	}
	secure := slices.Contains(ds.Items[0].Spec.Template.Spec.Containers[0].Args, "--metrics-secure=true")
	c, err := l.NodeHTTPClient(node, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + hostport + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if secure {
		req.URL.Scheme = "https"
		req.Header.Set("Authorization", "Bearer "+scraperToken(t, l))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", req.URL, node, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s from %s: %s %v\n%s", req.URL, node, resp.Status, err, tail(string(b), 5))
	}
	return string(b)
}

// scraperToken is a token of a ServiceAccount bound to the chart's
// metrics-reader ClusterRole.
func scraperToken(t *testing.T, l *lab.Lab) string {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	roles, err := l.Client().RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	role := ""
	for _, r := range roles.Items {
		if strings.HasSuffix(r.Name, "metrics-reader") {
			role = r.Name
		}
	}
	if role == "" {
		t.Fatal("the chart installed no metrics-reader ClusterRole")
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "scraper", Namespace: "default"}}
	if _, err := l.Client().CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "scraper"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "scraper", Namespace: "default"}},
	}
	if _, err := l.Client().RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	tok, err := l.Client().CoreV1().ServiceAccounts("default").CreateToken(ctx, "scraper", &authv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Status.Token
}
