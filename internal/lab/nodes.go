package lab

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/herald-lb/herald/internal/kubeconfig"
)

// ClusterOptions turn the lab's nodes into real Kubernetes nodes: each node
// namespace runs containerd, a kubelet and kube-proxy (iptables mode), the
// root namespace runs kube-controller-manager and kube-scheduler beside the
// API server, and Pods get addresses from the CNI bridge plugin. Herald is
// then installed by the caller, as Pods; the lab starts no herald process.
type ClusterOptions struct {
	// NodeAssets is the folder with kubelet, kube-proxy, kube-scheduler and
	// kube-controller-manager (HERALD_NODE_ASSETS, as printed by
	// `hack/testenv.sh nodes`).
	NodeAssets string
	// PodBinary is the static labpod binary (test/labpod): the sandbox
	// image and the e2e backends.
	PodBinary string
	// Images are image archives (`docker save` format, as `make image`
	// writes) imported into every node's containerd.
	Images []string
}

// Address plan of a cluster lab, inside 198.18.0.0/15: node N's Pods get
// 198.18.N.0/24 and Services 198.19.0.0/24. Pods reach the API server
// through the kubernetes Service, which points at apiAdvertise: an address
// on every node's loopback where the lab relays to the real API server.
const (
	clusterServiceCIDR = "198.19.0.0/24"
	clusterPodCIDR     = "198.18.0.0/16"
)

var (
	kubernetesServiceIP = netip.MustParseAddr("198.19.0.1")
	apiAdvertise        = netip.MustParseAddr("192.0.2.2")
)

// PodCIDR is the Pod range of the node with index i (node1 is 1).
func PodCIDR(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i), 0}), 24)
}

var nodeBinaries = []string{"kubelet", "kube-proxy", "kube-scheduler", "kube-controller-manager"}

func clusterPreflight(o *ClusterOptions) error {
	for _, tool := range []string{"containerd", "runc", "ctr", "nsenter", "unshare", "iptables", "conntrack"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s: %w (Debian: apt-get install containerd runc containernetworking-plugins iptables conntrack util-linux)", tool, err)
		}
	}
	for _, p := range []string{"/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("CNI plugin: %w (Debian: apt-get install containernetworking-plugins)", err)
		}
	}
	if o.NodeAssets == "" {
		return errors.New("no node binaries: set HERALD_NODE_ASSETS=$(hack/testenv.sh nodes)")
	}
	for _, b := range nodeBinaries {
		if _, err := os.Stat(filepath.Join(o.NodeAssets, b)); err != nil {
			return fmt.Errorf("node binaries: %w (run hack/testenv.sh nodes)", err)
		}
	}
	for _, f := range append([]string{o.PodBinary}, o.Images...) {
		if _, err := os.Stat(f); f == "" || err != nil {
			return fmt.Errorf("cluster lab: file %q not found", f)
		}
	}
	return nil
}

// configureClusterAPI makes the API server one that kubelets and Pods can
// use: certificates naming the kubernetes Service, the Node authorizer,
// ServiceAccount admission back on (envtest turns it off), webhooks reached
// at their Pods' addresses through the lab's egress proxy, kubelets at their
// InternalIP.
func (l *Lab) configureClusterAPI(api *envtest.APIServer, certDir string) error {
	ips := []net.IP{net.IPv4(127, 0, 0, 1), apiAdvertise.AsSlice(), kubernetesServiceIP.AsSlice()}
	names := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	ca, err := writeAPICerts(certDir, ips, names)
	if err != nil {
		return fmt.Errorf("API server certificates: %w", err)
	}
	api.SecureServing.CA = ca
	egressSock := filepath.Join(l.dir, "egress.sock")
	egressConfig := filepath.Join(l.dir, "egress.yaml")
	if err := os.WriteFile(egressConfig, []byte(`apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: `+egressSock+"\n"), 0o600); err != nil {
		return err
	}
	if err := l.startEgressProxy(egressSock); err != nil {
		return err
	}
	api.Configure().
		Set("service-cluster-ip-range", clusterServiceCIDR).
		Set("advertise-address", apiAdvertise.String()).
		Set("authorization-mode", "Node,RBAC").
		Set("enable-admission-plugins", "NodeRestriction").
		Disable("disable-admission-plugins").
		Set("enable-aggregator-routing", "true").
		Set("kubelet-preferred-address-types", "InternalIP").
		Set("egress-selector-config-file", egressConfig)
	return nil
}

