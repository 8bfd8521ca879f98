package main

import (
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name, stat string
		want       float64
		wantErr    bool
	}{
		{"plain", "42 (herald) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 100 0 0", 3.25, false},
		{"name with spaces and parens", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 0 0 0", 0.03, false},
		{"truncated", "7 (x) R 1 2", 0, true},
		{"no name", "garbage", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU(tt.stat)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOwnProcess(t *testing.T) {
	// Our own /proc entries must parse: the same code reads the controller's.
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := cpuSeconds(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	hwm, err := memoryBytes(os.Getpid(), "VmHWM")
	if err != nil || hwm < 1<<20 {
		t.Fatalf("VmHWM = %d, %v; want at least 1 MiB", hwm, err)
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\therald\nVmHWM:\t  104448 kB\nVmRSS:\t   51200 kB\n"
	for field, want := range map[string]uint64{"VmHWM": 104448 * 1024, "VmRSS": 51200 * 1024} {
		got, err := parseStatusKB(status, field)
		if err != nil || got != want {
			t.Errorf("%s = %d, %v; want %d", field, got, err, want)
		}
	}
	if _, err := parseStatusKB(status, "VmSwap"); err == nil {
		t.Error("missing field: want an error")
	}
}

func TestMetricsSum(t *testing.T) {
	text := `# HELP rest_client_requests_total Number of HTTP requests.
# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",host="127.0.0.1:1",method="GET"} 12
rest_client_requests_total{code="200",host="127.0.0.1:1",method="PATCH"} 30
rest_client_requests_total{code="201",host="127.0.0.1:1",method="POST"} 5
workqueue_depth{controller="service",name="service"} 7
workqueue_depth{controller="config",name="config"} 1
metallb_k8s_client_config_loaded_bool 1
`
	s, err := parseProm(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	m := metrics(s)
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"rest_client_requests_total", nil, 47},
		{"rest_client_requests_total", []string{`method="PATCH"`}, 30},
		{"workqueue_depth", []string{`name="service"`}, 7},
		{"metallb_k8s_client_config_loaded_bool", nil, 1},
		{"absent", nil, 0},
	}
	for _, tt := range tests {
		if got := m.sum(tt.name, tt.labels...); got != tt.want {
			t.Errorf("sum(%s, %v) = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if _, err := parseProm(strings.NewReader("broken{a=\"b\" 1\n")); err == nil {
		t.Error("malformed line: want an error")
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 200; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 100 * time.Millisecond, 99: 198 * time.Millisecond, 100: 200 * time.Millisecond} {
		if got := percentile(ds, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("empty: %v", got)
	}
}

func TestIsV6Spread(t *testing.T) {
	for _, c := range []struct{ n, total int }{{2000, 10000}, {0, 10}, {10, 10}, {3, 7}} {
		got := 0
		for i := range c.total {
			if isV6(i, c.n, c.total) {
				got++
			}
		}
		if got != c.n {
			t.Errorf("isV6 over %d picked %d, want %d", c.total, got, c.n)
		}
	}
}

func svc(name string, v6 bool, ips ...string) corev1.Service {
	s := *newService("ns", name, v6)
	s.ObjectMeta = metav1.ObjectMeta{Namespace: "ns", Name: name}
	if s.Spec.IPFamilies == nil {
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol} // as the API server defaults it
	}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

func TestCheckAddresses(t *testing.T) {
	tests := []struct {
		name    string
		svcs    []corev1.Service
		wantErr string
	}{
		{"good", []corev1.Service{svc("a", false, "198.18.0.1"), svc("b", true, "2001:db8::1"), svc("c", false, "198.19.255.254")}, ""},
		{"duplicate", []corev1.Service{svc("a", false, "198.18.0.1"), svc("b", false, "198.18.0.1")}, "held by both"},
		{"outside pool", []corev1.Service{svc("a", false, "198.20.0.1")}, "not in its pool"},
		{"wrong family", []corev1.Service{svc("a", true, "198.18.0.1")}, "not in its pool"},
		{"v6 outside /64", []corev1.Service{svc("a", true, "2001:db8:0:1::1")}, "not in its pool"},
		{"no address", []corev1.Service{svc("a", false)}, "0 ingress"},
		{"two addresses", []corev1.Service{svc("a", false, "198.18.0.1", "198.18.0.2")}, "2 ingress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkAddresses(tt.svcs)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
