package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/cloud/hetzner/hcloudsim"
	"github.com/herald-lb/herald/internal/lab"
)

func TestAnalyze(t *testing.T) {
	f := floatingIPs()[0]
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ok := func(startMS, endMS int, node string) lab.Sample {
		return lab.Sample{Start: at(startMS), End: at(endMS), Node: node}
	}
	samples := []lab.Sample{ok(-20, -15, "node1"), ok(-10, -5, "node1"), ok(4000, 4002, "node2"), ok(4010, 4011, "node2")}
	reqs := []hcloudsim.Request{
		{Time: at(-50000), Method: "GET", Path: f.path()}, // an old check
		{Time: at(3000), Method: "GET", Path: f.path()},
		{Time: at(3010), Method: "POST", Path: f.path() + "/actions/assign"},
		{Time: at(3600), Method: "GET", Path: "/actions"},
	}
	moves := []move{{fip: 2, server: 3, at: at(100)}, {fip: f.id, server: 2, at: at(3990)}}

	tests := []struct {
		name     string
		next     string
		acquired time.Time
		moves    []move
		want     hardRun
		err      string
	}{
		{name: "ok", next: "node2", acquired: at(2990), moves: moves, want: hardRun{
			owner: "node1", to: "node2", failover: 4002 * time.Millisecond, leaseLeft: 2500 * time.Millisecond,
			detection: 2990 * time.Millisecond, decision: 20 * time.Millisecond, action: 980 * time.Millisecond,
			answer: 12 * time.Millisecond, outage: 4007 * time.Millisecond,
		}},
		{name: "Lease elsewhere", next: "node3", acquired: at(2990), moves: moves, err: "holds the Lease"},
		{name: "Lease before the kill", next: "node2", acquired: at(-1), moves: moves, err: "before the kill"},
		{name: "no assign after the Lease", next: "node2", acquired: at(3500), moves: moves, err: "no assign request"},
		{name: "route never moved", next: "node2", acquired: at(2990), moves: moves[:1], err: "never moved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := analyze(f, "node1", t0, at(2500), tt.next, tt.acquired, samples, reqs, tt.moves)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.requests.total != 3 || r.requests.byKind["POST /floating_ips/{id}/actions/assign"] != 1 {
				t.Errorf("requests %v, want the 3 from the kill on", r.requests)
			}
			r.requests = requestCount{}
			if !reflect.DeepEqual(r, tt.want) {
				t.Errorf("got  %+v\nwant %+v", r, tt.want)
			}
			if got := r.overhead(time.Second); got != 12*time.Millisecond {
				t.Errorf("overhead %s, want 12ms", got)
			}
		})
	}
}

func TestIdle(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	get := func(s int, path string) hcloudsim.Request {
		return hcloudsim.Request{Time: t0.Add(time.Duration(s) * time.Second), Method: "GET", Path: path}
	}
	reqs := []hcloudsim.Request{get(10, "/floating_ips/1"), get(50, "/floating_ips/2"), get(110, "/floating_ips/1"),
		get(150, "/floating_ips/2"), get(210, "/floating_ips/1"), get(220, "/servers/1")}
	r := idleResult{ips: 2, window: 300 * time.Second, requests: countRequests(reqs), intervals: checkIntervals(reqs)}
	if len(r.intervals) != 3 {
		t.Fatalf("intervals %v, want three of 100 s", r.intervals)
	}
	for _, tt := range []struct {
		name      string
		got, want float64
	}{
		{"per hour by the window", r.perHour(), 72},
		{"per IP per hour by the spacing", r.perIPPerHour(), 36},
		{"reads", float64(r.requests.byKind["GET /floating_ips/{id}"]), 5},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if got := (idleResult{}).perIPPerHour(); got != 0 {
		t.Errorf("no intervals: %v, want 0", got)
	}
}

func TestDurationsFlag(t *testing.T) {
	var d durations
	if err := d.Set("0s, 1s,3s"); err != nil || d.String() != "0s,1s,3s" {
		t.Errorf("Set: %v %v", d, err)
	}
	if err := d.Set("1x"); err == nil {
		t.Error("1x accepted")
	}
}

func TestConfig(t *testing.T) {
	y := heraldConfig()
	fips := floatingIPs()
	for _, want := range []string{"kind: CloudAdvertisement", "token: " + token, "203.0.113.10-203.0.113.29", "provider: hetzner"} {
		if !strings.Contains(y, want) {
			t.Errorf("missing %q", want)
		}
	}
	if first, last := fips[0].addr.String(), fips[maxIPs-1].addr.String(); first != "203.0.113.10" || last != "203.0.113.29" {
		t.Errorf("floating IPs %s to %s, want the pool's range", first, last)
	}
}
