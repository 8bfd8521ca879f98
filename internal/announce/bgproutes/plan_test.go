package bgproutes

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/internal/announce"
	"github.com/herald-lb/herald/internal/config"
)

func TestPlan(t *testing.T) {
	sel := func(s string) []labels.Selector {
		l, err := labels.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return []labels.Selector{l}
	}
	noExport := config.Community{Standard: 65535<<16 | 65281}
	seed := config.Community{Standard: 65535<<16 | 65282}
	router := &config.Peer{Name: "router", MyASN: 64500, ASN: 64501}
	rackB := &config.Peer{Name: "rack-b", MyASN: 64500, ASN: 64502, NodeSelectors: sel("rack=b")}
	base := func(ads ...*config.BGPAdvertisement) *config.Config {
		return &config.Config{Peers: []*config.Peer{rackB, router}, BGPAdvertisements: ads}
	}
	host32 := &config.BGPAdvertisement{Name: "host", Pools: []string{"p"}, AggregationLength: 32, AggregationLengthV6: 128,
		LocalPref: 100, Communities: []config.Community{seed}}
	agg24 := &config.BGPAdvertisement{Name: "agg", Pools: []string{"p"}, AggregationLength: 24, AggregationLengthV6: 64,
		Communities: []config.Community{noExport}, Peers: []string{"router"}}
	onlyRackA := &config.BGPAdvertisement{Name: "rack-a", Pools: []string{"p"}, AggregationLength: 32, AggregationLengthV6: 128,
		NodeSelectors: sel("rack=a")}
	nodes := map[string]announce.Node{
		"n1": {Name: "n1", Labels: map[string]string{"rack": "a"}},
		"n2": {Name: "n2", Labels: map[string]string{"rack": "b"}},
		"n3": {Name: "n3", Labels: map[string]string{announce.LabelExcludeLB: ""}},
	}
	eps := map[string]bool{"n1": true}
	svc := func(key string, local bool, ips ...string) announce.Service {
		s := announce.Service{Key: key, Pool: "p", Local: local, EndpointNodes: eps}
		for _, ip := range ips {
			s.Addrs = append(s.Addrs, netip.MustParseAddr(ip))
		}
		return s
	}
	tests := []struct {
		name   string
		cfg    *config.Config
		svcs   []announce.Service
		node   string
		peers  string
		routes string // prefix/localpref/communities/peers;...
	}{
		{"seed 002: /32 with localPref and community to every peer", base(host32), []announce.Service{svc("a/web", false, "192.0.2.10")}, "n2",
			"rack-b,router", "192.0.2.10/32 100 [65535:65282] all [a/web]"},
		{"Cluster: every eligible node, endpoint elsewhere", base(host32), []announce.Service{svc("a/web", false, "192.0.2.10")}, "n1",
			"router", "192.0.2.10/32 100 [65535:65282] all [a/web]"},
		{"Local: only nodes with an endpoint", base(host32), []announce.Service{svc("a/web", true, "192.0.2.10")}, "n2", "rack-b,router", ""},
		{"excluded node advertises nothing", base(host32), []announce.Service{svc("a/web", false, "192.0.2.10")}, "n3", "router", ""},
		{"aggregation merges services, peers limited", base(agg24), []announce.Service{svc("a/x", false, "192.0.2.10"), svc("a/y", false, "192.0.2.99", "2001:db8::5")}, "n1",
			"router", "192.0.2.0/24 0 [65535:65281] router [a/x a/y];2001:db8::/64 0 [65535:65281] router [a/y]"},
		{"advertisement node selector", base(onlyRackA), []announce.Service{svc("a/web", false, "192.0.2.10")}, "n2", "rack-b,router", ""},
		{"two advertisements: union of communities, all peers", base(host32, agg24), []announce.Service{svc("a/web", false, "192.0.2.10")}, "n1",
			"router", "192.0.2.0/24 0 [65535:65281] router [a/web];192.0.2.10/32 100 [65535:65282] all [a/web]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Plan(announce.Inputs{Config: tc.cfg, Nodes: nodes, Services: tc.svcs}, tc.node)
			var peers []string
			for _, x := range p.Peers {
				peers = append(peers, x.Name)
			}
			if got := strings.Join(peers, ","); got != tc.peers {
				t.Errorf("peers %q, want %q", got, tc.peers)
			}
			var rs []string
			for _, r := range p.Routes {
				to := "all"
				if r.Peers != nil {
					to = strings.Join(r.Peers, ",")
				}
				var cs []string
				for _, c := range r.Communities {
					cs = append(cs, c.String())
				}
				rs = append(rs, r.Prefix.String()+" "+strconv.FormatUint(uint64(r.LocalPref), 10)+" ["+strings.Join(cs, " ")+"] "+to+" ["+strings.Join(r.Services, " ")+"]")
			}
			if got := strings.Join(rs, ";"); got != tc.routes {
				t.Errorf("routes\n got %q\nwant %q", got, tc.routes)
			}
		})
	}
}
