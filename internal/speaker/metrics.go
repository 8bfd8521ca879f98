package speaker

import (
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the speaker's Layer 2 metrics, with MetalLB's names. Series
// of an address are removed when the node stops announcing it (MetalLB
// leaves them stale, #1972, #1342).
type metrics struct {
	announced                       *prometheus.GaugeVec
	requests, responses, gratuitous *prometheus.CounterVec
	conflicts                       *prometheus.CounterVec
	// keyUnavailable is 1 while the speaker cannot join the memberlist
	// for want of its key, and so announces nothing over Layer 2.
	keyUnavailable prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"ip"})
	}
	m := &metrics{
		announced: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "metallb_speaker_announced",
			Help: "1 for each address this node announces."}, []string{"service", "protocol", "node", "ip"}),
		requests:   c("metallb_layer2_requests_received", "ARP/NDP requests received for an announced address."),
		responses:  c("metallb_layer2_responses_sent", "ARP/NDP answers sent for an announced address."),
		gratuitous: c("metallb_layer2_gratuitous_sent", "Gratuitous ARP / unsolicited NA sent for an announced address."),
		conflicts:  c("herald_layer2_address_conflicts_total", "Times another MAC answered for an address this node announces."),
		keyUnavailable: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_memberlist_key_unavailable",
			Help: "1 while this speaker cannot join the memberlist (it cannot read the memberlist Secret's key) and so announces nothing over Layer 2."}),
	}
	reg.MustRegister(m.announced, m.requests, m.responses, m.gratuitous, m.conflicts, m.keyUnavailable)
	return m
}

func (m *metrics) forget(svc, node string, a netip.Addr) {
	ip := a.String()
	m.announced.DeleteLabelValues(svc, "layer2", node, ip)
	m.requests.DeleteLabelValues(ip)
	m.responses.DeleteLabelValues(ip)
	m.gratuitous.DeleteLabelValues(ip)
	m.conflicts.DeleteLabelValues(ip)
}
