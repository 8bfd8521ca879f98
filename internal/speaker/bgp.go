package speaker

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	metallbv1beta2 "github.com/herald-lb/herald/api/v1beta2"
	"github.com/herald-lb/herald/internal/bgp"
	"github.com/herald-lb/herald/internal/config"
)

// bgpRunner owns this node's embedded BGP speaker, created when the node
// has its first peer.
type bgpRunner struct {
	node string
	log  *slog.Logger

	mu       sync.Mutex
	sp       *bgp.Speaker
	asn      uint32
	routerID netip.Addr
	lastErr  map[string]string // peer name -> last reported error
	// allGR: every session of the node has graceful restart on.
	allGR bool
}

// apply reconciles sessions and advertisements with the plan.
func (s *speaker) applyBGP(ctx context.Context, plan BGPPlan, cfg *config.Config, nodeIP netip.Addr) error {
	r := s.bgp
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(plan.Peers) == 0 {
		if r.sp != nil {
			if err := r.sp.SetAdvertisements(ctx, nil); err != nil {
				return err
			}
			if err := r.sp.SetPeers(ctx, nil); err != nil {
				return err
			}
		}
		s.writeBGPStatuses(ctx, nil)
		s.announced(protocolBGP, nil)
		return nil
	}
	asn := plan.Peers[0].MyASN
	rid := routerID(plan.Peers, nodeIP, r.node)
	if r.sp != nil && (r.asn != asn || r.routerID != rid) {
		// The global AS or router ID changed: the only changes that need a
		// new speaker (and so reset every session).
		_ = r.sp.Stop(ctx)
		r.sp = nil
	}
	if r.sp == nil {
		sp, err := bgp.New(bgp.Config{RouterID: rid, ASN: asn, ListenPort: -1, Logger: r.log})
		if err != nil {
			return fmt.Errorf("bgp: %w", err)
		}
		if err := sp.Start(s.runCtx); err != nil {
			return fmt.Errorf("bgp: %w", err)
		}
		r.sp, r.asn, r.routerID = sp, asn, rid
		go s.watchBGP(sp)
	}
	var peers []bgp.Peer
	r.allGR = true
	for _, p := range plan.Peers {
		r.allGR = r.allGR && p.EnableGracefulRestart
		peers = append(peers, s.bgpPeer(p, cfg))
	}
	if err := r.sp.SetPeers(ctx, peers); err != nil {
		return fmt.Errorf("bgp peers: %w", err)
	}
	var ads []bgp.Advertisement
	for _, rt := range plan.Routes {
		ad := bgp.Advertisement{Prefix: rt.Prefix, LocalPref: rt.LocalPref, Peers: rt.Peers}
		for _, c := range rt.Communities {
			if c.Large {
				ad.LargeCommunities = append(ad.LargeCommunities, [3]uint32{c.GlobalAdmin, c.LocalData1, c.LocalData2})
			} else {
				ad.Communities = append(ad.Communities, c.Standard)
			}
		}
		ads = append(ads, ad)
	}
	if err := r.sp.SetAdvertisements(ctx, ads); err != nil {
		return fmt.Errorf("bgp advertisements: %w", err)
	}
	s.writeBGPStatuses(ctx, plan.ServicePeers)
	s.announced(protocolBGP, plan.Announced)
	return nil
}

// routerID: the peers' routerID when set, else the node's IPv4 address,
// else four bytes derived from the node name (an IPv6-only node still
// needs a 32-bit BGP identifier).
func routerID(peers []*config.Peer, nodeIP netip.Addr, node string) netip.Addr {
	for _, p := range peers {
		if p.RouterID.IsValid() {
			return p.RouterID
		}
	}
	if nodeIP.Is4() {
		return nodeIP
	}
	h := sha256.Sum256([]byte(node))
	return netip.AddrFrom4([4]byte{h[0], h[1], h[2], h[3]})
}

