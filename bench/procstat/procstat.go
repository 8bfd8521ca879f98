// Package procstat reads what the benchmarks measure of a running process
// from /proc: CPU time, resident memory, and which process is which.
package procstat

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports, and reading it properly
// (sysconf) would need cgo.
const clockTicks = 100

// CPUSeconds returns a process's user+system CPU time.
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return ParseStatCPU(string(b))
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

// ParseStatCPU reads utime and stime (fields 14 and 15) of /proc/PID/stat,
// in seconds.
func ParseStatCPU(stat string) (float64, error) {
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

// StatusBytes reads fields of /proc/PID/status given in kB (VmHWM is the
// peak resident set, VmRSS the current one), in bytes and in the order
// asked. The file is read once, so the values are of one moment.
func StatusBytes(pid int, fields ...string) ([]uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := make([]uint64, len(fields))
	for i, f := range fields {
		if out[i], err = ParseStatusKB(string(b), f); err != nil {
			return out, err
		}
	}
	return out, nil
}

// ParseStatusKB reads a field of /proc/PID/status given in kB, in bytes.
func ParseStatusKB(status, field string) (uint64, error) {
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

// ChildByExe finds a child process of this one running the named binary:
// envtest starts kube-apiserver and etcd with exec, so they are our
// children, which tells them from another run's control plane on the same
// machine using the same binaries.
func ChildByExe(name string) (int, error) {
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

// SpeakerPID finds the pid of node's speaker in a lab. The lab starts it
// through `ip netns exec`, which execs in place, so the herald process
// itself carries the pid; until that exec its command line starts with ip
// and does not match. The kubeconfig is unique to the lab, so another lab's
// speakers never match.
func SpeakerPID(herald, kubeconfig, node string) (int, error) {
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
		if IsSpeaker(b, herald, kubeconfig, node) {
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

// IsSpeaker reports whether a NUL-separated command line is `herald speaker`
// of the given binary, kubeconfig and node.
func IsSpeaker(cmdline []byte, herald, kubeconfig, node string) bool {
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(args) < 2 || args[0] != herald || args[1] != "speaker" {
		return false
	}
	i := slices.Index(args, "--node-name")
	return i > 0 && i+1 < len(args) && args[i+1] == node && slices.Contains(args, kubeconfig)
}
