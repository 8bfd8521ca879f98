package e2e

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	heraldv1alpha1 "github.com/herald-lb/herald/api/v1alpha1"
	heraldv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/cloud/hetzner/hcloudsim"
	"github.com/herald-lb/herald/internal/cloudlease"
	"github.com/herald-lb/herald/internal/lab"
)

// cloudLab is a routed lab whose cloud is the API stand-in: the lab router
// sends a floating IP to the node whose server (server n runs node n) the
// stand-in has it assigned to, and to no one before, as Hetzner's network
// does. Every speaker talks to the stand-in through hcloud-go.
type cloudLab struct {
	*lab.Lab
	sim  *hcloudsim.Sim
	fips map[int64]netip.Prefix

	mu  sync.Mutex
	bad error // a route the router could not take
}

func startCloudLab(t *testing.T, nodes int, fips map[int64]netip.Prefix) *cloudLab {
	t.Helper()
	cl := &cloudLab{fips: fips}
	ready := make(chan struct{})
	cl.sim = hcloudsim.New(hcloudsim.Options{Tokens: []string{cloudToken}, ActionTime: 200 * time.Millisecond,
		OnAssigned: func(fip, server int64) {
			<-ready
			node := ""
			if server != 0 {
				node = fmt.Sprintf("node%d", server)
			}
			if err := cl.RouteVia(fips[fip], node); err != nil {
				cl.mu.Lock()
				cl.bad = cmpErr(cl.bad, err)
				cl.mu.Unlock()
			}
		}})
	t.Cleanup(cl.sim.Close)
	for i := int64(1); i <= int64(nodes); i++ {
		cl.sim.AddServer(i, fmt.Sprintf("node%d", i))
	}
	for id, p := range fips {
		ip := p.String()
		if p.Addr().Is4() {
			ip = p.Addr().String()
		}
		cl.sim.AddFloatingIP(id, fmt.Sprintf("fip-%d", id), ip, 0)
	}
	u, err := url.Parse(cl.sim.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	cl.Lab = startBareLab(t, func(o *lab.Options) {
		o.Nodes = nodes
		o.Router, o.PointToPoint = true, true
		o.Forward = []string{u.Host}
		o.SpeakerArgs = func(kubeconfig string, n lab.Node) []string {
			return append(lab.DefaultSpeakerArgs(kubeconfig, n), "--cloud-endpoint", cl.sim.Endpoint(),
				"--cloud-lease", "3s", "--cloud-hold-down", "5s")
		}
	})
	close(ready)
	// Every speaker sees every other before the test begins, so the first
	// election is among all of them and spreads the IPs over the nodes.
	wctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := cl.WaitMembers(wctx, nodes); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		if cl.bad != nil {
			t.Errorf("router: %v", cl.bad)
		}
	})
	return cl
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// setProviderIDs sets spec.providerID hcloud://<n> on node n for each
// named node, as Hetzner's cloud controller manager does.
func (cl *cloudLab) setProviderIDs(ctx context.Context, t *testing.T, nodes ...int) {
	t.Helper()
	for _, i := range nodes {
		patch := fmt.Sprintf(`{"spec":{"providerID":"hcloud://%d"}}`, i)
		if _, err := cl.Client().CoreV1().Nodes().Patch(ctx, fmt.Sprintf("node%d", i), types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// watchAssignment fails the test on the first sample, every 20 ms for d,
// in which floating IP id is on another server than want.
func (cl *cloudLab) watchAssignment(t *testing.T, id, want int64, phase string, d time.Duration) int {
	t.Helper()
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
		if a := cl.sim.Assignment(id); a != want {
			t.Fatalf("%s: the floating IP moved to server %d (want it kept on server %d)", phase, a, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// waitMoved waits until floating IP id is on a server other than from, and
// returns it.
func (cl *cloudLab) waitMoved(t *testing.T, id, from int64, d time.Duration) int64 {
	t.Helper()
	var got int64
	eventually(t, fmt.Sprintf("floating IP %d off server %d", id, from), d, func() (bool, string) {
		got = cl.sim.Assignment(id)
		return got != from && got != 0, fmt.Sprintf("on server %d", got)
	})
	return got
}

// watchOwner fails the test on the first sample, every 20 ms for d, in
// which floating IP id has left server, its Lease is not held by that
// server's node, or the Service svc has no ServiceCloudStatus of that node:
// the owner let go of the IP, even if the IP itself stayed. It returns the
// number of samples.
func (cl *cloudLab) watchOwner(ctx context.Context, t *testing.T, id, server int64, svc, phase string, d time.Duration) int {
	t.Helper()
	node := fmt.Sprintf("node%d", server)
	c, err := client.New(cl.Config(), client.Options{Scheme: cloudScheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	status := types.NamespacedName{Namespace: lab.HeraldNamespace, Name: heraldv1beta1.StatusName("cloud", node, "default", svc)}
	lease := cl.leaseName(id)
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
		if a := cl.sim.Assignment(id); a != server {
			t.Fatalf("%s: floating IP %d moved to server %d (want it kept on server %d)", phase, id, a, server)
		}
		l, err := cl.Client().CoordinationV1().Leases(lab.HeraldNamespace).Get(ctx, lease, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: lease %s: %v", phase, lease, err)
		}
		if h := cloudlease.Holder(l); h != node {
			t.Fatalf("%s: lease %s is held by %s, want %s: the owner let go of floating IP %d", phase, lease, cmp.Or(h, "nobody"), node, id)
		}
		var st heraldv1alpha1.ServiceCloudStatus
		if err := c.Get(ctx, status, &st); err != nil {
			t.Fatalf("%s: ServiceCloudStatus %s of %s: %v", phase, status, svc, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// leaseName is the name of floating IP id's Lease: it is named by the
// IP's election key, its address or its IPv6 /64.
func (cl *cloudLab) leaseName(id int64) string {
	p := cl.fips[id]
	if p.Addr().Is4() {
		return cloudlease.LeaseName(p.Addr().String())
	}
	return cloudlease.LeaseName(p.Masked().String())
}

func cloudScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := heraldv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// cloudStatuses lists the ServiceCloudStatus objects of the Service name
// as "node/server".
func (cl *cloudLab) cloudStatuses(ctx context.Context, t *testing.T, name string) []string {
	t.Helper()
	out, err := cl.Kubectl(ctx, "", "get", "servicecloudstatuses", "-n", lab.HeraldNamespace, "-o",
		`jsonpath={range .items[?(@.status.serviceName=="`+name+`")]}{.status.node}/{.status.server}{"\n"}{end}`)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(out)
}

// waitStatus waits until the Service's one ServiceCloudStatus names the
// node and its server.
func (cl *cloudLab) waitStatus(ctx context.Context, t *testing.T, name, node string, server int64) {
	t.Helper()
	want := fmt.Sprintf("%s/%d", node, server)
	eventually(t, "one ServiceCloudStatus naming "+want, 20*time.Second, func() (bool, string) {
		got := cl.cloudStatuses(ctx, t, name)
		return len(got) == 1 && got[0] == want, fmt.Sprint(got)
	})
}
