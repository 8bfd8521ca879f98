package announce

import (
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestAnnouncedSeries: each update leaves exactly the series of the set it
// is given, for its protocol only, and reports each Service's start and
// stop once.
func TestAnnouncedSeries(t *testing.T) {
	a1, a2, a3 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::1")
	type step struct {
		protocol string
		want     map[string][]netip.Addr
		// series left, as "service protocol ip", sorted
		series           []string
		started, stopped []string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"start, repeat, stop", []step{
			{"bgp", map[string][]netip.Addr{"a/x": {a1, a3}}, []string{"a/x bgp 192.0.2.1", "a/x bgp 2001:db8::1"}, []string{"a/x"}, nil},
			{"bgp", map[string][]netip.Addr{"a/x": {a1, a3}}, []string{"a/x bgp 192.0.2.1", "a/x bgp 2001:db8::1"}, nil, nil},
			{"bgp", nil, nil, nil, []string{"a/x"}},
		}},
		{"an address leaves a Service that stays", []step{
			{"layer2", map[string][]netip.Addr{"a/x": {a1, a2}}, []string{"a/x layer2 192.0.2.1", "a/x layer2 192.0.2.2"}, []string{"a/x"}, nil},
			{"layer2", map[string][]netip.Addr{"a/x": {a2}}, []string{"a/x layer2 192.0.2.2"}, nil, nil},
		}},
		{"a shared address stays while one Service has it", []step{
			{"layer2", map[string][]netip.Addr{"a/x": {a1}, "a/y": {a1}}, []string{"a/x layer2 192.0.2.1", "a/y layer2 192.0.2.1"}, []string{"a/x", "a/y"}, nil},
			{"layer2", map[string][]netip.Addr{"a/y": {a1}}, []string{"a/y layer2 192.0.2.1"}, nil, []string{"a/x"}},
		}},
		{"the protocols are independent", []step{
			{"layer2", map[string][]netip.Addr{"a/x": {a1}}, []string{"a/x layer2 192.0.2.1"}, []string{"a/x"}, nil},
			{"bgp", map[string][]netip.Addr{"a/x": {a1}}, []string{"a/x bgp 192.0.2.1", "a/x layer2 192.0.2.1"}, []string{"a/x"}, nil},
			{"layer2", nil, []string{"a/x bgp 192.0.2.1"}, nil, []string{"a/x"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			g := NewAnnouncedGauge()
			reg.MustRegister(g)
			series := newAnnouncedSeries(g, "n1")
			for i, st := range tc.steps {
				ch := series.update(st.protocol, st.want)
				if !slices.Equal(ch.Started, st.started) || !slices.Equal(ch.Stopped, st.stopped) {
					t.Errorf("step %d: started %v stopped %v; want %v %v", i, ch.Started, ch.Stopped, st.started, st.stopped)
				}
				if got := announcedSeriesOf(t, reg); !slices.Equal(got, st.series) {
					t.Errorf("step %d: series %q, want %q", i, got, st.series)
				}
			}
		})
	}
}

func announcedSeriesOf(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "metallb_speaker_announced" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["node"] != "n1" || m.GetGauge().GetValue() != 1 {
				t.Errorf("series %v = %v, want node n1 and value 1", l, m.GetGauge().GetValue())
			}
			out = append(out, strings.Join([]string{l["service"], l["protocol"], l["ip"]}, " "))
		}
	}
	sort.Strings(out)
	return out
}
