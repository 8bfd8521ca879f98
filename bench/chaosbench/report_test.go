package main

import (
	"testing"
	"time"
)

func TestDurations(t *testing.T) {
	o := options{dur: 10 * time.Minute, partitionFor: time.Minute, apiFor: 2 * time.Minute, flapFor: time.Minute,
		floodFor: 30 * time.Second, floodRate: 10_000, kills: 5, services: 500}
	tests := []struct {
		scenarios []string
		want      string
	}{
		{[]string{"loss-1", "loss-5", "starve"}, "loss, jitter and starvation 10m0s each (the issue asks for 10 minutes), 5 hard failures under each netem setting"},
		{[]string{"partition", "partition-2"}, "partitions 1m0s"},
		{[]string{"frames", "api-down"}, "API server down 2m0s; flood 30s at 10000 frames/s"},
		{[]string{"rolling"}, ""},
		{scenarioNames, "loss, jitter and starvation 10m0s each (the issue asks for 10 minutes), 5 hard failures under each netem setting; " +
			"partitions 1m0s; API server down 2m0s; link flapping 1m0s; flood 30s at 10000 frames/s; 500 Services in leader-kill"},
	}
	for _, tt := range tests {
		o.scenarios = tt.scenarios
		if got := durations(o); got != tt.want {
			t.Errorf("durations(%v) = %q, want %q", tt.scenarios, got, tt.want)
		}
	}
}

func TestIncrease(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "c +0"},
		{62, "c +62"},
		{1.25, "c +1.2"},
		{-2, "c -2 (a speaker restarted: its counter began again)"},
	}
	for _, tt := range tests {
		if got := increase("c", tt.v); got != tt.want {
			t.Errorf("increase(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}
