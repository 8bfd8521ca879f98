package bgp

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// frr is an FRR bgpd (and optionally bfdd) running standalone, without
// zebra or watchfrr, in the lab's router namespace.
type frr struct {
	l   *lab
	dir string
}

const (
	frrBgpd  = "/usr/lib/frr/bgpd"
	frrBfdd  = "/usr/lib/frr/bfdd"
	frrZebra = "/usr/lib/frr/zebra"
)

func startFRR(t *testing.T, l *lab, config string, withBFD bool) *frr {
	t.Helper()
	return startFRRDaemons(t, l, config, withBFD, false)
}

// startFRRZebra runs zebra beside bgpd: FRR's unnumbered peering learns
// the peer's link-local address from zebra, which hears its RAs.
func startFRRZebra(t *testing.T, l *lab, config string) *frr {
	t.Helper()
	return startFRRDaemons(t, l, config, false, true)
}

func startFRRDaemons(t *testing.T, l *lab, config string, withBFD, withZebra bool) *frr {
	t.Helper()
	dir := filepath.Join(l.dir, "frr")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	// bgpd drops privileges to the frr user by default; -S keeps root so
	// the temporary directory needs no ownership games.
	conf := filepath.Join(dir, "bgpd.conf")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if withBFD {
		// bfdd has no -S: it always drops to the frr user, which must
		// reach the temporary directory.
		for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o777|os.ModeSticky); err != nil {
				t.Fatal(err)
			}
		}
		bconf := filepath.Join(dir, "bfdd.conf")
		if err := os.WriteFile(bconf, []byte("bfd\n peer 192.0.2.1 local-address 192.0.2.2\n  receive-interval 300\n  transmit-interval 300\n !\n!\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		l.daemon(t, l.router, "bfdd.log", frrBfdd, "--bfdctl", filepath.Join(dir, "bfdd.sock"), "-f", bconf, "-i", filepath.Join(dir, "bfdd.pid"),
			"--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api"), "--log", "stdout", "--log-level", "debug")
	}
	zserv := filepath.Join(dir, "zserv.api")
	bgpd := []string{frrBgpd, "-S", "-f", conf, "-i", filepath.Join(dir, "bgpd.pid"),
		"--vty_socket", dir, "-z", zserv, "--log", "stdout", "--log-level", "debug"}
	if withZebra {
		zconf := filepath.Join(dir, "zebra.conf")
		if err := os.WriteFile(zconf, []byte("hostname router\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		l.daemon(t, l.router, "zebra.log", frrZebra, "-f", zconf, "-i", filepath.Join(dir, "zebra.pid"), "-z", zserv,
			"--vty_socket", dir, "-u", "root", "-g", vtyGroup(), "--log", "stdout", "--log-level", "debug")
		eventually(t, 10*time.Second, "zebra's socket", func() string {
			if _, err := os.Stat(zserv); err != nil {
				return err.Error()
			}
			return ""
		})
	} else {
		bgpd = append(bgpd, "-Z", "-n") // no zebra, no kernel routes
	}
	l.daemon(t, l.router, "bgpd.log", bgpd...)
	f := &frr{l: l, dir: dir}
	eventually(t, 10*time.Second, "bgpd vty up", func() string {
		if _, err := f.vtysh("show bgp summary json"); err != nil {
			return err.Error()
		}
		return ""
	})
	return f
}

func (f *frr) vtysh(cmd string) ([]byte, error) {
	out, err := exec.Command("ip", "netns", "exec", f.l.router, "vtysh", "--vty_socket", f.dir, "-c", cmd).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("vtysh -c %q: %v: %s", cmd, err, out)
	}
	return out, nil
}

func (f *frr) json(t *testing.T, cmd string, v any) {
	t.Helper()
	out, err := f.vtysh(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("vtysh -c %q: %v: %s", cmd, err, out)
	}
}

