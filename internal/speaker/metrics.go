package speaker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/internal/announce"
)

// newKeyUnavailable is 1 while the speaker cannot join the memberlist for
// want of its key, and so announces nothing in single-owner modes.
func newKeyUnavailable(reg prometheus.Registerer) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_memberlist_key_unavailable",
		Help: "1 while this speaker cannot join the memberlist (it cannot read the memberlist Secret's key) and so announces nothing over Layer 2."})
	reg.MustRegister(g)
	return g
}

// newMembers is how many members this speaker sees alive, set at each sync.
func newMembers(reg prometheus.Registerer) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_memberlist_members",
		Help: "Members this speaker sees alive in the memberlist at its last sync, itself included; 0 before it has joined. Speakers that disagree elect differently."})
	reg.MustRegister(g)
	return g
}

// newHoldDown is 1 while the node's link is up but the node stays out of
// elections after flapping (linkdamp).
func newHoldDown(reg prometheus.Registerer) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_link_hold_down",
		Help: "1 while this node's link is back up but the node stays out of elections for a hold-down that grows with each flap of the link (4 s after a single one, doubling with each flap up to 60 s)."})
	reg.MustRegister(g)
	return g
}

// announcedGauge is metallb_speaker_announced, kept by the announce loop.
func announcedGauge(reg prometheus.Registerer) *prometheus.GaugeVec {
	g := announce.NewAnnouncedGauge()
	reg.MustRegister(g)
	return g
}
