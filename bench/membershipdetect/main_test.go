package main

import (
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	var ds []time.Duration
	for i := 10; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0, time.Millisecond},
		{0.5, 5 * time.Millisecond},
		{0.95, 10 * time.Millisecond},
		{1, 10 * time.Millisecond},
	}
	for _, tc := range tests {
		if got := quantile(ds, tc.q); got != tc.want {
			t.Errorf("quantile(%v) = %s, want %s", tc.q, got, tc.want)
		}
	}
	if ds[0] != 10*time.Millisecond {
		t.Error("quantile sorted its input")
	}
}
