package bgp

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFRRMD5 checks TCP-MD5: the right password establishes, a wrong one
// does not, and Peers reports why.
func TestFRRMD5(t *testing.T) {
	l := newLab(t, frrBgpd, "vtysh")
	startFRR(t, l, frrConfig(routerASN, frrNeighbors([]netip.Addr{nodeV4}, nil, "neighbor 192.0.2.1 password herald-secret")), false)
	sp := l.startSpeaker(t, speakerConfig())
	peer := Peer{Name: "r", Address: routerV4, ASN: routerASN, SourceAddress: nodeV4, Password: "wrong", ConnectTime: 2 * time.Second}
	sp.setPeers(peer)
	time.Sleep(5 * time.Second)
	p, _ := sp.peer("r")
	if p.Up {
		t.Fatalf("session established with a wrong TCP-MD5 password")
	}
	t.Logf("wrong password: state %s, last error %q", p.State, p.LastError)
	if !strings.Contains(p.LastError, "TCP-MD5") {
		t.Errorf("LastError %q does not point at TCP-MD5", p.LastError)
	}
	peer.Password = "herald-secret"
	sp.setPeers(peer)
	d := waitUp(t, sp, "r", 15*time.Second)
	t.Logf("right password: established after %s", d.Round(time.Millisecond))
}

// TestBIRDInterop advertises one prefix to BIRD 2 over eBGP.
func TestBIRDInterop(t *testing.T) {
	l := newLab(t, "bird", "birdc")
	sock := startBIRD(t, l, `router id 192.0.2.2;
protocol device {}
protocol bgp herald {
  local 192.0.2.2 as 64513;
  neighbor 192.0.2.1 as 64512;
  ipv4 { import all; export none; };
}
`)
	sp := l.startSpeaker(t, speakerConfig())
	start := time.Now()
	sp.setPeers(Peer{Name: "bird", Address: routerV4, ASN: 64513, SourceAddress: nodeV4})
	waitUp(t, sp, "bird", 15*time.Second)
	t.Logf("BIRD session established after %s", time.Since(start).Round(time.Millisecond))
	sp.setAds(Advertisement{Prefix: netip.MustParsePrefix("198.51.100.20/32"), LocalPref: 300,
		Communities: []uint32{64512<<16 | 20}, LargeCommunities: [][3]uint32{{64512, 0, 20}}})
	eventually(t, 10*time.Second, "198.51.100.20/32 at BIRD", func() string {
		out, err := birdc(l, sock, "show", "route", "all", "198.51.100.20/32")
		if err != nil {
			return err.Error()
		}
		for _, want := range []string{"198.51.100.20/32", "BGP.next_hop: 192.0.2.1", "BGP.as_path: 64512", "(64512,20)", "(64512, 0, 20)"} {
			if !strings.Contains(out, want) {
				return fmt.Sprintf("%q missing in:\n%s", want, out)
			}
		}
		if strings.Contains(out, "local_pref: 300") {
			return "LOCAL_PREF sent on an eBGP session"
		}
		return ""
	})
}

