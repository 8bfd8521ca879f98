package controller

import (
	"math/big"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/internal/ipam"
)

// metrics are the controller's Prometheus metrics. The names and labels are
// MetalLB's, so existing dashboards and alerts keep working; herald_* ones
// are additions.
type metrics struct {
	inUse, total        *prometheus.GaugeVec
	inUse4, total4      *prometheus.GaugeVec
	inUse6, total6      *prometheus.GaugeVec
	configLoaded        prometheus.Gauge
	configStale         prometheus.Gauge
	updates, updateErrs prometheus.Counter
	allocationFailures  *prometheus.CounterVec
	servicesAllocated   *prometheus.GaugeVec
	servicesPending     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	g := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"pool"})
	}
	m := &metrics{
		inUse:  g("metallb_allocator_addresses_in_use_total", "Number of addresses in use in the pool (a shared address counts once)."),
		total:  g("metallb_allocator_addresses_total", "Number of usable addresses in the pool (saturates at 2^63-1 for huge IPv6 pools)."),
		inUse4: g("metallb_allocator_ipv4_addresses_in_use_total", "Number of IPv4 addresses in use in the pool."),
		total4: g("metallb_allocator_ipv4_addresses_total", "Number of usable IPv4 addresses in the pool."),
		inUse6: g("metallb_allocator_ipv6_addresses_in_use_total", "Number of IPv6 addresses in use in the pool."),
		total6: g("metallb_allocator_ipv6_addresses_total", "Number of usable IPv6 addresses in the pool (saturates at 2^63-1 for huge pools)."),
		configLoaded: prometheus.NewGauge(prometheus.GaugeOpts{Name: "metallb_k8s_client_config_loaded_bool",
			Help: "1 if a valid configuration has been loaded since the controller started."}),
		configStale: prometheus.NewGauge(prometheus.GaugeOpts{Name: "metallb_k8s_client_config_stale_bool",
			Help: "1 if the configuration in the cluster is invalid and an older valid one is still in force."}),
		updates: prometheus.NewCounter(prometheus.CounterOpts{Name: "metallb_k8s_client_updates_total",
			Help: "Number of configuration and Service updates processed."}),
		updateErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "metallb_k8s_client_update_errors_total",
			Help: "Number of configuration and Service updates that failed."}),
		allocationFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_allocation_failures_total",
			Help: "Allocation failures by reason (PoolExhausted, AddressInUse, PortConflict, ...)."}, []string{"reason"}),
		servicesAllocated: g("metallb_allocator_services_allocated_total", "Number of Services holding addresses from the pool."),
		servicesPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_services_pending",
			Help: "LoadBalancer Services handled by Herald that have no address."}),
	}
	reg.MustRegister(m.inUse, m.total, m.inUse4, m.total4, m.inUse6, m.total6,
		m.configLoaded, m.configStale, m.updates, m.updateErrs, m.allocationFailures,
		m.servicesAllocated, m.servicesPending)
	return m
}

// setPool publishes one pool's counters.
func (m *metrics) setPool(s ipam.PoolStats, services int) {
	f := func(b *big.Int) float64 {
		v, _ := new(big.Float).SetInt(b).Float64()
		return v
	}
	p := s.Pool
	m.inUse4.WithLabelValues(p).Set(float64(s.IPv4.InUse))
	m.inUse6.WithLabelValues(p).Set(float64(s.IPv6.InUse))
	m.total4.WithLabelValues(p).Set(f(s.IPv4.Capacity))
	m.total6.WithLabelValues(p).Set(sat(f(s.IPv6.Capacity)))
	m.inUse.WithLabelValues(p).Set(float64(s.IPv4.InUse + s.IPv6.InUse))
	m.total.WithLabelValues(p).Set(sat(f(s.IPv4.Capacity) + f(s.IPv6.Capacity)))
	m.servicesAllocated.WithLabelValues(p).Set(float64(services))
}

// sat keeps MetalLB's ceiling for huge IPv6 pools, so dashboards that divide
// in-use by total see the same numbers they saw with MetalLB.
func sat(f float64) float64 {
	const maxInt64 = float64(1<<63 - 1)
	if f > maxInt64 {
		return maxInt64
	}
	return f
}

// deletePool removes a pool's series when the pool goes away, so no stale
// value lingers.
func (m *metrics) deletePool(pool string) {
	for _, v := range []*prometheus.GaugeVec{m.inUse, m.total, m.inUse4, m.total4, m.inUse6, m.total6, m.servicesAllocated} {
		v.DeleteLabelValues(pool)
	}
}
