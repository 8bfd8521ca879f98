package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netns"

	"github.com/herald-lb/herald/bench/procstat"
	"github.com/herald-lb/herald/bench/promtext"
	"github.com/herald-lb/herald/internal/lab"
)

// memory is a process's resident set: now (VmRSS), at its peak (VmHWM),
// and now split into anonymous memory (heap, stacks) and pages of files
// (mostly the binary's own code and data).
type memory struct{ rss, hwm, anon, file uint64 }

func readMemory(pid int) (memory, error) {
	v, err := procstat.StatusBytes(pid, "VmRSS", "VmHWM", "RssAnon", "RssFile")
	if err != nil {
		return memory{}, err
	}
	return memory{rss: v[0], hwm: v[1], anon: v[2], file: v[3]}, nil
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

// scrapeSpeaker reads a speaker's metrics from inside its namespace.
func scrapeSpeaker(ctx context.Context, namespace string) (promtext.Metrics, error) {
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(lab.SpeakerMetricsPort)+"/metrics", nil)
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
	m, err := promtext.Parse(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("metrics in %s: %w", namespace, err)
	}
	return m, nil
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
