package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// Everything here acts from the client namespace, as a machine on the LAN.

// Curl fetches http://addr:port/ with the real curl from the client and
// returns the body trimmed: the name of the node that answered.
func (l *Lab) Curl(ctx context.Context, addr netip.Addr, port int) (string, error) {
	u := "http://" + net.JoinHostPort(addr.String(), strconv.Itoa(port)) + "/"
	out, err := l.inClient(ctx, "curl", "-sS", "-g", "--noproxy", "*", "--connect-timeout", "1", "--max-time", "2", u)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// inClient runs a command in the client namespace and returns its stdout.
func (l *Lab) inClient(ctx context.Context, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.clientM.Namespace}, argv...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.String(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
	}
	return stdout.String(), nil
}

var macRE = regexp.MustCompile(`(?i)\b[0-9a-f]{2}(?::[0-9a-f]{2}){5}\b`)

func parseMACs(out string) []net.HardwareAddr {
	var macs []net.HardwareAddr
	for _, m := range macRE.FindAllString(out, -1) {
		hw, err := net.ParseMAC(m)
		if err == nil && !slices.ContainsFunc(macs, func(x net.HardwareAddr) bool { return bytes.Equal(x, hw) }) {
			macs = append(macs, hw)
		}
	}
	return macs
}

// Neighbor asks the LAN, from the client, who has addr (ARP for IPv4, NDP
// for IPv6) and returns the first MAC address that answers, within a second.
func (l *Lab) Neighbor(ctx context.Context, addr netip.Addr) (net.HardwareAddr, error) {
	var argv []string
	if addr.Is4() {
		argv = []string{"arping", "-c", "1", "-w", "1", "-I", "eth0", addr.String()}
	} else {
		argv = []string{"ndisc6", "-1", "-q", "-n", "-r", "1", "-w", "1000", addr.String(), "eth0"}
	}
	out, err := l.inClient(ctx, argv...)
	if err != nil {
		return nil, fmt.Errorf("no answer for %s: %w", addr, err)
	}
	macs := parseMACs(out)
	if len(macs) == 0 {
		return nil, fmt.Errorf("no answer for %s", addr)
	}
	return macs[0], nil
}

// Neighbors is Neighbor that waits a whole second and returns every MAC
// address that answered, to catch more than one node claiming addr.
func (l *Lab) Neighbors(ctx context.Context, addr netip.Addr) ([]net.HardwareAddr, error) {
	var argv []string
	if addr.Is4() {
		argv = []string{"arping", "-w", "1", "-I", "eth0", addr.String()}
	} else {
		argv = []string{"ndisc6", "-m", "-n", "-r", "1", "-w", "1000", addr.String(), "eth0"}
	}
	out, err := l.inClient(ctx, argv...)
	// Both tools exit non-zero when nobody answers; any other failure is one.
	if exit := (*exec.ExitError)(nil); err != nil && !errors.As(err, &exit) {
		return nil, err
	}
	return parseMACs(out), nil
}

// Announcer names the node whose MAC answers ARP/NDP for addr.
func (l *Lab) Announcer(ctx context.Context, addr netip.Addr) (string, error) {
	mac, err := l.Neighbor(ctx, addr)
	if err != nil {
		return "", err
	}
	if n := l.NodeByMAC(mac); n != "" {
		return n, nil
	}
	return "", fmt.Errorf("%s answered by %s, which is no node", addr, mac)
}

// WaitAnnouncer waits until some node answers ARP/NDP for addr and names it.
func (l *Lab) WaitAnnouncer(ctx context.Context, addr netip.Addr) (string, error) {
	for {
		node, err := l.Announcer(ctx, addr)
		if err == nil {
			return node, nil
		}
		select {
		case <-ctx.Done():
			if perr := l.CheckProcesses(); perr != nil {
				err = fmt.Errorf("%w\n%w", err, perr)
			}
			return "", err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// DialContext dials from the client namespace. Only literal addresses are
// meant: the client has no DNS.
func (l *Lab) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return dialIn(ctx, l.clientM.ns, network, address)
}

// dialIn dials from the network namespace ns.
func dialIn(ctx context.Context, ns netns.NsHandle, network, address string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(ns, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// HTTPClient makes requests from the client namespace, one connection per
// request (a kept-alive connection would hide a failover), never through a
// proxy.
func (l *Lab) HTTPClient(timeout time.Duration) *http.Client {
	return httpClientIn(l.clientM.ns, timeout)
}

// httpClientIn is HTTPClient from the network namespace ns.
func httpClientIn(ns netns.NsHandle, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
				return dialIn(ctx, ns, network, address)
			},
			DisableKeepAlives: true,
		},
	}
}

// Get fetches http://addr:port/ from the client with Go's HTTP client and
// returns the node name that answered.
func (l *Lab) Get(ctx context.Context, c *http.Client, addr netip.Addr, port int) (string, error) {
	body, err := getText(ctx, c, "http://"+net.JoinHostPort(addr.String(), strconv.Itoa(port))+"/")
	return strings.TrimSpace(body), err
}

// getText fetches u and returns its body.
func getText(ctx context.Context, c *http.Client, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return string(b), nil
}

// ProbeTimeout bounds each request of a Probe.
const ProbeTimeout = 2 * time.Second

// Sample is one request of a Probe.
type Sample struct {
	Start, End time.Time
	Node       string // who answered; empty on error
	Err        error
}

// Probe sends a request to one address at a steady rate, each on a new
// connection, and records every outcome; failover gaps show up at the
// resolution of the rate.
type Probe struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	samples []Sample
}

