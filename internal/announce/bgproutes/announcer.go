// Package bgproutes is the BGP mode: every eligible node advertises a
// Service's addresses to its BGP peers through the embedded GoBGP speaker,
// and keeps a ServiceBGPStatus per Service it advertises (MetalLB's kind).
package bgproutes

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metallbv1beta2 "github.com/herald-lb/herald/api/v1beta2"
	"github.com/herald-lb/herald/internal/announce"
	"github.com/herald-lb/herald/internal/bgp"
	"github.com/herald-lb/herald/internal/config"
)

// Protocol is the mode's name in metrics and Events, MetalLB's.
const Protocol = "bgp"

// Options configure the BGP mode.
type Options struct {
	Node, Namespace string
	// Client reads BGPPeers and writes this node's ServiceBGPStatus objects.
	Client client.Client
	// Recorder raises Events on BGPPeers whose sessions fail.
	Recorder events.EventRecorder
	Log      logr.Logger
	Registry prometheus.Registerer
}

// Announcer is the BGP mode. It owns this node's embedded BGP speaker,
// created when the node has its first peer.
type Announcer struct {
	opts Options
	ctx  context.Context // lives until the speaker has stopped

	mu       sync.Mutex
	sp       *bgp.Speaker
	asn      uint32
	routerID netip.Addr
	lastErr  map[string]string // peer name -> last reported error
	// allGR: every session of the node has graceful restart on.
	allGR bool
}

// New returns the BGP mode; ctx lives until the speaker has stopped.
func New(ctx context.Context, o Options) *Announcer {
	a := &Announcer{opts: o, ctx: ctx, lastErr: map[string]string{}}
	o.Registry.MustRegister(newCollector(a))
	return a
}

// Protocol implements announce.Announcer.
func (a *Announcer) Protocol() string { return Protocol }

// Announce reconciles sessions and advertisements with this node's plan.
// Every eligible node advertises: there is no election, and no ready gate.
func (a *Announcer) Announce(ctx context.Context, d announce.Desired) (announce.Announced, error) {
	plan := Plan(d.Inputs, d.Node)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(plan.Peers) == 0 {
		if a.sp != nil {
			if err := a.sp.SetAdvertisements(ctx, nil); err != nil {
				return nil, err
			}
			if err := a.sp.SetPeers(ctx, nil); err != nil {
				return nil, err
			}
		}
		a.writeStatuses(ctx, nil)
		return nil, nil
	}
	asn := plan.Peers[0].MyASN
	rid := routerID(plan.Peers, d.Inputs.Nodes[d.Node].InternalIPv4, d.Node)
	if a.sp != nil && (a.asn != asn || a.routerID != rid) {
		// The global AS or router ID changed: the only changes that need a
		// new speaker (and so reset every session).
		_ = a.sp.Stop(ctx)
		a.sp = nil
	}
	if a.sp == nil {
		sp, err := bgp.New(bgp.Config{RouterID: rid, ASN: asn, ListenPort: -1, Logger: slogger(a.opts.Log)})
		if err != nil {
			return nil, fmt.Errorf("new speaker: %w", err)
		}
		if err := sp.Start(a.ctx); err != nil {
			return nil, fmt.Errorf("start speaker: %w", err)
		}
		a.sp, a.asn, a.routerID = sp, asn, rid
		go a.watch(sp)
	}
	var peers []bgp.Peer
	a.allGR = true
	for _, p := range plan.Peers {
		a.allGR = a.allGR && p.EnableGracefulRestart
		peers = append(peers, a.peer(p, d.Inputs.Config))
	}
	if err := a.sp.SetPeers(ctx, peers); err != nil {
		return nil, fmt.Errorf("peers: %w", err)
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
	if err := a.sp.SetAdvertisements(ctx, ads); err != nil {
		return nil, fmt.Errorf("advertisements: %w", err)
	}
	a.writeStatuses(ctx, plan.ServicePeers)
	return plan.Announced, nil
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

// peer is the session for p; its password came with the configuration,
// from the Secret p names.
func (a *Announcer) peer(p *config.Peer, cfg *config.Config) bgp.Peer {
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
			a.opts.Log.Info("dualStackAddressFamily: this node has no usable address of the other family on the interface toward the peer; prefixes of that family are not sent to it",
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

// watch raises an Event on a BGPPeer whose session fails, once per new
// reason.
func (a *Announcer) watch(sp *bgp.Speaker) {
	// A failed dial (refused, or no answer when TCP-MD5 does not match)
	// changes no session state, so the reasons are also polled.
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case _, ok := <-sp.Events():
			if !ok {
				return
			}
		case <-t.C:
		}
		for _, st := range sp.Peers() {
			a.mu.Lock()
			prev := a.lastErr[st.Name]
			if st.Up || st.LastError == "" {
				delete(a.lastErr, st.Name)
				a.mu.Unlock()
				continue
			}
			a.lastErr[st.Name] = st.LastError
			a.mu.Unlock()
			if st.LastError == prev {
				continue
			}
			var peer metallbv1beta2.BGPPeer
			if err := a.opts.Client.Get(a.ctx, types.NamespacedName{Namespace: a.opts.Namespace, Name: st.Name}, &peer); err != nil {
				continue
			}
			a.opts.Recorder.Eventf(&peer, nil, corev1.EventTypeWarning, "SessionDown", "Connect",
				"node %q: session to %s is %s: %s", a.opts.Node, st.Target(), st.State, st.LastError)
		}
	}
}

// Shutdown ends every session with a Cease at once: the routers withdraw
// this node's routes now, not when the hold timer runs out. With graceful
// restart on every session it sends nothing: the sessions end when the
// process exits, and the routers, as graceful-restart helpers, keep the
// routes while the speaker restarts (a Cease would make them drop them).
func (a *Announcer) Shutdown(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sp != nil && a.allGR {
		a.opts.Log.Info("graceful restart: leaving the BGP sessions to end with the process, so routers keep the routes")
		return
	}
	if a.sp != nil {
		if err := a.sp.Stop(ctx); err != nil {
			a.opts.Log.Error(err, "stop BGP")
		}
		a.sp = nil
	}
}
