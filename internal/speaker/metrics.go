package speaker

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
)

// metrics are the speaker's metrics, with MetalLB's names. Series of an
// address are removed when the node stops announcing it (MetalLB leaves
// them stale, #1972, #1342).
type metrics struct {
	announced                       *announcedSeries
	requests, responses, gratuitous *prometheus.CounterVec
	conflicts                       *prometheus.CounterVec
	// keyUnavailable is 1 while the speaker cannot join the memberlist
	// for want of its key, and so announces nothing over Layer 2.
	keyUnavailable prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, node string) *metrics {
	c := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"ip"})
	}
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "metallb_speaker_announced",
		Help: "1 for each address this node announces."}, []string{"service", "protocol", "node", "ip"})
	m := &metrics{
		announced:  newAnnouncedSeries(gauge, node),
		requests:   c("metallb_layer2_requests_received", "ARP/NDP requests received for an announced address."),
		responses:  c("metallb_layer2_responses_sent", "ARP/NDP answers sent for an announced address."),
		gratuitous: c("metallb_layer2_gratuitous_sent", "Gratuitous ARP / unsolicited NA sent for an announced address."),
		conflicts:  c("herald_layer2_address_conflicts_total", "Times another MAC answered for an address this node announces."),
		keyUnavailable: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_memberlist_key_unavailable",
			Help: "1 while this speaker cannot join the memberlist (it cannot read the memberlist Secret's key) and so announces nothing over Layer 2."}),
	}
	reg.MustRegister(gauge, m.requests, m.responses, m.gratuitous, m.conflicts, m.keyUnavailable)
	return m
}

// forgetLayer2 drops the Layer 2 counters of an address this node no
// longer answers for.
func (m *metrics) forgetLayer2(a netip.Addr) {
	ip := a.String()
	m.requests.DeleteLabelValues(ip)
	m.responses.DeleteLabelValues(ip)
	m.gratuitous.DeleteLabelValues(ip)
	m.conflicts.DeleteLabelValues(ip)
}

// announced brings metallb_speaker_announced and the Events in line with
// what this node announces over protocol (Service key -> addresses), for
// every mode alike: an Event when the node starts announcing a Service and
// when it stops, once per change.
func (s *speaker) announced(protocol string, addrs map[string][]netip.Addr) announceChange {
	ch := s.metrics.announced.update(protocol, addrs)
	for _, key := range ch.Started {
		s.event(key, corev1.EventTypeNormal, "nodeAssigned",
			fmt.Sprintf("announcing from node %q with protocol %q", s.opts.NodeName, protocol))
	}
	for _, key := range ch.Stopped {
		s.event(key, corev1.EventTypeNormal, "nodeUnassigned",
			fmt.Sprintf("no longer announcing from node %q with protocol %q", s.opts.NodeName, protocol))
	}
	return ch
}

// Protocols, as metallb_speaker_announced and the Events spell them.
const (
	protocolLayer2 = "layer2"
	protocolBGP    = "bgp"
)

// announcedSeries keeps metallb_speaker_announced equal to what this node
// announces. Each mode hands it, on every sync, the whole set it announces
// (Service key -> addresses); it sets the new series, removes the stale
// ones and says which Services started or stopped, so that the Events go
// out once per change. One per speaker, shared by every mode; only the sync
// loop calls it.
type announcedSeries struct {
	gauge *prometheus.GaugeVec
	node  string
	have  map[string]map[string][]netip.Addr // protocol -> Service -> addresses
}

func newAnnouncedSeries(g *prometheus.GaugeVec, node string) *announcedSeries {
	return &announcedSeries{gauge: g, node: node, have: map[string]map[string][]netip.Addr{}}
}

// announceChange is what one update changed for one protocol, each list
// sorted.
type announceChange struct {
	Started, Stopped []string     // Services
	Gone             []netip.Addr // addresses no Service of the protocol has any more
}

// update makes protocol's series exactly want.
func (a *announcedSeries) update(protocol string, want map[string][]netip.Addr) announceChange {
	var ch announceChange
	prev := a.have[protocol]
	still := map[netip.Addr]bool{}
	for svc, addrs := range want {
		if _, had := prev[svc]; !had {
			ch.Started = append(ch.Started, svc)
		}
		for _, ip := range addrs {
			still[ip] = true
			a.gauge.WithLabelValues(svc, protocol, a.node, ip.String()).Set(1)
		}
	}
	gone := map[netip.Addr]bool{}
	for svc, addrs := range prev {
		cur, kept := want[svc]
		if !kept {
			ch.Stopped = append(ch.Stopped, svc)
		}
		for _, ip := range addrs {
			if !slices.Contains(cur, ip) {
				a.gauge.DeleteLabelValues(svc, protocol, a.node, ip.String())
			}
			if !still[ip] {
				gone[ip] = true
			}
		}
	}
	for ip := range gone {
		ch.Gone = append(ch.Gone, ip)
	}
	sort.Strings(ch.Started)
	sort.Strings(ch.Stopped)
	sort.Slice(ch.Gone, func(i, j int) bool { return ch.Gone[i].Less(ch.Gone[j]) })
	kept := make(map[string][]netip.Addr, len(want))
	for svc, addrs := range want {
		kept[svc] = slices.Clone(addrs)
	}
	a.have[protocol] = kept
	return ch
}
