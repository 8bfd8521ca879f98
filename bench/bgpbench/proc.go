package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// speakerPID finds the pid of node's speaker in this lab. The lab starts it
// through `ip netns exec`, which execs in place, so the herald process
// itself carries the pid. The kubeconfig is unique to the lab, so another
// lab's speakers never match.
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

// memory is a process's resident set now (VmRSS) and at its peak (VmHWM).
type memory struct{ rss, hwm uint64 }

type nodeMemory struct {
	node string
	mem  memory
}

func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	if m.rss, err = parseStatusKB(string(b), "VmRSS"); err != nil {
		return m, err
	}
	m.hwm, err = parseStatusKB(string(b), "VmHWM")
	return m, err
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

// speakerMemory reads every speaker's memory.
func (b *bench) speakerMemory() ([]nodeMemory, error) {
	var out []nodeMemory
	for _, n := range b.lab.Nodes() {
		pid, err := speakerPID(b.herald, b.lab.Kubeconfig(), n.Name)
		if err != nil {
			return nil, err
		}
		m, err := readMemory(pid)
		if err != nil {
			return nil, fmt.Errorf("speaker of %s: %w", n.Name, err)
		}
		out = append(out, nodeMemory{node: n.Name, mem: m})
	}
	return out, nil
}
