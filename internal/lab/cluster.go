package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/herald-lb/herald/internal/kubeconfig"
)

// Cluster ranges for Service ClusterIPs. No traffic ever goes to them (there
// is no kube-proxy for ClusterIPs); they exist so that IPv4, IPv6 and
// dual-stack Services can be created.
const serviceCIDRs = "198.18.0.0/24,2001:db8:96::/112"

// startControlPlane boots etcd and kube-apiserver with Herald's CRDs. Their
// folders live inside the lab's working folder, so Down recognises the
// processes by their command lines after a crash.
func (l *Lab) startControlPlane() error {
	certDir, dataDir := filepath.Join(l.dir, "apiserver"), filepath.Join(l.dir, "etcd")
	for _, d := range []string{certDir, dataDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	api := &envtest.APIServer{CertDir: certDir}
	api.Configure().Set("service-cluster-ip-range", serviceCIDRs)
	// A webhook's Service is reached through its endpoints, never its
	// ClusterIP, which only kube-proxy on a node could route.
	api.Configure().Set("enable-aggregator-routing", "true")
	if l.opts.Cluster != nil {
		if err := l.configureClusterAPI(api, certDir); err != nil {
			return err
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: l.opts.Assets,
		CRDDirectoryPaths:     []string{l.opts.CRDs},
		ErrorIfCRDPathMissing: true,
		ControlPlane: envtest.ControlPlane{
			APIServer: api,
			Etcd:      &envtest.Etcd{DataDir: dataDir},
		},
	}
	cfg, err := env.Start()
	l.onClose(func() error {
		if err := withoutGone(env.Stop()); err != nil {
			return fmt.Errorf("stop control plane: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	l.env, l.cfg = env, cfg
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return fmt.Errorf("API server address %q: %w", cfg.Host, err)
	}
	l.apiAddr = u.Host
	// The forwarders listen on this same address inside each node, which
	// is only possible on a literal loopback address.
	if ip, err := netip.ParseAddrPort(l.apiAddr); err != nil || !ip.Addr().IsLoopback() {
		return fmt.Errorf("API server at %s: want a loopback IP address and port", l.apiAddr)
	}
	l.kubeconfig = filepath.Join(l.dir, "kubeconfig")
	if err := kubeconfig.Write(cfg, l.kubeconfig); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	l.client = cs
	return nil
}

// startForwarders opens, in every node namespace, a listener at the API
// server's own address that relays to the real one in the root namespace.
// The API server's certificate is for that address, so TLS just works. The
// same goes for Options.Forward's addresses (a cloud API's stand-in).
func (l *Lab) startForwarders() error {
	for _, addr := range l.opts.Forward {
		if ap, err := netip.ParseAddrPort(addr); err != nil || !ap.Addr().IsLoopback() {
			return fmt.Errorf("forward %s: want a loopback IP address and port", addr)
		}
	}
	for _, n := range l.nodes {
		for _, addr := range append([]string{l.apiAddr}, l.opts.Forward...) {
			if err := l.listenForward(n, addr, addr); err != nil {
				return err
			}
		}
	}
	return nil
}

// listenForward relays connections to addr inside node n to target in the
// root namespace.
func (l *Lab) listenForward(n *member, addr, target string) error {
	var ln net.Listener
	err := inNetns(n.ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: forwarder on %s: %w", n.Namespace, addr, err)
	}
	l.onClose(func() error { ln.Close(); return nil })
	go l.forward(ln, target)
	return nil
}

func (l *Lab) forward(ln net.Listener, target string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by Close
		}
		go func() {
			defer c.Close()
			var d net.Dialer
			up, err := d.DialContext(l.ctx, "tcp", target) // from the root namespace
			if err != nil {
				return
			}
			defer up.Close()
			relay(l.ctx, c, up)
		}()
	}
}

// seedCluster creates what a real cluster would already have: Herald's
// namespace and a Ready Node object per node, with the node's addresses
// (speakers find their memberlist peers there).
func (l *Lab) seedCluster(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: HeraldNamespace}}
	if _, err := l.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", HeraldNamespace, err)
	}
	for _, n := range l.nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:   n.Name,
			Labels: map[string]string{"kubernetes.io/hostname": n.Name, "kubernetes.io/os": "linux"},
		}}
		created, err := l.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		now := metav1.Now()
		created.Status = corev1.NodeStatus{
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: n.IPv4.String()},
				{Type: corev1.NodeInternalIP, Address: n.IPv6.String()},
				{Type: corev1.NodeHostName, Address: n.Name},
			},
			Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				Message: "herald lab", LastHeartbeatTime: now, LastTransitionTime: now,
			}},
		}
		if _, err := l.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("node %s status: %w", n.Name, err)
		}
	}
	return nil
}

