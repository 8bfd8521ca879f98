package report

import (
	"testing"
	"time"
)

// msList turns whole milliseconds into durations.
func msList(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestSummarize(t *testing.T) {
	const ms = time.Millisecond
	twenty := msList(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"one", msList(7), Summary{N: 1, Min: 7 * ms, Median: 7 * ms, P95: 7 * ms, Max: 7 * ms}},
		{"odd count takes the middle one", msList(3, 1, 2), Summary{N: 3, Min: ms, Median: 2 * ms, P95: 3 * ms, Max: 3 * ms}},
		{"even count takes the mean of the middle two", msList(40, 10, 30, 20), Summary{N: 4, Min: 10 * ms, Median: 25 * ms, P95: 40 * ms, Max: 40 * ms}},
		{"p95 of 20 is the 19th", twenty, Summary{N: 20, Min: ms, Median: 10500 * time.Microsecond, P95: 19 * ms, Max: 20 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Summarize(tc.in); got != tc.want {
				t.Errorf("Summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
	if twenty[0] != 20*time.Millisecond {
		t.Error("Summarize sorted its input in place")
	}
}

func TestPercentile(t *testing.T) {
	var twoHundred []time.Duration
	for i := 1; i <= 200; i++ {
		twoHundred = append(twoHundred, time.Duration(i)*time.Millisecond)
	}
	ten := msList(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"p0 is the smallest", ten, 0, time.Millisecond},
		{"p50 of an even count is the lower middle", ten, 50, 5 * time.Millisecond},
		{"p95 of 10 is the largest", ten, 95, 10 * time.Millisecond},
		{"p100 is the largest", ten, 100, 10 * time.Millisecond},
		{"p95 of 20 is the 19th", msList(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 95, 19 * time.Millisecond},
		{"p50 of 200", twoHundred, 50, 100 * time.Millisecond},
		{"p99 of 200", twoHundred, 99, 198 * time.Millisecond},
		{"p100 of 200", twoHundred, 100, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("Percentile(p%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestRounding(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"Round to 2", Round(3.14159, 2), 3.14},
		{"Round half away from zero", Round(2.25, 1), 2.3},
		{"Round negative", Round(-2.25, 1), -2.3},
		{"Round to 0", Round(1234.5, 0), 1235},
		{"Millis to 1", Millis(1234*time.Microsecond, 1), 1.2},
		{"Millis to 1, up", Millis(12345*time.Microsecond, 1), 12.3},
		{"Millis to 2", Millis(12345*time.Microsecond, 2), 12.35},
		{"Millis of 0", Millis(0, 2), 0},
		{"MiB", MiB(3 << 20), 3},
		{"MiB to 1", MiB(1<<20 + 1<<19 + 1<<15), 1.5},
		{"MiB rounds up", MiB(1<<20 - 1<<14), 1},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}
