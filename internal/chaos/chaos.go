// Package chaos runs the fault scenarios of issue 14 in the namespace lab
// (internal/lab) and measures what a client on the LAN sees: a request
// every few milliseconds (failed requests, the longest gap between
// answers), who answers ARP for the Service address (ownership changes,
// two nodes answering at once), and the Events and metrics Herald raised.
//
// The same scenario serves the end-to-end tests, briefly and with Strict
// set (the first sample showing the bad state ends it with an error), and
// bench/chaosbench, at length, recording everything.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"time"

	"github.com/herald-lb/herald/bench/promtext"
	"github.com/herald-lb/herald/internal/lab"
)

// Options are common to every scenario.
type Options struct {
	// For is how long the fault lasts.
	For time.Duration
	// ProbeEvery is the client's request interval; default 10 ms.
	ProbeEvery time.Duration
	// AnswerEvery is the ARP sampler's interval; default 20 ms.
	AnswerEvery time.Duration
	// Strict ends the scenario at the first sample that shows what its
	// goal rules out, with an error saying what and when.
	Strict bool
	// Log receives progress; nil discards it.
	Log *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.ProbeEvery == 0 {
		o.ProbeEvery = 10 * time.Millisecond
	}
	if o.AnswerEvery == 0 {
		o.AnswerEvery = 20 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Target is the Service address a scenario watches.
type Target struct {
	Service string // name, in namespace default
	Addr    netip.Addr
}

// Result is what one scenario measured.
type Result struct {
	Scenario string        `json:"scenario"`
	Duration time.Duration `json:"duration"`
	Owner    string        `json:"owner"` // before the fault

	Requests   int           `json:"requests"`
	Failed     int           `json:"failed"`
	LongestGap time.Duration `json:"longestGap"`

	// Moves are changes of the node answering ARP alone; Spurious counts
	// those no real failure explains (the scenario says which window).
	Moves        int           `json:"moves"`
	Spurious     int           `json:"spurious"`
	DoubleRounds int           `json:"doubleRounds"`
	DoubleSpan   time.Duration `json:"doubleSpan"`
	ARPRounds    int           `json:"arpRounds"`

	Events  map[string]int     `json:"events"`
	Metrics map[string]float64 `json:"metrics"` // increase over the scenario, summed over the speakers
	// Figures are the scenario's own measurements, by name (units in the
	// name).
	Figures map[string]float64 `json:"figures"`
	Notes   []string           `json:"notes,omitempty"`
}

func (r *Result) figure(name string, v float64) {
	if r.Figures == nil {
		r.Figures = map[string]float64{}
	}
	r.Figures[name] = v
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Counters are the speakers' metrics a scenario reports the increase of.
var Counters = []string{
	"herald_layer2_address_conflicts_total",
	"metallb_layer2_gratuitous_sent",
	"metallb_layer2_requests_received",
	"metallb_layer2_responses_sent",
}

// EventReasons are the Events a scenario reports.
var EventReasons = []string{"nodeAssigned", "nodeUnassigned", "AddressConflict", "IPAllocated", "MemberlistKeyUnavailable"}

// watch is the client's view during a scenario: a probe and an ARP sampler.
type watch struct {
	l        *lab.Lab
	t        Target
	o        Options
	owner    string // before the fault
	ownerMAC net.HardwareAddr
	start    time.Time
	probe    *lab.Probe
	answers  *lab.AnswerSampler
	before   map[string]float64
}

// startWatch finds the owner of the target, recorded in r, and starts
// watching.
func startWatch(ctx context.Context, l *lab.Lab, t Target, o Options, r *Result) (*watch, error) {
	w := &watch{l: l, t: t, o: o}
	var err error
	if w.owner, w.ownerMAC, err = Owner(ctx, l, t.Addr); err != nil {
		return nil, err
	}
	r.Owner = w.owner
	w.start = time.Now()
	w.before = speakerCounters(ctx, l)
	if w.answers, err = l.SampleAnswers(ctx, t.Addr, o.AnswerEvery); err != nil {
		return nil, err
	}
	w.probe = l.Probe(ctx, t.Addr, 80, o.ProbeEvery)
	return w, nil
}

// finish stops the watch and fills r with what it saw; spurious counts the
// moves in [from, to).
func (w *watch) finish(ctx context.Context, r *Result, from, to time.Time) []lab.Round {
	samples := w.probe.Stop()
	rounds, _ := w.answers.Stop() // a double answer is a figure here, not an error
	r.Duration = time.Since(w.start).Round(time.Millisecond)
	r.Requests = len(samples)
	r.Failed = len(lab.Failed(samples))
	r.LongestGap = lab.LongestOutage(samples)
	own := lab.Owned(rounds)
	r.Moves, r.DoubleRounds, r.DoubleSpan, r.ARPRounds = own.Moves, own.Double, own.DoubleSpan(), own.Rounds
	r.Spurious = lab.Owned(between(rounds, from, to)).Moves
	r.Events = map[string]int{}
	if ev, err := w.l.EventReasons(ctx, w.start); err == nil {
		for _, reason := range EventReasons {
			if ev[reason] > 0 {
				r.Events[reason] = ev[reason]
			}
		}
	} else {
		r.note("Events not read: %v", err)
	}
	after := speakerCounters(ctx, w.l)
	r.Metrics = map[string]float64{}
	for _, c := range Counters {
		if d := after[c] - w.before[c]; d != 0 {
			r.Metrics[c] = d
		}
	}
	return rounds
}

func between(rounds []lab.Round, from, to time.Time) []lab.Round {
	var out []lab.Round
	for _, r := range rounds {
		if !r.Sent.Before(from) && r.Sent.Before(to) {
			out = append(out, r)
		}
	}
	return out
}

// hold lets the fault run for d. In strict mode it returns at the first
// ARP round that another node answered alone (a move away from owner), or
// that two nodes answered.
func (w *watch) hold(ctx context.Context, d time.Duration, owner net.HardwareAddr) error {
	if !w.o.Strict {
		return lab.Sleep(ctx, d)
	}
	hctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	since := time.Now()
	r, err := w.answers.WaitRound(hctx, since, func(r lab.Round) bool { return len(r.MACs) == 1 && r.MACs[0].String() != owner.String() })
	switch {
	case err == nil:
		return fmt.Errorf("the address moved from %s to %s (%s) %s into the fault, with no failure to explain it",
			owner, r.MACs[0], w.l.NodeByMAC(r.MACs[0]), r.Sent.Sub(since).Round(time.Millisecond))
	case hctx.Err() != nil && ctx.Err() == nil:
		return nil
	}
	return err
}

// settle waits until the sampler sees node alone answer, after since.
func (w *watch) settle(ctx context.Context, node string, since time.Time, within time.Duration) (time.Time, error) {
	mac, err := w.l.NodeMAC(node)
	if err != nil {
		return time.Time{}, err
	}
	sctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	r, err := w.answers.WaitRound(sctx, since, func(r lab.Round) bool { return r.AnsweredOnlyBy(mac) })
	var double *lab.DoubleAnswerError
	if errors.As(err, &double) && !w.o.Strict {
		// Recorded; wait on for the single answer without the fault.
		return w.settleAfterFault(sctx, mac, since)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("waiting for %s to answer %s alone: %w", node, w.t.Addr, err)
	}
	return r.Sent, nil
}

// settleAfterFault polls the rounds, which WaitRound stops giving once a
// double answer is recorded.
func (w *watch) settleAfterFault(ctx context.Context, mac net.HardwareAddr, since time.Time) (time.Time, error) {
	for {
		for _, r := range w.answers.Rounds() {
			if r.Sent.After(since) && r.Sent.Before(time.Now().Add(-200*time.Millisecond)) && r.AnsweredOnlyBy(mac) {
				return r.Sent, nil
			}
		}
		if err := lab.Sleep(ctx, 50*time.Millisecond); err != nil {
			return time.Time{}, fmt.Errorf("waiting for %s to answer alone: %w", mac, err)
		}
	}
}

// failover kills node's speaker and cuts its link, the hard failure, and
// returns how long until the client is answered by another node.
func (w *watch) failover(ctx context.Context, node string) (time.Duration, string, error) {
	killed := time.Now()
	if err := w.l.KillSpeaker(node); err != nil {
		return 0, "", err
	}
	if err := w.l.CutLink(node); err != nil {
		return 0, "", err
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	s, err := w.probe.Wait(fctx, func(s lab.Sample) bool { return s.Err == nil && s.Start.After(killed) && s.Node != node })
	if err != nil {
		return 0, "", fmt.Errorf("no node took over from %s: %w", node, err)
	}
	return s.End.Sub(killed), s.Node, nil
}

// revive undoes failover and waits until node answers alone again.
func (w *watch) revive(ctx context.Context, node string) error {
	back := time.Now()
	if err := w.l.RestoreLink(node); err != nil {
		return err
	}
	if err := w.l.StartSpeaker(node); err != nil {
		return err
	}
	_, err := w.settle(ctx, node, back, time.Minute)
	return err
}

// Owner waits until one node answers ARP for addr and names it.
func Owner(ctx context.Context, l *lab.Lab, addr netip.Addr) (string, net.HardwareAddr, error) {
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	node, err := l.WaitAnnouncer(wctx, addr)
	if err != nil {
		return "", nil, err
	}
	mac, err := l.NodeMAC(node)
	return node, mac, err
}

// speakerCounters sums Counters over every speaker that answers.
func speakerCounters(ctx context.Context, l *lab.Lab) map[string]float64 {
	out := map[string]float64{}
	c := l.HTTPClient(3 * time.Second)
	for _, n := range l.Nodes() {
		m, err := scrape(ctx, c, n.IPv4)
		if err != nil {
			continue // a killed or cut-off speaker
		}
		for _, name := range Counters {
			out[name] += m.Sum(name)
		}
	}
	return out
}

func scrape(ctx context.Context, c *http.Client, node netip.Addr) (promtext.Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(node.String(), "7472")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("metrics of %s: %s", node, resp.Status)
	}
	return promtext.Parse(resp.Body)
}

// clientNeighbor is the MAC the client's neighbour table holds for addr,
// nil when it has none.
func clientNeighbor(ctx context.Context, l *lab.Lab, addr netip.Addr) (net.HardwareAddr, error) {
	out, err := exec.CommandContext(ctx, "ip", "-n", l.ClientNode().Namespace, "neigh", "show", addr.String(), "dev", "eth0").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ip neigh show %s: %w: %s", addr, err, out)
	}
	f := strings.Fields(string(out))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "lladdr" {
			return net.ParseMAC(f[i+1])
		}
	}
	return nil, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