// Kubectl runs the kubectl built with the control plane against the lab,
// from the root namespace, and returns its stdout.
func (l *Lab) Kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	return l.kubectlIn(ctx, "", stdin, args...)
}

// KubectlIn is Kubectl run inside a node's namespace, through its forwarder.
func (l *Lab) KubectlIn(ctx context.Context, node, stdin string, args ...string) (string, error) {
	n, err := l.node(node)
	if err != nil {
		return "", err
	}
	return l.kubectlIn(ctx, n.Namespace, stdin, args...)
}

func (l *Lab) kubectlIn(ctx context.Context, ns, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	argv := append([]string{filepath.Join(l.opts.Assets, "kubectl"), "--kubeconfig", l.kubeconfig}, args...)
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Apply applies manifests with kubectl apply, as a user would.
func (l *Lab) Apply(ctx context.Context, manifests string) error {
	_, err := l.Kubectl(ctx, manifests, "apply", "-f", "-")
	return err
}

// Config is the seed-style configuration the demo applies: one pool with
// both families and an L2Advertisement for it, in Herald's
// namespace, as a MetalLB user writes them.
func Config() string {
	return `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: lab
  namespace: ` + HeraldNamespace + `
spec:
  addresses:
  - ` + Pool4 + `
  - ` + Pool6 + `
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: lab
  namespace: ` + HeraldNamespace + `
spec:
  ipAddressPools:
  - lab
`
}

// Service describes a LoadBalancer Service for CreateService.
type Service struct {
	Name      string
	Namespace string // default "default"
	// Families: nil or [IPv4] is IPv4 only; [IPv6]; [IPv4, IPv6] requires
	// dual-stack.
	Families []corev1.IPFamily
	// Local sets externalTrafficPolicy: Local.
	Local bool
	// Ports are TCP ports; default 80. The nodes' backends serve them all.
	Ports       []int32
	Annotations map[string]string
	Labels      map[string]string
	// EndpointNodes are the nodes with a ready endpoint; nil means all.
	EndpointNodes []string
}

// CreateService creates a LoadBalancer Service and its EndpointSlices (no
// pods run in the lab, so the slices say where endpoints would be).
func (l *Lab) CreateService(ctx context.Context, s Service) (*corev1.Service, error) {
	if s.Namespace == "" {
		s.Namespace = "default"
	}
	if len(s.Ports) == 0 {
		s.Ports = []int32{80}
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Annotations: s.Annotations, Labels: s.Labels},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": s.Name},
		},
	}
	for _, p := range s.Ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
			Name: fmt.Sprintf("tcp-%d", p), Protocol: corev1.ProtocolTCP, Port: p, TargetPort: intstr.FromInt32(p),
		})
	}
	if s.Local {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	switch len(s.Families) {
	case 0:
	case 1:
		single := corev1.IPFamilyPolicySingleStack
		svc.Spec.IPFamilyPolicy, svc.Spec.IPFamilies = &single, s.Families
	default:
		dual := corev1.IPFamilyPolicyRequireDualStack
		svc.Spec.IPFamilyPolicy, svc.Spec.IPFamilies = &dual, s.Families
	}
	created, err := l.client.CoreV1().Services(s.Namespace).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("service %s/%s: %w", s.Namespace, s.Name, err)
	}
	nodes := s.EndpointNodes
	if nodes == nil {
		nodes = l.nodeNames()
	}
	if err := l.SetEndpoints(ctx, s.Namespace, s.Name, nodes...); err != nil {
		return created, err
	}
	return created, nil
}

