package promtext

import (
	"strings"
	"testing"
)

const exposition = `# HELP rest_client_requests_total Number of HTTP requests.
# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",host="127.0.0.1:1",method="GET"} 12
rest_client_requests_total{code="200",host="127.0.0.1:1",method="PATCH"} 30
rest_client_requests_total{code="201",host="127.0.0.1:1",method="POST"} 5
workqueue_depth{controller="service",name="service"} 7
workqueue_depth{controller="config",name="config"} 1
metallb_k8s_client_config_loaded_bool 1

metallb_speaker_announced{ip="192.0.2.200",node="node1",protocol="layer2",service="default/web"} 1
metallb_speaker_announced{ip="2001:db8::1:5",node="node1",protocol="layer2",service="default/bulk-0004"} 1
metallb_speaker_announced{ip="2001:db8::1:6",node="node1",protocol="layer2",service="default/bulk-0005"} 0
metallb_layer2_requests_received{ip="192.0.2.200"} 10042
metallb_layer2_requests_received{ip="192.0.2.201"} 7
go_goroutines 42 1700000000000
`

func TestSum(t *testing.T) {
	m, err := Parse(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"rest_client_requests_total", nil, 47},
		{"rest_client_requests_total", []string{`method="PATCH"`}, 30},
		{"rest_client_requests_total", []string{`code="200"`, `method="GET"`}, 12},
		{"workqueue_depth", []string{`name="service"`}, 7},
		{"metallb_k8s_client_config_loaded_bool", nil, 1},
		{"metallb_layer2_requests_received", []string{`ip="192.0.2.200"`}, 10042},
		{"go_goroutines", nil, 42},
		{"absent", nil, 0},
	}
	for _, tt := range tests {
		if got := m.Sum(tt.name, tt.labels...); got != tt.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
}

func TestCount(t *testing.T) {
	m, err := Parse(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	v6 := func(l string) bool { return strings.Contains(l, `ip="2001:db8::1:`) }
	tests := []struct {
		name string
		keep func(string) bool
		want int
	}{
		{"every non-zero sample", nil, 2},
		{"IPv6 only, the zero one left out", v6, 1},
	}
	for _, tt := range tests {
		if got := m.Count("metallb_speaker_announced", tt.keep); got != tt.want {
			t.Errorf("%s: Count = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, line := range []string{
		"broken{a=\"b\" 1\n",
		"novalue\n",
		"name{a=\"b\"}\n",
		"name notanumber\n",
	} {
		if _, err := Parse(strings.NewReader(line)); err == nil {
			t.Errorf("Parse(%q): want an error", line)
		}
	}
}
