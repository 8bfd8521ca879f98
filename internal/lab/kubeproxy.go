package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// kubeIPVS is the dummy interface kube-proxy in IPVS mode puts every
// Service address on. Herald's speaker must not announce from it.
const kubeIPVS = "kube-ipvs0"

// kubeProxy stands in for kube-proxy (IPVS mode) and the pods behind every
// Service: it mirrors each LoadBalancer Service's status addresses onto
// kube-ipvs0 in every node, so the node accepts traffic for them, and runs
// a backend on every Service port in every node that answers with the
// node's name. Whether anyone reaches a node is up to Herald: with strict
// ARP the node's kernel never answers for these addresses.
type kubeProxy struct {
	client kubernetes.Interface
	nodes  []*member
	log    *slog.Logger

	trigger chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	onNodes  map[netip.Addr]bool // on kube-ipvs0 of every node
	ports    map[int32]bool      // served on every node
	backends []*http.Server
}

func newKubeProxy(client kubernetes.Interface, nodes []*member, log *slog.Logger) *kubeProxy {
	p := &kubeProxy{
		client: client, nodes: nodes, log: log,
		trigger: make(chan struct{}, 1),
		onNodes: map[netip.Addr]bool{},
		ports:   map[int32]bool{},
	}
	for _, n := range nodes {
		srv := &http.Server{
			Handler:           nodeName(n.Name),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
		p.backends = append(p.backends, srv)
	}
	return p
}

// nodeName is the backend's whole reply.
type nodeName string

func (n nodeName) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintln(w, string(n))
}

func (p *kubeProxy) start(ctx context.Context) error {
	// Port 80 always: it serves the nodes' own addresses too.
	if err := p.serve(80); err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(p.client, 0)
	inf := factory.Core().V1().Services()
	poke := func() {
		select {
		case p.trigger <- struct{}{}:
		default:
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}); err != nil {
		return err
	}
	lister := inf.Lister()
	factory.Start(ctx.Done())
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer factory.Shutdown()
		if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
			return
		}
		retry := time.NewTimer(time.Hour)
		defer retry.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.trigger:
			case <-retry.C:
			}
			svcs, err := lister.List(labels.Everything())
			if err == nil {
				err = p.sync(svcs)
			}
			if err != nil {
				p.log.Warn("kube-proxy stand-in", "err", err)
				retry.Reset(time.Second)
			}
		}
	}()
	return nil
}

// sync makes every node's kube-ipvs0 hold exactly the LoadBalancer
// addresses, and serves every Service port.
func (p *kubeProxy) sync(svcs []*corev1.Service) error {
	want := map[netip.Addr]bool{}
	var ports []int32
	for _, s := range svcs {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		for _, a := range ingressAddrs(s) {
			want[a] = true
		}
		for _, sp := range s.Spec.Ports {
			if sp.Protocol == corev1.ProtocolTCP || sp.Protocol == "" {
				ports = append(ports, sp.Port)
			}
		}
	}
	var errs []error
	for _, port := range ports {
		if err := p.serve(port); err != nil {
			errs = append(errs, err)
		}
	}
	// Removal first, so that waiters never see a stale address as present.
	p.mu.Lock()
	for a := range p.onNodes {
		if !want[a] {
			delete(p.onNodes, a)
		}
	}
	p.mu.Unlock()
	for _, n := range p.nodes {
		if err := mirror(n, want); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Namespace, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	p.mu.Lock()
	for a := range want {
		p.onNodes[a] = true
	}
	p.mu.Unlock()
	return nil
}

// mirror sets kube-ipvs0's addresses of node n to want.
func mirror(n *member, want map[netip.Addr]bool) error {
	link, err := n.nl.LinkByName(kubeIPVS)
	if err != nil {
		return err
	}
	have, err := n.nl.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	present := map[netip.Addr]bool{}
	for _, h := range have {
		a, ok := netip.AddrFromSlice(h.IP)
		if !ok {
			continue
		}
		a = a.Unmap()
		if a.IsLinkLocalUnicast() {
			continue
		}
		present[a] = true
		if !want[a] {
			if err := n.nl.AddrDel(link, &h); err != nil {
				return fmt.Errorf("remove %s: %w", a, err)
			}
		}
	}
	for a := range want {
		if present[a] {
			continue
		}
		if err := n.nl.AddrAdd(link, addrOf(netip.PrefixFrom(a, a.BitLen()))); err != nil {
			return fmt.Errorf("add %s: %w", a, err)
		}
	}
	return nil
}

// serve starts the backends on port in every node, once.
func (p *kubeProxy) serve(port int32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ports[port] {
		return nil
	}
	for i, n := range p.nodes {
		var ln net.Listener
		// One socket for both families ([::] without IPV6_V6ONLY).
		err := inNetns(n.ns, func() (err error) {
			ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: backend on port %d: %w", n.Namespace, port, err)
		}
		srv := p.backends[i]
		go func() { _ = srv.Serve(ln) }()
	}
	p.ports[port] = true
	return nil
}

// hasAll reports whether every address is on every node.
func (p *kubeProxy) hasAll(addrs []netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !slices.ContainsFunc(addrs, func(a netip.Addr) bool { return !p.onNodes[a] })
}

func (p *kubeProxy) close() error {
	for _, s := range p.backends {
		_ = s.Close()
	}
	p.wg.Wait()
	return nil
}
