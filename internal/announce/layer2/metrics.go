package layer2

import (
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are Layer 2's counters per address, with MetalLB's names.
type metrics struct {
	requests, responses, gratuitous *prometheus.CounterVec
	conflicts                       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"ip"})
	}
	m := &metrics{
		requests:   c("metallb_layer2_requests_received", "ARP/NDP requests received for an announced address."),
		responses:  c("metallb_layer2_responses_sent", "ARP/NDP answers sent for an announced address."),
		gratuitous: c("metallb_layer2_gratuitous_sent", "Gratuitous ARP / unsolicited NA sent for an announced address."),
		conflicts:  c("herald_layer2_address_conflicts_total", "Times another MAC answered for an address this node announces."),
	}
	reg.MustRegister(m.requests, m.responses, m.gratuitous, m.conflicts)
	return m
}

// forget drops the counters of an address this node no longer answers for.
func (m *metrics) forget(a netip.Addr) {
	ip := a.String()
	m.requests.DeleteLabelValues(ip)
	m.responses.DeleteLabelValues(ip)
	m.gratuitous.DeleteLabelValues(ip)
	m.conflicts.DeleteLabelValues(ip)
}
