package announce

import (
	"net/netip"
	"slices"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
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
	Started, Stopped []string // Services
}

// update makes protocol's series exactly want.
func (a *announcedSeries) update(protocol string, want map[string][]netip.Addr) announceChange {
	var ch announceChange
	prev := a.have[protocol]
	for svc, addrs := range want {
		if _, had := prev[svc]; !had {
			ch.Started = append(ch.Started, svc)
		}
		for _, ip := range addrs {
			a.gauge.WithLabelValues(svc, protocol, a.node, ip.String()).Set(1)
		}
	}
	for svc, addrs := range prev {
		cur, kept := want[svc]
		if !kept {
			ch.Stopped = append(ch.Stopped, svc)
		}
		for _, ip := range addrs {
			if !slices.Contains(cur, ip) {
				a.gauge.DeleteLabelValues(svc, protocol, a.node, ip.String())
			}
		}
	}
	sort.Strings(ch.Started)
	sort.Strings(ch.Stopped)
	kept := make(map[string][]netip.Addr, len(want))
	for svc, addrs := range want {
		kept[svc] = slices.Clone(addrs)
	}
	a.have[protocol] = kept
	return ch
}