// Probe starts a request to http://addr:port/ from the client every
// interval (each with ProbeTimeout), until Stop.
func (l *Lab) Probe(ctx context.Context, addr netip.Addr, port int, every time.Duration) *Probe {
	return l.probeWith(ctx, l.HTTPClient(ProbeTimeout), addr, port, every)
}

// probeWith is Probe with the client c.
func (l *Lab) probeWith(ctx context.Context, c *http.Client, addr netip.Addr, port int, every time.Duration) *Probe {
	ctx, cancel := context.WithCancel(ctx)
	p := &Probe{cancel: cancel}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				s := Sample{Start: time.Now()}
				s.Node, s.Err = l.Get(ctx, c, addr, port)
				s.End = time.Now()
				if ctx.Err() != nil && s.Err != nil {
					return // cut short by Stop: says nothing about the network
				}
				p.mu.Lock()
				p.samples = append(p.samples, s)
				p.mu.Unlock()
			}()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// Samples returns the outcomes so far, by start time.
func (p *Probe) Samples() []Sample {
	p.mu.Lock()
	out := slices.Clone(p.samples)
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Sample) int { return a.Start.Compare(b.Start) })
	return out
}

// Stop ends the probe and returns every outcome, by start time.
func (p *Probe) Stop() []Sample {
	p.cancel()
	p.wg.Wait()
	return p.Samples()
}

// Wait waits for a sample that satisfies ok and returns it.
func (p *Probe) Wait(ctx context.Context, ok func(Sample) bool) (Sample, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	seen := 0
	for {
		p.mu.Lock()
		fresh := slices.Clone(p.samples[seen:])
		seen = len(p.samples)
		p.mu.Unlock()
		for _, s := range fresh {
			if ok(s) {
				return s, nil
			}
		}
		select {
		case <-ctx.Done():
			return Sample{}, ctx.Err()
		case <-tick.C:
		}
	}
}

// Failover finds the earliest answer from a node other than from among
// requests started at or after since, and returns how long after since it
// came and from whom. ok is false when there is none.
func Failover(samples []Sample, since time.Time, from string) (d time.Duration, to string, ok bool) {
	var first Sample
	for _, s := range samples {
		if s.Err != nil || s.Node == from || s.Start.Before(since) {
			continue
		}
		if !ok || s.End.Before(first.End) {
			first, ok = s, true
		}
	}
	if !ok {
		return 0, "", false
	}
	return first.End.Sub(since), first.Node, true
}

// Failed returns the samples whose request failed, whatever the error: a
// connection reset while the address moves is as much a failed request for
// the user as a timeout, so tests and benchmarks count them alike.
func Failed(samples []Sample) []Sample {
	var out []Sample
	for _, s := range samples {
		if s.Err != nil {
			out = append(out, s)
		}
	}
	return out
}

// LongestOutage is the longest time between two consecutive answers.
func LongestOutage(samples []Sample) time.Duration {
	var ends []time.Time
	for _, s := range samples {
		if s.Err == nil {
			ends = append(ends, s.End)
		}
	}
	slices.SortFunc(ends, time.Time.Compare)
	var longest time.Duration
	for i := 1; i < len(ends); i++ {
		longest = max(longest, ends[i].Sub(ends[i-1]))
	}
	return longest
}

// FailedBeyondMoves returns the first failed sample beyond what moves of
// the address
// may reset: a TCP connection in flight at the instant the client's
// neighbour entry moves to another node has its next packets reach a node
// that never saw it, which resets it (kube-proxy has no conntrack entry
// there). That is at most one connection per move, and only a reset: a
// timeout, a refusal or a second reset for one move is a failure. The
// resets taken as in flight are returned for the log.
func FailedBeyondMoves(samples []Sample, moves int) (Sample, []Sample, bool) {
	var inFlight []Sample
	for _, s := range samples {
		if s.Err == nil {
			continue
		}
		if !errors.Is(s.Err, syscall.ECONNRESET) || len(inFlight) >= moves {
			return s, inFlight, true
		}
		inFlight = append(inFlight, s)
	}
	return Sample{}, inFlight, false
}
