package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netns"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat: 100 on
// every Linux architecture Go supports (reading it needs sysconf, so cgo).
const clockTicks = 100

// speakerPID finds the pid of node's speaker in this lab. The lab starts it
// through `ip netns exec`, which execs in place, so the herald process
// itself carries the pid; until that exec its command line starts with ip
// and does not match. The kubeconfig is unique to the lab, so another lab's
// speakers never match.
func speakerPID(herald, kubeconfig, node string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var found []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		if isSpeaker(b, herald, kubeconfig, node) {
			found = append(found, pid)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("no running speaker for %s", node)
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("%d speakers for %s: pids %v", len(found), node, found)
}

// isSpeaker reports whether a NUL-separated command line is `herald speaker`
// of the given binary, kubeconfig and node.
func isSpeaker(cmdline []byte, herald, kubeconfig, node string) bool {
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(args) < 2 || args[0] != herald || args[1] != "speaker" {
		return false
	}
	i := slices.Index(args, "--node-name")
	return i > 0 && i+1 < len(args) && args[i+1] == node && slices.Contains(args, kubeconfig)
}

// cpuSeconds is a process's user+system CPU time.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) of /proc/PID/stat.
// The command name (field 2) is in parentheses and may hold spaces.
func parseStatCPU(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("stat has %d fields after the name, want at least 13", len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat utime %q stime %q: not numbers", f[11], f[12])
	}
	return float64(u+s) / clockTicks, nil
}

// memory is a process's resident set: now (VmRSS), at its peak (VmHWM),
// and now split into anonymous memory (heap, stacks) and pages of files
// (mostly the binary's own code and data).
type memory struct{ rss, hwm, anon, file uint64 }

func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	for _, f := range []struct {
		name string
		to   *uint64
	}{{"VmRSS", &m.rss}, {"VmHWM", &m.hwm}, {"RssAnon", &m.anon}, {"RssFile", &m.file}} {
		if *f.to, err = parseStatusKB(string(b), f.name); err != nil {
			return m, err
		}
	}
	return m, nil
}

// arpSockets counts the packet sockets bound to ARP in pid's network
// namespace. In a node namespace only the speaker opens them, and it does
// so for an interface once it first announces an IPv4 address there.
func arpSockets(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/packet", pid))
	if err != nil {
		return 0, err
	}
	return countARPSockets(string(b)), nil
}

func countARPSockets(table string) int {
	n := 0
	lines := strings.Split(table, "\n")
	for _, line := range lines[min(1, len(lines)):] { // after the header
		f := strings.Fields(line)
		if len(f) > 3 {
			if proto, err := strconv.ParseUint(f[3], 16, 16); err == nil && proto == 0x0806 {
				n++
			}
		}
	}
	return n
}

// parseStatusKB reads a field of /proc/PID/status given in kB, in bytes.
func parseStatusKB(status, field string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		num, _ := strings.CutSuffix(strings.TrimSpace(v), " kB")
		kb, err := strconv.ParseUint(strings.TrimSpace(num), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s %q: %w", field, v, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no %s in status", field)
}

// inNamespace runs fn on an OS thread switched into the named network
// namespace; sockets fn opens stay there. If switching back fails the
// goroutine ends still locked, and Go discards the thread rather than let
// other code run in the wrong namespace.
func inNamespace(name string, fn func() error) error {
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave namespace %s: %w", name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// promSample is one line of Prometheus text exposition.
type promSample struct {
	name   string
	labels string // between the braces, as written
	value  float64
}

func parseProm(r io.Reader) ([]promSample, error) {
	var out []promSample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		var s promSample
		rest := line
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("malformed metric line %q", line)
			}
			s.name, s.labels, rest = line[:i], line[i+1:j], line[j+1:]
		} else {
			name, after, ok := strings.Cut(line, " ")
			if !ok {
				return nil, fmt.Errorf("malformed metric line %q", line)
			}
			s.name, rest = name, after
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("metric line %q has no value", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", line, err)
		}
		s.value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

// metrics is one scrape of a speaker's /metrics.
type metrics []promSample

// value is the sample of name whose labels hold every given key="value".
func (m metrics) value(name string, labels ...string) float64 {
	var t float64
	for _, s := range m {
		if s.name == name && hasLabels(s.labels, labels) {
			t += s.value
		}
	}
	return t
}

// count is the number of samples of name with a non-zero value whose labels
// pass keep.
func (m metrics) count(name string, keep func(labels string) bool) int {
	n := 0
	for _, s := range m {
		if s.name == name && s.value != 0 && (keep == nil || keep(s.labels)) {
			n++
		}
	}
	return n
}

func hasLabels(labels string, want []string) bool {
	for _, w := range want {
		if !strings.Contains(labels, w) {
			return false
		}
	}
	return true
}

// metricsPort is where the lab's speakers serve /metrics, each inside its
// own node namespace (the speaker's default --metrics-addr).
const metricsPort = "7472"

// scrapeSpeaker reads a speaker's metrics from inside its namespace.
func scrapeSpeaker(ctx context.Context, namespace string) (metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := &http.Client{Transport: &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var conn net.Conn
			err := inNamespace(namespace, func() (err error) {
				var d net.Dialer
				conn, err = d.DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+metricsPort+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics in %s: %w", namespace, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics in %s: %s", namespace, resp.Status)
	}
	s, err := parseProm(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("metrics in %s: %w", namespace, err)
	}
	return metrics(s), nil
}

// logSection is the part of a log file between two offsets, at most max
// bytes from its end, for showing what a process did during one run.
func logSection(path string, from, to int64, max int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if to <= from {
		return ""
	}
	cut := to-from > int64(max)
	if cut {
		from = to - int64(max)
	}
	b := make([]byte, to-from)
	n, _ := f.ReadAt(b, from)
	b = b[:n]
	if i := bytes.IndexByte(b, '\n'); i >= 0 && cut {
		b = b[i+1:] // start at a whole line
	}
	return string(b)
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}
