package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// cpuPeriodMicros is the CFS period of a CPU limit: quotas are a share of it.
const cpuPeriodMicros = 100_000

// CPULimit is a speaker held to a share of one core in a cgroup of its own.
type CPULimit struct {
	pid    int
	origin string // the cgroup the speaker was in
	dir    string // the limit's cgroup
}

// LimitSpeakerCPU moves the node's speaker into a new cgroup that may use
// share of one core (0.05 is 5%), with cgroup v2's cpu.max where the cpu
// controller is on the unified hierarchy, else v1's cfs quota. Release
// moves it back and removes the cgroup; Close does too. The cgroup is
// named like the real nodes' (herald-lab-<id>-...), so lab-down removes it
// after a killed run.
func (l *Lab) LimitSpeakerCPU(node string, share float64) (*CPULimit, error) {
	if share <= 0 || share > 1 {
		return nil, fmt.Errorf("CPU share %v: want more than 0, at most 1", share)
	}
	pid, err := l.SpeakerPID(node)
	if err != nil {
		return nil, err
	}
	root, v2, err := cpuHierarchy()
	if err != nil {
		return nil, err
	}
	origin, err := cgroupOf(pid, v2)
	if err != nil {
		return nil, err
	}
	if v2 {
		// A child gets the cpu controller only if its parent hands it down.
		_ = os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("+cpu"), 0o644)
	}
	c := &CPULimit{pid: pid, origin: filepath.Join(root, origin), dir: filepath.Join(root, l.nodeCgroup(node)+"-cpu")}
	if err := os.Mkdir(c.dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("cgroup %s: %w", c.dir, err)
	}
	l.onClose(func() error { return killCgroup(filepath.Base(c.dir)) })
	quota := int(share * cpuPeriodMicros)
	var writes [][2]string
	if v2 {
		writes = [][2]string{{"cpu.max", fmt.Sprintf("%d %d", quota, cpuPeriodMicros)}}
	} else {
		writes = [][2]string{{"cpu.cfs_period_us", strconv.Itoa(cpuPeriodMicros)}, {"cpu.cfs_quota_us", strconv.Itoa(quota)}}
	}
	writes = append(writes, [2]string{"cgroup.procs", strconv.Itoa(pid)})
	for _, w := range writes {
		if err := os.WriteFile(filepath.Join(c.dir, w[0]), []byte(w[1]), 0o644); err != nil {
			_ = c.Release()
			return nil, fmt.Errorf("cgroup %s: %w", filepath.Join(c.dir, w[0]), err)
		}
	}
	return c, nil
}

// Throttled reads how often and for how long the cgroup was held back
// (cpu.stat's nr_throttled and throttled time, in µs).
func (c *CPULimit) Throttled() (periods, micros int64, err error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "cpu.stat"))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "nr_throttled":
			periods = n
		case "throttled_usec": // v2
			micros = n
		case "throttled_time": // v1, in ns
			micros = n / 1000
		}
	}
	return periods, micros, sc.Err()
}

// Release moves the speaker back to the cgroup it was in and removes the
// limit's cgroup.
func (c *CPULimit) Release() error {
	if err := os.WriteFile(filepath.Join(c.origin, "cgroup.procs"), []byte(strconv.Itoa(c.pid)), 0o644); err != nil &&
		!errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("move pid %d out of %s: %w", c.pid, c.dir, err)
	}
	if err := syscall.Rmdir(c.dir); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("remove cgroup %s: %w", c.dir, err)
	}
	return nil
}

// cpuHierarchy finds where the cpu controller is mounted: the unified
// (v2) hierarchy when it offers cpu, else the v1 hierarchy with the cpu
// option.
func cpuHierarchy() (root string, v2 bool, err error) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "", false, err
	}
	var v1 string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		switch f[2] {
		case "cgroup2":
			ctl, err := os.ReadFile(filepath.Join(f[1], "cgroup.controllers"))
			if err == nil && slices.Contains(strings.Fields(string(ctl)), "cpu") {
				return f[1], true, nil
			}
		case "cgroup":
			if slices.Contains(strings.Split(f[3], ","), "cpu") {
				v1 = f[1]
			}
		}
	}
	if v1 == "" {
		return "", false, errors.New("no cgroup hierarchy with the cpu controller is mounted")
	}
	return v1, false, nil
}

// cgroupOf is the path of pid's cgroup in the cpu hierarchy, relative to
// its mount point, from /proc/PID/cgroup ("0::/path" on v2, "N:cpu,...:/path"
// on v1).
func cgroupOf(pid int, v2 bool) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	return parseCgroupOf(string(b), v2)
}

func parseCgroupOf(procCgroup string, v2 bool) (string, error) {
	for _, line := range strings.Split(procCgroup, "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if v2 && f[0] == "0" && f[1] == "" || !v2 && slices.Contains(strings.Split(f[1], ","), "cpu") {
			return f[2], nil
		}
	}
	return "", fmt.Errorf("no cpu cgroup in %q", procCgroup)
}
