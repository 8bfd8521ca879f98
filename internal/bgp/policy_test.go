package bgp

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
)

func TestBuildPlan(t *testing.T) {
	cfg := Config{RouterID: netip.MustParseAddr("192.0.2.1"), ASN: 64512}
	peers := map[string]Peer{
		"ibgp4": {Name: "ibgp4", Address: netip.MustParseAddr("192.0.2.2"), ASN: 64512},
		"ebgp4": {Name: "ebgp4", Address: netip.MustParseAddr("192.0.2.3"), ASN: 64513},
		"ibgp6": {Name: "ibgp6", Address: netip.MustParseAddr("2001:db8::2"), ASN: 64512},
		"dual": {Name: "dual", Address: netip.MustParseAddr("192.0.2.4"), ASN: 64512, DualStack: true,
			OtherNextHop: netip.MustParseAddr("2001:db8::4")},
		// Without a next hop of the other family, that family is not sent.
		"dualNoHop": {Name: "dualNoHop", Address: netip.MustParseAddr("192.0.2.6"), ASN: 64512, DualStack: true},
		"local":     {Name: "local", Address: netip.MustParseAddr("192.0.2.5"), ASN: 64600, LocalASN: 64600},
		"dynInt":    {Name: "dynInt", Address: netip.MustParseAddr("192.0.2.7"), Dynamic: DynamicInternal},
		"dynExt":    {Name: "dynExt", Address: netip.MustParseAddr("192.0.2.8"), Dynamic: DynamicExternal},
	}
	v4 := netip.MustParsePrefix("198.51.100.10/32")
	ads, err := normalizeAds([]Advertisement{
		{Prefix: v4, LocalPref: 100, Communities: []uint32{65535<<16 | 65282, 64512<<16 | 1}},
		{Prefix: v4, LocalPref: 200, Communities: []uint32{64512<<16 | 1}, LargeCommunities: [][3]uint32{{1, 2, 3}}, Peers: []string{"ibgp4", "ebgp4", "missing"}},
		{Prefix: netip.MustParsePrefix("2001:db8:1::10/64"), LocalPref: 50},
		{Prefix: netip.MustParsePrefix("::ffff:198.51.100.0/120")},
	})
	if err != nil {
		t.Fatal(err)
	}
	v6net := netip.MustParsePrefix("2001:db8:1::/64")
	v4net := netip.MustParsePrefix("198.51.100.0/24")
	got := buildPlan(cfg, peers, ads)
	both := []uint32{64512<<16 | 1, 65535<<16 | 65282}
	want := plan{
		"ibgp4": {v4: {LocalPref: 200, Communities: both, Large: [][3]uint32{{1, 2, 3}}}, v4net: {}},
		// eBGP: no LOCAL_PREF.
		"ebgp4":     {v4: {Communities: both, Large: [][3]uint32{{1, 2, 3}}}, v4net: {}},
		"ibgp6":     {v6net: {LocalPref: 50}},
		"dual":      {v4: {LocalPref: 100, Communities: both}, v6net: {LocalPref: 50}, v4net: {}},
		"dualNoHop": {v4: {LocalPref: 100, Communities: both}, v4net: {}},
		// iBGP by LocalASN.
		"local": {v4: {LocalPref: 100, Communities: both}, v4net: {}},
		// Dynamic ASN: iBGP and eBGP by mode.
		"dynInt": {v4: {LocalPref: 100, Communities: both}, v4net: {}},
		"dynExt": {v4: {Communities: both}, v4net: {}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plan:\n got %v\nwant %v", got, want)
	}

	if c := changedPeers(got, got); len(c) != 0 {
		t.Errorf("changedPeers of identical plans = %v", c)
	}
	next := buildPlan(cfg, peers, ads[:1])
	if c := changedPeers(got, next); !reflect.DeepEqual(c, []string{"dual", "dualNoHop", "dynExt", "dynInt", "ebgp4", "ibgp4", "ibgp6", "local"}) {
		t.Errorf("changedPeers = %v", c)
	}
	next = buildPlan(cfg, peers, append(ads[:3:3], ads[3]))
	if c := changedPeers(got, next); len(c) != 0 {
		t.Errorf("changedPeers after identical rebuild = %v", c)
	}
}

func TestNormalizeAdsRejectsInvalid(t *testing.T) {
	if _, err := normalizeAds([]Advertisement{{}}); err == nil {
		t.Fatal("invalid prefix accepted")
	}
}

func TestExportPolicy(t *testing.T) {
	peers := map[string]Peer{
		"a": {Name: "a", Address: netip.MustParseAddr("192.0.2.2"), ASN: 64512},
		"b": {Name: "b", Address: netip.MustParseAddr("2001:db8::2"), ASN: 64513},
	}
	p1 := netip.MustParsePrefix("198.51.100.1/32")
	p2 := netip.MustParsePrefix("198.51.100.2/32")
	p3 := netip.MustParsePrefix("198.51.100.3/32")
	pl := plan{
		"a": {
			p1: {LocalPref: 300, Communities: []uint32{65535<<16 | 65282}},
			p2: {LocalPref: 300, Communities: []uint32{65535<<16 | 65282}},
			p3: {Large: [][3]uint32{{64512, 1, 2}}},
		},
		"b": {},
	}
	sets, pol := exportPolicy(peers, pl)
	if len(pol.Statements) != 2 {
		t.Fatalf("got %d statements, want 2 (one per attribute set): %v", len(pol.Statements), pol.Statements)
	}
	// Sets: neighbour a, two prefix sets; nothing for b, which gets nothing.
	if len(sets) != 3 || sets[0].DefinedType != api.DefinedType_DEFINED_TYPE_NEIGHBOR || sets[0].List[0] != "192.0.2.2/32" {
		t.Fatalf("sets = %v", sets)
	}
	s0, s1 := pol.Statements[0], pol.Statements[1]
	// Groups sort by key: "lp=0 ..." before "lp=300 ...".
	if s0.Actions.LocalPref != nil || s0.Actions.Community != nil ||
		!reflect.DeepEqual(s0.Actions.LargeCommunity.Communities, []string{"64512:1:2"}) ||
		s0.Actions.LargeCommunity.Type != api.CommunityAction_TYPE_REPLACE {
		t.Errorf("statement 0 actions = %v", s0.Actions)
	}
	if s1.Actions.LocalPref.GetValue() != 300 || !reflect.DeepEqual(s1.Actions.Community.Communities, []string{"65535:65282"}) || s1.Actions.LargeCommunity != nil {
		t.Errorf("statement 1 actions = %v", s1.Actions)
	}
	for _, s := range pol.Statements {
		if s.Actions.RouteAction != api.RouteAction_ROUTE_ACTION_ACCEPT || s.Conditions.NeighborSet.Name != sets[0].Name {
			t.Errorf("statement %s: %v", s.Name, s)
		}
	}
	if got := sets[2].Prefixes; len(got) != 2 || got[0].IpPrefix != "198.51.100.1/32" || got[0].MaskLengthMin != 32 || got[0].MaskLengthMax != 32 {
		t.Errorf("prefix set = %v", got)
	}

	// A dual-stack IPv4 session: IPv6 prefixes get the node's IPv6 next
	// hop, IPv4 prefixes keep GoBGP's (the session's local address).
	dual := map[string]Peer{"d": {Name: "d", Address: netip.MustParseAddr("192.0.2.4"), ASN: 64512, DualStack: true,
		OtherNextHop: netip.MustParseAddr("2001:db8::4")}}
	_, dpol := exportPolicy(dual, plan{"d": {p1: {}, netip.MustParsePrefix("2001:db8:1::/64"): {}}})
	hops := map[string]string{}
	for _, st := range dpol.Statements {
		hops[st.Name] = st.Actions.GetNexthop().GetAddress()
	}
	if !reflect.DeepEqual(hops, map[string]string{"herald-peer-0-routes-0": "2001:db8::4", "herald-peer-0-routes-1": ""}) {
		t.Errorf("dual-stack next hops by statement = %v; want the IPv6 group (sorted first) with 2001:db8::4", hops)
	}

	// Deterministic.
	sets2, pol2 := exportPolicy(peers, pl)
	if !reflect.DeepEqual(sets, sets2) || !reflect.DeepEqual(pol, pol2) {
		t.Error("exportPolicy is not deterministic")
	}
}

func TestLocalPath(t *testing.T) {
	for _, pfx := range []string{"198.51.100.1/32", "2001:db8::10/128"} {
		p, err := localPath(netip.MustParsePrefix(pfx))
		if err != nil {
			t.Fatalf("%s: %v", pfx, err)
		}
		if p.Nlri.String() != pfx || len(p.Attrs) != 2 {
			t.Errorf("%s: nlri %s attrs %v", pfx, p.Nlri, p.Attrs)
		}
	}
}

func TestSessionEqual(t *testing.T) {
	base := Peer{Name: "a", Address: netip.MustParseAddr("192.0.2.2"), ASN: 64512, HoldTime: 90 * time.Second,
		BFD: &BFDProfile{ReceiveInterval: 300 * time.Millisecond}}
	tests := []struct {
		name     string
		mod      func(*Peer)
		equal    bool
		bfdEqual bool
	}{
		{"identical", func(*Peer) {}, true, true},
		{"same BFD profile, different pointer", func(p *Peer) { b := *p.BFD; p.BFD = &b }, true, true},
		{"DisableMP has no effect", func(p *Peer) { p.DisableMP = true }, true, true},
		{"hold time", func(p *Peer) { p.HoldTime = 30 * time.Second }, false, true},
		{"ASN", func(p *Peer) { p.ASN = 64513 }, false, true},
		{"password", func(p *Peer) { p.Password = "x" }, false, true},
		{"port", func(p *Peer) { p.Port = 1179 }, false, true},
		{"dual stack", func(p *Peer) { p.DualStack = true }, false, true},
		{"graceful restart", func(p *Peer) { p.GracefulRestart = true }, false, true},
		// BFD changes are applied to the running session, not by
		// re-creating it.
		{"BFD removed", func(p *Peer) { p.BFD = nil }, true, false},
		{"BFD interval", func(p *Peer) { b := *p.BFD; b.ReceiveInterval = time.Second; p.BFD = &b }, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			tt.mod(&p)
			if got := sessionEqual(base, p); got != tt.equal {
				t.Errorf("sessionEqual = %v, want %v", got, tt.equal)
			}
			if got := bfdEqual(base.BFD, p.BFD); got != tt.bfdEqual {
				t.Errorf("bfdEqual = %v, want %v", got, tt.bfdEqual)
			}
		})
	}
}