// startEgressProxy serves HTTP CONNECT on a Unix socket for the API
// server's traffic to the cluster (webhooks, kubelets): the API server runs
// in the root namespace, which has no route to Pods or nodes, so each
// connection is dialled from inside the node that owns the address.
func (l *Lab) startEgressProxy(path string) error {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("egress proxy: %w", err)
	}
	l.onClose(func() error { ln.Close(); return nil })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by Close
			}
			go l.egress(c)
		}
	}()
	return nil
}

func (l *Lab) egress(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if req.Method != http.MethodConnect {
		fmt.Fprint(c, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
		return
	}
	target := req.URL.Host
	n := l.egressNode(target)
	var up net.Conn
	err = inNetns(n.ns, func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		up, err = d.DialContext(l.ctx, "tcp", target)
		return err
	})
	if err != nil {
		fmt.Fprintf(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n%s from %s: %v\n", target, n.Name, err)
		return
	}
	defer up.Close()
	if _, err := fmt.Fprint(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	if br.Buffered() > 0 {
		b, _ := br.Peek(br.Buffered())
		if _, err := up.Write(b); err != nil {
			return
		}
	}
	relay(l.ctx, c, up)
}

// egressNode is the node to dial target from: the one whose Pod range or
// address it is, else the first (a ClusterIP works from any node).
func (l *Lab) egressNode(target string) *member {
	host, _, _ := net.SplitHostPort(target)
	ip, err := netip.ParseAddr(host)
	if err == nil {
		for i, n := range l.nodes {
			if PodCIDR(i+1).Contains(ip) || n.IPv4 == ip || n.IPv6 == ip {
				return n
			}
		}
	}
	return l.nodes[0]
}

// relay copies both ways between a and b until both directions end or ctx
// is cancelled.
func relay(ctx context.Context, a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	select {
	case <-done:
		<-done
	case <-ctx.Done():
	}
}

// startNodes brings up the control plane's controllers and every node, and
// waits until each Node is Ready.
func (l *Lab) startNodes(ctx context.Context) error {
	start := time.Now()
	o := l.opts.Cluster
	if err := l.saveKernelTunables(); err != nil {
		return err
	}
	// containerd's shims outlive containerd; they name its socket, which
	// lives in the lab's folder.
	l.onClose(func() error { killMentioning(l.dir + string(filepath.Separator)); return nil })
	certDir := filepath.Join(l.dir, "apiserver")
	bin := func(b string) string { return filepath.Join(o.NodeAssets, b) }
	if err := l.startProcess("kube-controller-manager", "", []string{bin("kube-controller-manager"),
		"--kubeconfig", l.kubeconfig, "--leader-elect=false", "--secure-port=0",
		"--root-ca-file", filepath.Join(certDir, caCertFile),
		"--service-account-private-key-file", filepath.Join(certDir, saKeyFile),
		"--use-service-account-credentials=false", "--cluster-name", "herald-lab-" + l.id,
		// Quick to call a killed node NotReady, so its Pods leave the
		// Services' endpoints in seconds.
		"--node-monitor-period=1s", "--node-monitor-grace-period=10s",
	}); err != nil {
		return err
	}
	if err := l.startProcess("kube-scheduler", "", []string{bin("kube-scheduler"),
		"--kubeconfig", l.kubeconfig, "--leader-elect=false", "--secure-port=0"}); err != nil {
		return err
	}

	podBin, err := os.ReadFile(o.PodBinary)
	if err != nil {
		return fmt.Errorf("labpod binary: %w", err)
	}
	podImage := filepath.Join(l.dir, "labpod.tar")
	if err := writePodImage(podImage, podBin); err != nil {
		return fmt.Errorf("labpod image: %w", err)
	}
	proxyUser, err := l.env.AddUser(envtest.User{Name: "system:kube-proxy"}, l.cfg)
	if err != nil {
		return fmt.Errorf("kube-proxy user: %w", err)
	}
	proxyKubeconfig := filepath.Join(l.dir, "kube-proxy.kubeconfig")
	if err := kubeconfig.Write(proxyUser.Config(), proxyKubeconfig); err != nil {
		return err
	}

	var wg sync.WaitGroup
	errs := make([]error, len(l.nodes))
	for i, n := range l.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := &kubeNode{lab: l, m: n, index: i + 1, dir: filepath.Join(l.dir, n.Name)}
			errs[i] = k.start(ctx, append([]string{podImage}, o.Images...), proxyKubeconfig)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%s: %w", n.Name, errs[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := l.waitNodesReady(ctx, 2*time.Minute); err != nil {
		return err
	}
	l.opts.Log.Info("nodes ready", "nodes", len(l.nodes), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// waitNodesReady waits until every lab node is a Ready Node.
func (l *Lab) waitNodesReady(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		list, err := l.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		var notReady []string
		for _, n := range l.nodes {
			if err != nil || !nodeReady(list.Items, n.Name) {
				notReady = append(notReady, n.Name)
			}
		}
		if len(notReady) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			err := fmt.Errorf("nodes not Ready: %s", strings.Join(notReady, ", "))
			if perr := l.CheckProcesses(); perr != nil {
				err = errors.Join(err, perr)
			}
			for _, n := range notReady {
				err = fmt.Errorf("%w\nend of kubelet-%s log:\n%s", err, n, indent(l.LogTail("kubelet-"+n, 15)))
			}
			return err
		case <-tick.C:
		}
	}
}

func nodeReady(nodes []corev1.Node, name string) bool {
	for _, n := range nodes {
		if n.Name != name {
			continue
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue
			}
		}
	}
	return false
}

