package main

import (
	"context"
	"log/slog"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// events counts the memberlist log lines that explain a false positive,
// over all members: memberlist logs them at INFO and WARN through
// internal/membership's logger. Unlike the go-metrics counters, which every
// member that hears a suspicion increments, each of these is logged once,
// by the member that acted.
type events struct {
	probeFailed atomic.Uint64 // a prober got no ack at all and raised a suspicion
	timedOut    atomic.Uint64 // a suspicion ran out: a member declared another dead
	refuted     atomic.Uint64 // a member refuted a suspicion or a death of itself
	tcpOnly     atomic.Uint64 // UDP probe failed, the TCP fallback reached the member
}

// eventCounts is a snapshot of events.
type eventCounts struct{ probeFailed, timedOut, refuted, tcpOnly uint64 }

func (e *events) snapshot() eventCounts {
	return eventCounts{e.probeFailed.Load(), e.timedOut.Load(), e.refuted.Load(), e.tcpOnly.Load()}
}

func (c eventCounts) minus(o eventCounts) eventCounts {
	return eventCounts{c.probeFailed - o.probeFailed, c.timedOut - o.timedOut, c.refuted - o.refuted, c.tcpOnly - o.tcpOnly}
}

// logger returns a logger for the members that counts into e and drops
// everything else.
func (e *events) logger() *slog.Logger { return slog.New(e) }

func (e *events) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (e *events) WithAttrs([]slog.Attr) slog.Handler           { return e }
func (e *events) WithGroup(string) slog.Handler                { return e }
func (e *events) Handle(_ context.Context, r slog.Record) error {
	var c *atomic.Uint64
	switch m := r.Message; {
	case strings.HasPrefix(m, "Suspect ") && strings.HasSuffix(m, "no acks received"):
		c = &e.probeFailed
	case strings.HasPrefix(m, "Marking ") && strings.Contains(m, "suspect timeout reached"):
		c = &e.timedOut
	case strings.HasPrefix(m, "Refuting a "):
		c = &e.refuted
	case strings.HasPrefix(m, "Was able to connect to "):
		c = &e.tcpOnly
	default:
		return nil
	}
	c.Add(1)
	return nil
}

// schedLatency reads the Go scheduler's histogram of the time goroutines
// waited, runnable, for a CPU: with every member in one process, this is
// how late a member answers a probe because the others hold the cores.
type schedLatency struct{ h *metrics.Float64Histogram }

const schedLatencyMetric = "/sched/latencies:seconds"

func readSchedLatency() schedLatency {
	s := []metrics.Sample{{Name: schedLatencyMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return schedLatency{}
	}
	return schedLatency{s[0].Value.Float64Histogram()}
}

// since returns the 99th and 99.99th percentiles and the largest bucket
// reached of the waits recorded between earlier and s (bucket lower
// bounds: the histogram is coarse, a bucket per power of two or so).
func (s schedLatency) since(earlier schedLatency) (p99, p9999, most time.Duration) {
	if s.h == nil || earlier.h == nil || len(s.h.Counts) != len(earlier.h.Counts) {
		return 0, 0, 0
	}
	counts := make([]uint64, len(s.h.Counts))
	var total uint64
	for i := range counts {
		counts[i] = s.h.Counts[i] - earlier.h.Counts[i]
		total += counts[i]
	}
	if total == 0 {
		return 0, 0, 0
	}
	bound := func(i int) time.Duration { return time.Duration(max(0, s.h.Buckets[i]) * float64(time.Second)) }
	at := func(q float64) time.Duration {
		want := uint64(q * float64(total))
		var seen uint64
		for i, c := range counts {
			seen += c
			if seen > want {
				return bound(i)
			}
		}
		return bound(len(counts) - 1)
	}
	for i := len(counts) - 1; i >= 0; i-- {
		if counts[i] > 0 {
			most = bound(i)
			break
		}
	}
	return at(0.99), at(0.9999), most
}

// machineBusy returns the CPU time all processes of the machine have used
// (everything in /proc/stat's cpu line but idle and iowait), to tell this
// process's members from other load on the same cores; 0 if unreadable.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 8 || fields[0] != "cpu" {
		return 0
	}
	var busy uint64
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	// USER_HZ is 100 on every Linux this runs on.
	return time.Duration(busy) * 10 * time.Millisecond
}
