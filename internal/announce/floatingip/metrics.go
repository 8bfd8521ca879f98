package floatingip

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the cloud mode.
type metrics struct {
	checks    *prometheus.CounterVec   // by provider, outcome, error code
	duration  *prometheus.HistogramVec // assign, request to the action's end
	remaining *prometheus.GaugeVec     // the API's rate-limit budget left
	mismatch  *prometheus.CounterVec   // the API has an owned IP on another server
	owned     *prometheus.GaugeVec     // 1 per floating IP on this node's server
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_cloud_floating_ip_checks_total",
			Help: "Checks of a floating IP this node owns, by outcome (InPlace, Assigned, HeldElsewhere, HoldingDown, Error) and API error code."},
			[]string{"provider", "outcome", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "herald_cloud_assign_duration_seconds",
			Help:    "Time from the first assign request to the cloud reporting the floating IP moved.",
			Buckets: []float64{0.25, 0.5, 1, 2, 4, 8, 15, 30, 60}}, []string{"provider"}),
		remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_cloud_rate_limit_remaining",
			Help: "Requests left in the cloud API's rate-limit budget, as its last answer said."}, []string{"provider"}),
		mismatch: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_cloud_owner_mismatch_total",
			Help: "Checks that found a floating IP this node owns assigned to another server."}, []string{"floating_ip"}),
		owned: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_cloud_floating_ip_assigned",
			Help: "1 for each floating IP assigned to this node's server by Herald's last check."}, []string{"floating_ip", "server"}),
	}
	reg.MustRegister(m.checks, m.duration, m.remaining, m.mismatch, m.owned)
	return m
}
