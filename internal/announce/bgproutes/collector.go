package bgproutes

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/internal/bgp"
)

// bgpCollector reports the sessions at scrape time, with MetalLB's metric
// names (its native speaker's and its FRR sidecar's); a peer that goes away
// leaves no series behind.
type bgpCollector struct {
	a       *Announcer
	metrics []peerMetric
}

// peerMetric is one per-peer series; bfd ones only for peers with BFD.
type peerMetric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(bgp.PeerState) float64
	bfd   bool
}

func newCollector(a *Announcer) *bgpCollector {
	peer := []string{"peer"}
	m := func(name, help string, typ prometheus.ValueType, value func(bgp.PeerState) float64) peerMetric {
		return peerMetric{desc: prometheus.NewDesc(name, help, peer, nil), typ: typ, value: value}
	}
	bfd := func(pm peerMetric) peerMetric { pm.bfd = true; return pm }
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	return &bgpCollector{a: a, metrics: []peerMetric{
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
	c.a.mu.Lock()
	sp := c.a.sp
	c.a.mu.Unlock()
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
