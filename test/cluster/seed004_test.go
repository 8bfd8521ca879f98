package cluster

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/lab"
	"github.com/herald-lb/herald/internal/testcluster"
)

// seed004Config is seed 004's IPAddressPool and L2Advertisement (Steps 2
// and 3), with the lab's addresses for the seed's 192.168.50.50-250.
const seed004Config = `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: default-pool
  namespace: metallb-system
spec:
  addresses:
  - ` + lab.Pool4 + `
  autoAssign: true
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: default-l2
  namespace: metallb-system
spec:
  ipAddressPools:
  - default-pool
`

// seed004App is seed 004's Step 4: two replicas behind a LoadBalancer
// Service, the lab's backend standing in for nginx (no registry here).
const seed004App = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-test
  labels:
    app: nginx-test
spec:
  replicas: 2
  selector:
    matchLabels:
      app: nginx-test
  template:
    metadata:
      labels:
        app: nginx-test
    spec:
      containers:
      - name: nginx
        image: ` + lab.PodImage + `
        imagePullPolicy: Never
        args: ["serve"]
        env:
        - {name: LISTEN, value: ":80"}
        - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        ports:
        - containerPort: 80
          name: http
---
apiVersion: v1
kind: Service
metadata:
  name: nginx-test-lb
spec:
  type: LoadBalancer
  selector:
    app: nginx-test
  ports:
  - protocol: TCP
    port: 80
    targetPort: 80
    name: http
`

// TestSeed004 follows seed 004 (MetalLB on Talos) as written, with
// Herald's plain manifest in place of MetalLB's: kubectl apply of
// config/manifests/herald.yaml, the seed's wait for the Pods, its pool and
// L2Advertisement, its two-replica app behind a LoadBalancer Service, then
// its failover drill: cordon the announcing node (found from the Service's
// status) and delete its speaker Pod, with curl never failing, then
// uncordon.
func TestSeed004(t *testing.T) {
	l := startCluster(t, 3)
	ctx := ctxT(t, 6*time.Minute)
	kubectl := func(stdin string, args ...string) string {
		t.Helper()
		out, err := l.Kubectl(ctx, stdin, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// Step 1, with the manifest from this checkout.
	kubectl("", "apply", "--server-side", "-f", filepath.Join(testcluster.RepoRoot(), "config", "manifests", "herald.yaml"))
	eventually(t, ctx, "the speaker DaemonSet's Pods exist", func() (bool, string) {
		out, err := l.Kubectl(ctx, "", "get", "pods", "-n", "metallb-system", "-l", "component=speaker", "-o", "name")
		return err == nil && len(strings.Fields(out)) == 3, out
	})
	kubectl("", "wait", "pod", "--for=condition=Ready", "-n", "metallb-system", "-l", "app=metallb", "--timeout=120s")
	// Steps 2 to 4.
	kubectl(seed004Config, "apply", "-f", "-")
	kubectl(seed004App, "apply", "-f", "-")
	var addr string
	eventually(t, ctx, "nginx-test-lb has an EXTERNAL-IP", func() (bool, string) {
		out, err := l.Kubectl(ctx, "", "get", "service", "nginx-test-lb", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}")
		addr = strings.TrimSpace(out)
		return err == nil && addr != "", fmt.Sprint(err)
	})
	ip := mustAddr(t, addr)
	if err := l.WaitKubeProxy(ctx, ip); err != nil {
		t.Fatal(err)
	}
	first := curlUntil(t, l, ip, time.Minute)
	t.Logf("nginx-test-lb %s answered by %s", addr, first.pod)

	// 4.8: the announcing node, from the Service's status (Herald's
	// ServiceL2Status, MetalLB's too).
	node := strings.TrimSpace(kubectl("", "get", "servicel2statuses", "-n", "metallb-system",
		"-l", "metallb.io/service-name=nginx-test-lb", "-o", "jsonpath={.items[0].status.node}"))
	if node == "" {
		t.Fatal("no ServiceL2Status names the announcing node")
	}
	speakerPodDrill(ctx, t, l, ip, node, func() { kubectl("", "cordon", node) }, func(pod string) {
		kubectl("", "delete", "pod", "-n", "metallb-system", pod)
	})
	curlUntil(t, l, ip, 10*time.Second)
	kubectl("", "uncordon", node)
}