func (l *Lab) nodeNames() []string {
	var out []string
	for _, n := range l.nodes {
		out = append(out, n.Name)
	}
	return out
}

// endpointSliceManager marks the slices the lab writes, in the label
// Kubernetes reserves for that.
const endpointSliceManager = "herald-lab"

// SetEndpoints makes the Service's endpoints exactly one ready endpoint on
// each named node (none when no node is named), one EndpointSlice per
// address family of the Service.
func (l *Lab) SetEndpoints(ctx context.Context, namespace, name string, nodes ...string) error {
	svc, err := l.client.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("service %s/%s: %w", namespace, name, err)
	}
	for _, node := range nodes {
		if _, err := l.node(node); err != nil {
			return err
		}
	}
	api := l.client.DiscoveryV1().EndpointSlices(namespace)
	for _, fam := range svc.Spec.IPFamilies {
		es := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Name:      fmt.Sprintf("%s-%s", name, strings.ToLower(string(fam))),
				Namespace: namespace,
				Labels: map[string]string{
					discoveryv1.LabelServiceName: name,
					discoveryv1.LabelManagedBy:   endpointSliceManager,
				},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: name, UID: svc.UID}},
			},
			AddressType: discoveryv1.AddressType(fam),
		}
		for _, p := range svc.Spec.Ports {
			es.Ports = append(es.Ports, discoveryv1.EndpointPort{
				Name: new(p.Name), Protocol: new(p.Protocol), Port: new(p.TargetPort.IntVal),
			})
		}
		for i, node := range l.nodeNames() {
			if !slices.Contains(nodes, node) {
				continue
			}
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{podIP(fam, i+1)},
				Conditions: discoveryv1.EndpointConditions{Ready: new(true), Serving: new(true), Terminating: new(false)},
				NodeName:   new(node),
			})
		}
		existing, err := api.Get(ctx, es.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = api.Create(ctx, es, metav1.CreateOptions{})
		case err == nil:
			es.ResourceVersion = existing.ResourceVersion
			_, err = api.Update(ctx, es, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("endpoints of %s/%s: %w", namespace, name, err)
		}
	}
	return nil
}

// podIP is the made-up pod address of node i's endpoint. Nothing is ever
// sent to it.
func podIP(fam corev1.IPFamily, i int) string {
	if fam == corev1.IPv6Protocol {
		return fmt.Sprintf("2001:db8:19::%d", i)
	}
	return fmt.Sprintf("198.19.0.%d", i)
}

// WaitAddresses waits until the controller has given the Service its
// addresses and the kube-proxy stand-in has put them on every node, and
// returns them.
func (l *Lab) WaitAddresses(ctx context.Context, namespace, name string) ([]netip.Addr, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		svc, err := l.client.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("service %s/%s: %w", namespace, name, err)
		}
		addrs := ingressAddrs(svc)
		if len(addrs) > 0 && l.proxy.hasAll(addrs) {
			return addrs, nil
		}
		select {
		case <-ctx.Done():
			err := fmt.Errorf("service %s/%s has no address yet (status %v)", namespace, name, svc.Status.LoadBalancer.Ingress)
			if perr := l.CheckProcesses(); perr != nil {
				err = errors.Join(err, perr)
			}
			return nil, err
		case <-tick.C:
		}
	}
}

func ingressAddrs(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// withoutGone drops the errors about processes that had exited already:
// `herald lab-down` (or a crash) may have stopped the control plane first,
// and whether envtest then sees it as exited or fails to signal it
// ("no such process") depends on when it reaped it.
func withoutGone(err error) error {
	if err == nil {
		return nil
	}
	errs := []error{err}
	var agg utilerrors.Aggregate
	if errors.As(err, &agg) {
		errs = agg.Errors()
	}
	var keep []error
	for _, e := range errs {
		if !errors.Is(e, syscall.ESRCH) && !errors.Is(e, os.ErrProcessDone) {
			keep = append(keep, e)
		}
	}
	return errors.Join(keep...)
}
