package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// inNetns runs fn on an OS thread switched into ns. Sockets fn opens stay in
// ns after the thread switches back. The work happens on a fresh goroutine
// so the caller's thread is never touched; if switching back fails, that
// goroutine ends still locked, and Go then discards the thread instead of
// letting another goroutine run in the wrong namespace.
func inNetns(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave network namespace: %w", err))
			return // still locked: the thread dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// runIP runs ip(8) and folds its stderr into the error.
func runIP(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// namespacePath is where ip-netns(8) keeps named namespaces.
func namespacePath(name string) string { return filepath.Join("/run/netns", name) }

func addNamespace(ctx context.Context, name string) (netns.NsHandle, error) {
	if err := runIP(ctx, "netns", "add", name); err != nil {
		return netns.None(), err
	}
	ns, err := netns.GetFromName(name)
	if err != nil {
		return netns.None(), fmt.Errorf("open namespace %s: %w", name, err)
	}
	return ns, nil
}

// deleteNamespace removes a named namespace; a missing one is not an error.
func deleteNamespace(name string) error {
	if _, err := os.Stat(namespacePath(name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return runIP(context.Background(), "netns", "delete", name)
}

// writeSysctls sets /proc/sys entries, given as dotted keys, inside ns.
func writeSysctls(ns netns.NsHandle, kv ...string) error {
	return inNetns(ns, func() error {
		for i := 0; i+1 < len(kv); i += 2 {
			p := filepath.Join("/proc/sys", strings.ReplaceAll(kv[i], ".", "/"))
			if err := os.WriteFile(p, []byte(kv[i+1]), 0o644); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", kv[i], kv[i+1], err)
			}
		}
		return nil
	})
}

// buildLAN creates the namespaces, the bridge and every member's link.
func (l *Lab) buildLAN(ctx context.Context) error {
	for _, m := range l.members() {
		if err := l.addMemberNamespace(ctx, m); err != nil {
			return err
		}
	}

	// The lan namespace only switches frames: no IPv6 of its own, so it
	// sends nothing onto the LAN.
	if err := writeSysctls(l.lan.ns, "net.ipv6.conf.all.disable_ipv6", "1", "net.ipv6.conf.default.disable_ipv6", "1"); err != nil {
		return fmt.Errorf("%s: %w", l.lan.Namespace, err)
	}
	// Snooping off: the bridge then floods multicast, so Neighbor
	// Solicitations reach every node whatever MLD reports it has seen.
	off := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}, MulticastSnooping: &off}
	if err := l.lan.nl.LinkAdd(br); err != nil {
		return fmt.Errorf("%s: bridge: %w", l.lan.Namespace, err)
	}
	if err := l.lan.nl.LinkSetUp(br); err != nil {
		return fmt.Errorf("%s: bridge up: %w", l.lan.Namespace, err)
	}

	for _, m := range append(append([]*member{}, l.nodes...), l.clientM) {
		if err := l.attach(m, br); err != nil {
			return fmt.Errorf("%s: %w", m.Namespace, err)
		}
	}
	return nil
}

// attach gives member m its eth0 on the bridge and its addresses.
func (l *Lab) attach(m *member, br netlink.Link) error {
	isNode := m != l.clientM
	// Before eth0 exists, so that it inherits them: no duplicate address
	// detection (addresses usable at once), and on nodes the strict ARP
	// kube-proxy asks for in IPVS mode: answer ARP only for addresses of the
	// receiving interface (not kube-ipvs0's), and source ARP requests from
	// the outgoing interface's address.
	kv := []string{"net.ipv6.conf.all.accept_dad", "0", "net.ipv6.conf.default.accept_dad", "0"}
	if isNode {
		kv = append(kv,
			"net.ipv4.conf.all.arp_ignore", "1", "net.ipv4.conf.default.arp_ignore", "1",
			"net.ipv4.conf.all.arp_announce", "2", "net.ipv4.conf.default.arp_announce", "2")
	}
	if err := writeSysctls(m.ns, kv...); err != nil {
		return err
	}

	// Created from the lan namespace, with eth0 placed straight into the
	// member's namespace: neither end ever exists in the root namespace.
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: "eth0", HardwareAddr: m.MAC, Namespace: netlink.NsFd(int(m.ns))},
		PeerName:  m.port,
	}
	if err := l.lan.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth: %w", err)
	}
	port, err := l.lan.nl.LinkByName(m.port)
	if err != nil {
		return fmt.Errorf("bridge port %s: %w", m.port, err)
	}
	if err := l.lan.nl.LinkSetMaster(port, br); err != nil {
		return fmt.Errorf("bridge port %s: %w", m.port, err)
	}
	if err := l.lan.nl.LinkSetUp(port); err != nil {
		return fmt.Errorf("bridge port %s up: %w", m.port, err)
	}

	eth, err := m.nl.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("eth0: %w", err)
	}
	if isNode {
		if err := writeSysctls(m.ns, "net.ipv4.conf.eth0.arp_ignore", "1", "net.ipv4.conf.eth0.arp_announce", "2"); err != nil {
			return err
		}
	}
	for _, p := range []netip.Prefix{netip.PrefixFrom(m.IPv4, 24), netip.PrefixFrom(m.IPv6, 64)} {
		if err := m.nl.AddrAdd(eth, addrOf(p)); err != nil {
			return fmt.Errorf("eth0 %s: %w", p, err)
		}
	}
	if err := m.nl.LinkSetUp(eth); err != nil {
		return fmt.Errorf("eth0 up: %w", err)
	}
	if isNode {
		// kube-proxy makes a dummy; kernels built without it have ifb, which
		// is just as inert for this purpose (no ARP, no traffic of its own).
		var ipvs netlink.Link = &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: kubeIPVS}}
		err := m.nl.LinkAdd(ipvs)
		if errors.Is(err, unix.EOPNOTSUPP) {
			ipvs = &netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: kubeIPVS}}
			err = m.nl.LinkAdd(ipvs)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", kubeIPVS, err)
		}
		if err := m.nl.LinkSetUp(ipvs); err != nil {
			return fmt.Errorf("%s up: %w", kubeIPVS, err)
		}
	}
	return nil
}

// addrOf is a netlink address for p; IPv6 ones skip duplicate detection.
func addrOf(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// CutLink takes the node's bridge port down, as if its cable were pulled:
// frames to and from the node stop, and its eth0 loses carrier. In the
// point-to-point topology the node's end of its uplink goes down too.
func (l *Lab) CutLink(node string) error { return l.setLink(node, false) }

// RestoreLink brings the node's bridge port (and uplink) back up.
func (l *Lab) RestoreLink(node string) error { return l.setLink(node, true) }

func (l *Lab) setLink(node string, up bool) error {
	n, err := l.node(node)
	if err != nil {
		return err
	}
	port, err := l.lan.nl.LinkByName(n.port)
	if err != nil {
		return fmt.Errorf("bridge port of %s: %w", node, err)
	}
	if up {
		err = l.lan.nl.LinkSetUp(port)
	} else {
		err = l.lan.nl.LinkSetDown(port)
	}
	if err != nil {
		return fmt.Errorf("bridge port of %s: %w", node, err)
	}
	return l.setUplink(n, up)
}