// TestGoBGPdInterop advertises one prefix to a gobgpd.
func TestGoBGPdInterop(t *testing.T) {
	l := newLab(t, "gobgpd", "gobgp")
	dir := filepath.Join(l.dir, "gobgpd")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "gobgpd.toml")
	err := os.WriteFile(conf, []byte(`[global.config]
  as = 64513
  router-id = "192.0.2.2"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "192.0.2.1"
    peer-as = 64512
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	l.daemon(t, l.router, "gobgpd.log", "gobgpd", "-f", conf, "--api-hosts", "127.0.0.1:50061")
	sp := l.startSpeaker(t, speakerConfig())
	start := time.Now()
	sp.setPeers(Peer{Name: "gobgpd", Address: routerV4, ASN: 64513, SourceAddress: nodeV4})
	waitUp(t, sp, "gobgpd", 20*time.Second)
	t.Logf("gobgpd session established after %s", time.Since(start).Round(time.Millisecond))
	sp.setAds(Advertisement{Prefix: netip.MustParsePrefix("198.51.100.30/32"), Communities: []uint32{64512<<16 | 30}})
	eventually(t, 10*time.Second, "198.51.100.30/32 at gobgpd", func() string {
		out, err := exec.Command("ip", "netns", "exec", l.router, "gobgp", "-p", "50061", "global", "rib", "198.51.100.30/32").CombinedOutput()
		if err != nil {
			return fmt.Sprintf("%v: %s", err, out)
		}
		for _, want := range []string{"198.51.100.30/32", "192.0.2.1", "64512", "64512:30"} {
			if !strings.Contains(string(out), want) {
				return fmt.Sprintf("%q missing in:\n%s", want, out)
			}
		}
		return ""
	})
}

// TestFRRBFD brings a BFD session up between GoBGP's BFD and FRR's bfdd,
// then changes the BFD profile.
// bfdd runs without zebra, so the BFD peer is configured in bfdd directly
// rather than through bgpd's "neighbor ... bfd".
func TestFRRBFD(t *testing.T) {
	l := newLab(t, frrBgpd, frrBfdd, "vtysh")
	f := startFRR(t, l, frrConfig(routerASN, frrNeighbors([]netip.Addr{nodeV4}, nil)), true)
	sp := l.startSpeaker(t, speakerConfig())
	start := time.Now()
	peer := Peer{Name: "r", Address: routerV4, ASN: routerASN, SourceAddress: nodeV4,
		BFD: &BFDProfile{ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3}}
	sp.setPeers(peer)
	waitUp(t, sp, "r", 15*time.Second)
	d := eventually(t, 20*time.Second, "BFD up", func() string {
		out, err := f.vtysh("show bfd peers brief")
		if err != nil {
			return err.Error()
		}
		p, _ := sp.peer("r")
		bfddUp := false
		for _, line := range strings.Split(string(out), "\n") {
			bfddUp = bfddUp || (strings.Contains(line, "192.0.2.1") && strings.HasSuffix(strings.TrimSpace(line), "up"))
		}
		if p.BFDState != "up" || !bfddUp {
			return fmt.Sprintf("speaker BFD %q; bfdd:\n%s", p.BFDState, out)
		}
		return ""
	})
	t.Logf("BFD up on both sides %s after SetPeers (%s after BGP)", time.Since(start).Round(time.Millisecond), d.Round(time.Millisecond))

	// A changed profile reaches bfdd without resetting the BGP session.
	remoteTx := func() (uint32, string) {
		out, err := f.vtysh("show bfd peers json")
		if err != nil {
			return 0, err.Error()
		}
		var peers []struct {
			Peer     string `json:"peer"`
			Status   string `json:"status"`
			RemoteTx uint32 `json:"remote-transmit-interval"`
		}
		if err := json.Unmarshal(out, &peers); err != nil {
			return 0, err.Error()
		}
		for _, p := range peers {
			if p.Peer == "192.0.2.1" && p.Status == "up" {
				return p.RemoteTx, string(out)
			}
		}
		return 0, string(out)
	}
	for _, tx := range []uint32{300, 200} {
		peer.BFD = &BFDProfile{ReceiveInterval: 300 * time.Millisecond, TransmitInterval: time.Duration(tx) * time.Millisecond, DetectMultiplier: 3}
		sp.setPeers(peer)
		eventually(t, 20*time.Second, fmt.Sprintf("bfdd sees a %d ms transmit interval", tx), func() string {
			if got, out := remoteTx(); got != tx {
				return fmt.Sprintf("remote transmit interval %d:\n%s", got, out)
			}
			return ""
		})
	}
	out, err := f.vtysh("show bgp neighbors 192.0.2.1 json")
	if err != nil {
		t.Fatal(err)
	}
	var nbrs map[string]struct {
		Established int `json:"connectionsEstablished"`
		Dropped     int `json:"connectionsDropped"`
	}
	if err := json.Unmarshal(out, &nbrs); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if n := nbrs["192.0.2.1"]; n.Established != 1 || n.Dropped != 0 {
		t.Errorf("session established %d times, dropped %d; want once, never dropped\n%s", n.Established, n.Dropped, out)
	}
}