// bgpPeer is the session for p; its password came with the configuration,
// from the Secret p names.
func (s *speaker) bgpPeer(p *config.Peer, cfg *config.Config) bgp.Peer {
	bp := bgp.Peer{
		Name: p.Name, Address: p.Address, Port: p.Port, ASN: p.ASN, LocalASN: p.MyASN,
		SourceAddress: p.SourceAddress, HoldTime: p.HoldTime, KeepaliveTime: p.KeepaliveTime, ConnectTime: p.ConnectTime,
		Password: p.Password, EBGPMultiHop: p.EBGPMultiHop, GracefulRestart: p.EnableGracefulRestart,
		DisableMP: p.DisableMP, DualStack: p.DualStackAddressFamily, Dynamic: bgp.DynamicASN(p.DynamicASN),
		Interface: p.Interface,
	}
	// An unnumbered session runs over IPv6 link-local addresses and
	// carries IPv4 too, with its link-local next hop (RFC 5549), as in
	// MetalLB's FRR modes.
	bp.DualStack = bp.DualStack || p.Interface != ""
	if p.DualStackAddressFamily && p.Interface == "" {
		hop, err := otherFamilyNextHop(p.Address)
		if err != nil || !hop.IsValid() {
			s.log.Info("dualStackAddressFamily: this node has no usable address of the other family on the interface toward the peer; prefixes of that family are not sent to it",
				"peer", p.Name, "error", err)
		}
		bp.OtherNextHop = hop
	}
	if p.LocalASN != 0 {
		bp.LocalASN = p.LocalASN
	}
	if p.BFDProfile != "" {
		if prof := cfg.BFDProfile(p.BFDProfile); prof != nil {
			bp.BFD = &bgp.BFDProfile{
				ReceiveInterval: prof.ReceiveInterval, TransmitInterval: prof.TransmitInterval,
				DetectMultiplier: prof.DetectMultiplier, EchoMode: prof.EchoMode, PassiveMode: prof.PassiveMode,
				MinimumTTL: prof.MinimumTTL,
			}
		}
	}
	return bp
}

// watchBGP raises an Event on a BGPPeer whose session fails, once per new
// reason, and resyncs on every state change.
func (s *speaker) watchBGP(sp *bgp.Speaker) {
	// A failed dial (refused, or no answer when TCP-MD5 does not match)
	// changes no session state, so the reasons are also polled.
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.runCtx.Done():
			return
		case _, ok := <-sp.Events():
			if !ok {
				return
			}
		case <-t.C:
		}
		r := s.bgp
		for _, st := range sp.Peers() {
			r.mu.Lock()
			prev := r.lastErr[st.Name]
			if st.Up || st.LastError == "" {
				delete(r.lastErr, st.Name)
				r.mu.Unlock()
				continue
			}
			r.lastErr[st.Name] = st.LastError
			r.mu.Unlock()
			if st.LastError == prev {
				continue
			}
			var peer metallbv1beta2.BGPPeer
			if err := s.client.Get(s.runCtx, types.NamespacedName{Namespace: s.opts.Namespace, Name: st.Name}, &peer); err != nil {
				continue
			}
			s.recorder.Eventf(&peer, nil, corev1.EventTypeWarning, "SessionDown", "Connect",
				"node %q: session to %s is %s: %s", s.opts.NodeName, st.Target(), st.State, st.LastError)
		}
	}
}

// stopBGP ends every session with a Cease at once: the routers withdraw
// this node's routes now, not when the hold timer runs out. With graceful
// restart on every session it sends nothing: the sessions end when the
// process exits, and the routers, as graceful-restart helpers, keep the
// routes while the speaker restarts (a Cease would make them drop them).
func (s *speaker) stopBGP(ctx context.Context) {
	r := s.bgp
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sp != nil && r.allGR {
		s.log.Info("graceful restart: leaving the BGP sessions to end with the process, so routers keep the routes")
		return
	}
	if r.sp != nil {
		if err := r.sp.Stop(ctx); err != nil {
			s.log.Error(err, "stop BGP")
		}
		r.sp = nil
	}
}

// writeBGPStatuses keeps one ServiceBGPStatus per advertised Service on
// this node (MetalLB's kind), and removes this node's others.
func (s *speaker) writeBGPStatuses(ctx context.Context, svcPeers map[string][]string) {
	var list metallbv1beta1.ServiceBGPStatusList
	if err := s.client.List(ctx, &list, client.InNamespace(s.opts.Namespace), client.MatchingLabels{labelNode: s.opts.NodeName}); err != nil {
		return
	}
	have := map[string]*metallbv1beta1.ServiceBGPStatus{}
	for i := range list.Items {
		st := &list.Items[i]
		key := st.Labels[labelServiceNamespace] + "/" + st.Labels[labelServiceName]
		if _, keep := svcPeers[key]; !keep {
			if err := s.client.Delete(ctx, st); err != nil && !apierrors.IsNotFound(err) {
				s.log.Error(err, "delete ServiceBGPStatus", "name", st.Name)
			}
			continue
		}
		have[key] = st
	}
	for key, peers := range svcPeers {
		ns, name, _ := strings.Cut(key, "/")
		if peers == nil {
			peers = s.allPeerNames()
		}
		st := have[key]
		if st == nil {
			st = &metallbv1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{
				GenerateName: "bgp-", Namespace: s.opts.Namespace,
				Labels: map[string]string{labelNode: s.opts.NodeName, labelServiceName: name, labelServiceNamespace: ns},
			}}
			if err := s.client.Create(ctx, st); err != nil {
				s.log.Error(err, "create ServiceBGPStatus", "service", key)
				continue
			}
		}
		want := metallbv1beta1.MetalLBServiceBGPStatus{Node: s.opts.NodeName, ServiceName: name, ServiceNamespace: ns, Peers: peers}
		if st.Status.Node == want.Node && st.Status.ServiceName == name && st.Status.ServiceNamespace == ns &&
			strings.Join(st.Status.Peers, ",") == strings.Join(peers, ",") {
			continue
		}
		st.Status = want
		if err := s.client.Status().Update(ctx, st); err != nil {
			s.log.Error(err, "write ServiceBGPStatus", "service", key)
		}
	}
}