// frrNeighbor is the part of `show bgp neighbors json` the tests read.
type frrNeighbor struct {
	BgpState                   string `json:"bgpState"`
	ConnectionsEstablished     int    `json:"connectionsEstablished"`
	ConnectionsDropped         int    `json:"connectionsDropped"`
	LastResetDueTo             string `json:"lastResetDueTo"`
	LastNotificationReason     string `json:"lastNotificationReason"`
	LastErrorCodeSubcode       string `json:"lastErrorCodeSubcode"`
	BgpTimerUpEstablishedEpoch int64  `json:"bgpTimerUpEstablishedEpoch"`
	MessageStats               struct {
		UpdatesRecv int `json:"updatesRecv"`
	} `json:"messageStats"`
	PeerBfdInfo *struct {
		Status string `json:"status"`
	} `json:"peerBfdInfo"`
}

func (f *frr) neighbor(t *testing.T, addr string) frrNeighbor {
	t.Helper()
	m := map[string]frrNeighbor{}
	f.json(t, "show bgp neighbors "+addr+" json", &m)
	return m[addr]
}

// frrRoute is one path from `show bgp <afi> unicast <prefix> json`.
type frrRoute struct {
	Paths []struct {
		LocPrf    *uint32 `json:"locPrf"`
		Community *struct {
			String string   `json:"string"`
			List   []string `json:"list"`
		} `json:"community"`
		LargeCommunity *struct {
			String string `json:"string"`
		} `json:"largeCommunity"`
		Nexthops []struct {
			IP string `json:"ip"`
		} `json:"nexthops"`
		Aspath struct {
			String string `json:"string"`
		} `json:"aspath"`
	} `json:"paths"`
}

func (f *frr) route(t *testing.T, afi, prefix string) (frrRoute, bool) {
	t.Helper()
	var r frrRoute
	f.json(t, fmt.Sprintf("show bgp %s unicast %s json", afi, prefix), &r)
	return r, len(r.Paths) > 0
}

// frrNeighbors is the part of an FRR "router bgp" block that peers with
// the node (AS nodeASN) from each address in v4af and v6af, activated in
// the IPv4 and the IPv6 unicast family respectively, plus extra lines.
func frrNeighbors(v4af, v6af []netip.Addr, extra ...string) string {
	var b strings.Builder
	var seen []netip.Addr
	for _, a := range append(slices.Clone(v4af), v6af...) {
		if !slices.Contains(seen, a) {
			seen = append(seen, a)
			fmt.Fprintf(&b, " neighbor %s remote-as %d\n", a, nodeASN)
		}
	}
	for _, e := range extra {
		b.WriteString(" " + e + "\n")
	}
	for _, af := range []struct {
		name  string
		addrs []netip.Addr
	}{{"ipv4", v4af}, {"ipv6", v6af}} {
		if len(af.addrs) == 0 {
			continue
		}
		fmt.Fprintf(&b, " address-family %s unicast\n", af.name)
		for _, a := range af.addrs {
			fmt.Fprintf(&b, "  neighbor %s activate\n", a)
		}
		b.WriteString(" exit-address-family\n")
	}
	return b.String()
}

func frrConfig(asn uint32, body string) string {
	return fmt.Sprintf(`frr defaults traditional
hostname router
!
router bgp %d
 bgp router-id 192.0.2.2
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
%s!
`, asn, body)
}

// bird runs BIRD 2 in the router namespace.
func startBIRD(t *testing.T, l *lab, config string) string {
	t.Helper()
	dir := filepath.Join(l.dir, "bird")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "bird.ctl")
	l.daemon(t, l.router, "bird.log", "bird", "-f", "-c", conf, "-s", sock, "-P", filepath.Join(dir, "bird.pid"))
	eventually(t, 10*time.Second, "bird control socket", func() string {
		if _, err := birdc(l, sock, "show status"); err != nil {
			return err.Error()
		}
		return ""
	})
	return sock
}

func birdc(l *lab, sock string, cmd ...string) (string, error) {
	args := append([]string{"netns", "exec", l.router, "birdc", "-s", sock}, cmd...)
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %v: %s", strings.Join(cmd, " "), err, out)
	}
	return string(out), nil
}

// vtyGroup is FRR's vty group when the system has one (Debian's packages
// create frrvty), for daemons running as root.
func vtyGroup() string {
	if _, err := user.LookupGroup("frrvty"); err == nil {
		return "frrvty"
	}
	return "root"
}
