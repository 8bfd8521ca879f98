package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports, and reading it properly
// (sysconf) would need cgo.
const clockTicks = 100

// cpuSeconds returns a process's user+system CPU time.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// statFields returns the fields of /proc/PID/stat after the command name,
// which may itself hold spaces and parentheses: fields[0] is the state,
// fields[1] the parent PID, fields[11] utime and fields[12] stime.
func statFields(stat string) ([]string, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return nil, fmt.Errorf("malformed stat %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return nil, fmt.Errorf("stat has %d fields after the name, want at least 13", len(f))
	}
	return f, nil
}

func parseStatCPU(stat string) (float64, error) {
	f, err := statFields(stat)
	if err != nil {
		return 0, err
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat utime %q stime %q: not numbers", f[11], f[12])
	}
	return float64(u+s) / clockTicks, nil
}

// memoryBytes returns a field of /proc/PID/status given in kB (VmHWM is the
// peak resident set, VmRSS the current one).
func memoryBytes(pid int, field string) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusKB(string(b), field)
}

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

// childByExe finds a child process of this one running the named binary:
// envtest starts kube-apiserver and etcd with exec, so they are our
// children, which tells them from another run's control plane on the same
// machine using the same binaries.
func childByExe(name string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f, err := statFields(string(b))
		if err != nil || f[1] != self {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err == nil && filepath.Base(exe) == name {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no child process runs %s", name)
}

// promSample is one line of Prometheus text exposition.
type promSample struct {
	name   string
	labels string // the text between the braces, as written
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

// metrics is a scrape of the controller's /metrics.
type metrics []promSample

// sum adds the samples of a metric whose labels contain every given
// `key="value"` pair.
func (m metrics) sum(name string, labels ...string) float64 {
	var t float64
	for _, s := range m {
		if s.name != name {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(s.labels, l) {
				match = false
				break
			}
		}
		if match {
			t += s.value
		}
	}
	return t
}

func scrape(ctx context.Context, url string) (metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	s, err := parseProm(resp.Body)
	return metrics(s), err
}