func TestValidatePeers(t *testing.T) {
	ok := Peer{Name: "a", Address: netip.MustParseAddr("192.0.2.2"), ASN: 1}
	tests := []struct {
		name  string
		peers []Peer
		ok    bool
	}{
		{"valid", []Peer{ok}, true},
		{"duplicate name", []Peer{ok, {Name: "a", Address: netip.MustParseAddr("192.0.2.3"), ASN: 1}}, false},
		{"duplicate address", []Peer{ok, {Name: "b", Address: netip.MustParseAddr("::ffff:192.0.2.2"), ASN: 1}}, false},
		{"no ASN", []Peer{{Name: "a", Address: ok.Address}}, false},
		{"short hold", []Peer{{Name: "a", Address: ok.Address, ASN: 1, HoldTime: time.Second}}, false},
		{"family mismatch", []Peer{{Name: "a", Address: ok.Address, ASN: 1, SourceAddress: netip.MustParseAddr("2001:db8::1")}}, false},
		{"dynamic internal", []Peer{{Name: "a", Address: ok.Address, Dynamic: DynamicInternal}}, true},
		{"dynamic and ASN", []Peer{{Name: "a", Address: ok.Address, ASN: 1, Dynamic: DynamicExternal}}, false},
		{"unknown dynamic", []Peer{{Name: "a", Address: ok.Address, Dynamic: "any"}}, false},
		{"other next hop of the session's family", []Peer{{Name: "a", Address: ok.Address, ASN: 1, DualStack: true, OtherNextHop: netip.MustParseAddr("192.0.2.9")}}, false},
	}
	for _, tt := range tests {
		if err := validatePeers(tt.peers); (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}

func TestAPIPeer(t *testing.T) {
	cfg := Config{ASN: 64512}
	p := cfg.apiPeer(Peer{Name: "a", Address: netip.MustParseAddr("2001:db8::2"), ASN: 64513, HoldTime: 9 * time.Second,
		Password: "s", EBGPMultiHop: true, GracefulRestart: true, DualStack: true,
		BFD: &BFDProfile{ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 200 * time.Millisecond, DetectMultiplier: 5}}, true)
	if p.Conf.LocalAsn != 64512 || p.Conf.PeerAsn != 64513 || p.Conf.AuthPassword != "s" || p.Transport.RemotePort != 179 {
		t.Errorf("conf = %v transport = %v", p.Conf, p.Transport)
	}
	if p.Timers.Config.HoldTime != 9 || p.Timers.Config.KeepaliveInterval != 3 || p.Timers.Config.ConnectRetry != 5 {
		t.Errorf("timers = %v", p.Timers.Config)
	}
	if len(p.AfiSafis) != 2 || !p.GracefulRestart.Enabled || !p.AfiSafis[0].MpGracefulRestart.Config.Enabled || !p.EbgpMultihop.Enabled {
		t.Errorf("afisafis/gr/multihop = %v %v %v", p.AfiSafis, p.GracefulRestart, p.EbgpMultihop)
	}
	if p.Bfd.RequiredMinimumReceive != 300000 || p.Bfd.DesiredMinimumTxInterval != 200000 || p.Bfd.DetectionMultiplier != 5 {
		t.Errorf("bfd = %v", p.Bfd)
	}
	if p := cfg.apiPeer(Peer{Address: netip.MustParseAddr("192.0.2.2"), ASN: 1, BFD: &BFDProfile{}}, false); len(p.AfiSafis) != 1 || p.AfiSafis[0].Config.Family.Afi != api.Family_AFI_IP || p.Bfd != nil {
		t.Errorf("IPv4 peer afisafis = %v bfd %v", p.AfiSafis, p.Bfd)
	}
}

func TestStateMapping(t *testing.T) {
	for s, want := range map[api.PeerState_SessionState]string{
		api.PeerState_SESSION_STATE_UNSPECIFIED: "idle", api.PeerState_SESSION_STATE_IDLE: "idle",
		api.PeerState_SESSION_STATE_CONNECT: "connect", api.PeerState_SESSION_STATE_ACTIVE: "active",
		api.PeerState_SESSION_STATE_OPENSENT: "opensent", api.PeerState_SESSION_STATE_OPENCONFIRM: "openconfirm",
		api.PeerState_SESSION_STATE_ESTABLISHED: "established",
	} {
		if got := sessionStateName(s); got != want {
			t.Errorf("%v -> %q, want %q", s, got, want)
		}
	}
	var st PeerState
	fillState(&st, &api.Peer{
		State: &api.PeerState{SessionState: api.PeerState_SESSION_STATE_ESTABLISHED,
			Messages: &api.Messages{Sent: &api.Message{Update: 7}}},
		AfiSafis: []*api.AfiSafi{{State: &api.AfiSafiState{Advertised: 2}}, {State: &api.AfiSafiState{Advertised: 1}}},
	})
	if !st.Up || st.State != "established" || st.Sent.Update != 7 || st.Advertised != 3 || st.BFDState != "" {
		t.Errorf("fillState = %+v", st)
	}
	for _, tt := range []struct {
		r    api.PeerState_DisconnectReason
		msg  string
		want string
	}{
		{api.PeerState_DISCONNECT_REASON_BAD_PEER_AS, "", "ASN mismatch (bad peer AS)"},
		{api.PeerState_DISCONNECT_REASON_NOTIFICATION_RECEIVED, "code 2 subcode 2 bad peer as", "ASN mismatch (bad peer AS): code 2 subcode 2 bad peer as"},
		{api.PeerState_DISCONNECT_REASON_HOLD_TIMER_EXPIRED, "", "hold timer expired"},
		{api.PeerState_DISCONNECT_REASON_DECONFIGURED, "x", ""},
		// Found in the lab: this transition overwrote the TCP-MD5 hint.
		{api.PeerState_DISCONNECT_REASON_IDLE_TIMER_EXPIRED, "", ""},
		{api.PeerState_DISCONNECT_REASON_INVALID_MSG, "invalid-msg",
			"invalid message, or a NOTIFICATION during the OPEN exchange (as from a router that expects another AS from this node: check myASN or localASN)"},
	} {
		if got := disconnectError(tt.r, tt.msg); got != tt.want {
			t.Errorf("disconnectError(%v) = %q, want %q", tt.r, got, tt.want)
		}
	}
	for _, tt := range []struct {
		code, sub int64
		sent      bool
		want      string
	}{
		{2, 2, true, "ASN mismatch (bad peer AS): the peer's OPEN carries another AS than peerASN"},
		{2, 2, false, "ASN mismatch (bad peer AS): the peer expects another AS from this node (myASN, or localASN)"},
		{2, 6, true, "OPEN refused: "},
		{6, 2, true, ""}, // Cease: not an OPEN error
		{4, 0, false, ""},
	} {
		if got := openError(tt.code, tt.sub, tt.sent); !strings.HasPrefix(got, tt.want) || (tt.want == "") != (got == "") {
			t.Errorf("openError(%d, %d, %v) = %q, want %q…", tt.code, tt.sub, tt.sent, got, tt.want)
		}
	}
	if got := describeDialError("dial tcp 192.0.2.2:179: connect: connection refused", false); got[:18] != "connection refused" {
		t.Errorf("refused: %q", got)
	}
	if got := describeDialError("dial tcp 192.0.2.2:179: i/o timeout", true); got[:15] != "connect timeout" {
		t.Errorf("md5 timeout: %q", got)
	}
}
