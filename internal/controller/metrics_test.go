package controller

import (
	"math/big"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herald-lb/herald/internal/ipam"
)

// TestMetricNames pins MetalLB's metric names and labels, which dashboards
// and alerts depend on, and checks that a removed pool leaves no series.
func TestMetricNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	two64 := new(big.Int).Lsh(big.NewInt(1), 64)
	m.setPool(ipam.PoolStats{Pool: "web",
		IPv4: ipam.FamilyCount{InUse: 3, Capacity: big.NewInt(256)},
		IPv6: ipam.FamilyCount{InUse: 1, Capacity: two64},
	}, 4)
	m.allocationFailures.WithLabelValues("PoolExhausted").Inc()
	want := []string{
		"herald_allocation_failures_total", "herald_services_pending",
		"metallb_allocator_addresses_in_use_total", "metallb_allocator_addresses_total",
		"metallb_allocator_ipv4_addresses_in_use_total", "metallb_allocator_ipv4_addresses_total",
		"metallb_allocator_ipv6_addresses_in_use_total", "metallb_allocator_ipv6_addresses_total",
		"metallb_allocator_services_allocated_total",
		"metallb_k8s_client_config_loaded_bool", "metallb_k8s_client_config_stale_bool",
		"metallb_k8s_client_update_errors_total", "metallb_k8s_client_updates_total",
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		got = append(got, mf.GetName())
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("metrics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	tests := []struct {
		metric *prometheus.GaugeVec
		want   float64
	}{
		{m.inUse4, 3}, {m.total4, 256}, {m.inUse6, 1}, {m.inUse, 4},
		{m.total6, float64(1<<63 - 1)}, // saturates like MetalLB's
		{m.servicesAllocated, 4},
	}
	for i, tc := range tests {
		if got := testutil.ToFloat64(tc.metric.WithLabelValues("web")); got != tc.want {
			t.Errorf("row %d: got %v, want %v", i, got, tc.want)
		}
	}
	m.deletePool("web")
	if n := testutil.CollectAndCount(m.inUse); n != 0 {
		t.Errorf("%d series left after the pool was removed", n)
	}
}
