package report

import (
	"math"
	"slices"
	"time"
)

// Summary is the spread of a set of durations.
type Summary struct {
	N                     int
	Min, Median, P95, Max time.Duration
}

// Summarize returns the spread of ds without changing ds. The median is the
// mean of the two middle values for an even count; P95 is the nearest-rank
// percentile (the 19th of 20). Empty input gives the zero Summary.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Sorted(slices.Values(ds))
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Summary{N: n, Min: s[0], Median: med, P95: Percentile(s, 95), Max: s[n-1]}
}

// Percentile returns the nearest-rank p-th percentile (0 to 100) of sorted,
// which must be in ascending order: the smallest value with at least p% of
// the values at or below it. It returns 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Millis returns d in milliseconds, rounded to decimals decimal places.
func Millis(d time.Duration, decimals int) float64 {
	return Round(float64(d)/float64(time.Millisecond), decimals)
}

// MiB returns bytes in mebibytes (2^20 bytes), rounded to one decimal place.
func MiB(bytes uint64) float64 {
	return Round(float64(bytes)/(1<<20), 1)
}

// Round rounds v to decimals decimal places, halves away from zero.
func Round(v float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(v*p) / p
}