// NodeHTTPClient makes requests from inside node's network namespace (to
// its own addresses, its Pods, or Pods elsewhere through the Pod routes).
func (l *Lab) NodeHTTPClient(node string, timeout time.Duration) (*http.Client, error) {
	n, err := l.node(node)
	if err != nil {
		return nil, err
	}
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = inNetns(n.ns, func() error {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	// The lab's components serve self-signed certificates (metrics,
	// webhooks); what is tested through this client is what they answer.
	tr := &http.Transport{Proxy: nil, DialContext: dial, DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}

// WaitKubeProxy waits until kube-proxy on every node sends traffic for addr
// (a Service's ClusterIP or load-balancer address) to an endpoint: each
// syncs Services and EndpointSlices from the API server on its own
// schedule, and rejects the address until it knows an endpoint for it.
func (l *Lab) WaitKubeProxy(ctx context.Context, addr netip.Addr) error {
	match := " -d " + netip.PrefixFrom(addr, addr.BitLen()).String() + " "
	for _, n := range l.nodes {
		for {
			out, err := exec.CommandContext(ctx, "nsenter", "--net="+namespacePath(n.Namespace), "--", "iptables-save").Output()
			routed, refused := false, false
			for line := range strings.Lines(string(out)) {
				if !strings.Contains(line, match) {
					continue
				}
				routed = routed || strings.Contains(line, "-j KUBE-")
				refused = refused || strings.Contains(line, "-j REJECT") || strings.Contains(line, "-j DROP")
			}
			if err == nil && routed && !refused {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("kube-proxy on %s does not forward %s (routed %v, refused %v, %v)", n.Name, addr, routed, refused, err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}