func (s *speaker) allPeerNames() []string {
	r := s.bgp
	if r.sp == nil {
		return nil
	}
	var out []string
	for _, p := range r.sp.Peers() {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

// bgpCollector reports the sessions at scrape time, with MetalLB's metric
// names (its native speaker's and its FRR sidecar's); a peer that goes away
// leaves no series behind.
type bgpCollector struct {
	r       *bgpRunner
	metrics []peerMetric
}

// peerMetric is one per-peer series; bfd ones only for peers with BFD.
type peerMetric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(bgp.PeerState) float64
	bfd   bool
}

func newBGPCollector(r *bgpRunner) *bgpCollector {
	peer := []string{"peer"}
	m := func(name, help string, typ prometheus.ValueType, value func(bgp.PeerState) float64) peerMetric {
		return peerMetric{desc: prometheus.NewDesc(name, help, peer, nil), typ: typ, value: value}
	}
	bfd := func(pm peerMetric) peerMetric { pm.bfd = true; return pm }
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	return &bgpCollector{r: r, metrics: []peerMetric{
		m("metallb_bgp_session_up", "1 if the BGP session to the peer is established.", gauge, func(p bgp.PeerState) float64 { return boolValue(p.Up) }),
		m("metallb_bgp_updates_total", "BGP UPDATE messages sent to the peer.", counter, func(p bgp.PeerState) float64 { return float64(p.Sent.Update) }),
		m("metallb_bgp_announced_prefixes_total", "Prefixes advertised to the peer.", gauge, func(p bgp.PeerState) float64 { return float64(p.Advertised) }),
		m("metallb_bgp_updates_total_received", "BGP UPDATE messages received from the peer (and discarded).", counter, func(p bgp.PeerState) float64 { return float64(p.Received.Update) }),
		m("metallb_bgp_opens_sent", "BGP OPEN messages sent to the peer.", counter, func(p bgp.PeerState) float64 { return float64(p.Sent.Open) }),
		m("metallb_bgp_opens_received", "BGP OPEN messages received from the peer.", counter, func(p bgp.PeerState) float64 { return float64(p.Received.Open) }),
		m("metallb_bgp_notifications_sent", "BGP NOTIFICATION messages sent to the peer.", counter, func(p bgp.PeerState) float64 { return float64(p.Sent.Notification) }),
		m("metallb_bgp_keepalives_sent", "BGP KEEPALIVE messages sent to the peer.", counter, func(p bgp.PeerState) float64 { return float64(p.Sent.Keepalive) }),
		m("metallb_bgp_keepalives_received", "BGP KEEPALIVE messages received from the peer.", counter, func(p bgp.PeerState) float64 { return float64(p.Received.Keepalive) }),
		m("metallb_bgp_route_refresh_sent", "BGP ROUTE-REFRESH messages sent to the peer.", counter, func(p bgp.PeerState) float64 { return float64(p.Sent.Refresh) }),
		m("metallb_bgp_total_sent", "BGP messages sent to the peer.", counter, func(p bgp.PeerState) float64 { return float64(p.Sent.Total) }),
		m("metallb_bgp_total_received", "BGP messages received from the peer.", counter, func(p bgp.PeerState) float64 { return float64(p.Received.Total) }),
		bfd(m("metallb_bfd_session_up", "1 if the BFD session to the peer is up; only peers with a bfdProfile.", gauge, func(p bgp.PeerState) float64 { return boolValue(p.BFDState == "up") })),
		bfd(m("metallb_bfd_control_packet_input", "BFD control packets received from the peer since BFD last started on the session.", counter, func(p bgp.PeerState) float64 { return float64(p.BFDPacketsIn) })),
		bfd(m("metallb_bfd_control_packet_output", "BFD control packets sent to the peer since BFD last started on the session.", counter, func(p bgp.PeerState) float64 { return float64(p.BFDPacketsOut) })),
		bfd(m("metallb_bfd_session_down_events", "Times the BFD session to the peer went down since BFD last started on the session.", counter, func(p bgp.PeerState) float64 { return float64(p.BFDDownEvents) })),
	}}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *bgpCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

func (c *bgpCollector) Collect(ch chan<- prometheus.Metric) {
	c.r.mu.Lock()
	sp := c.r.sp
	c.r.mu.Unlock()
	if sp == nil {
		return
	}
	for _, p := range sp.Peers() {
		for _, m := range c.metrics {
			if m.bfd && p.BFDState == "" {
				continue
			}
			ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(p), p.Target())
		}
	}
}
