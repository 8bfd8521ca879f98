package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// labState is a lab's state file: enough for Down to find and remove
// everything the lab made, after the lab itself is gone.
type labState struct {
	ID  string `json:"id"`
	PID int    `json:"pid"`
	// PIDStart is the lab process's start time (clock ticks since boot), so
	// that a recycled pid is not taken for the lab.
	PIDStart   string    `json:"pidStart"`
	Dir        string    `json:"dir"`
	Namespaces []string  `json:"namespaces"`
	Created    time.Time `json:"created"`
}

func writeState(path string, st labState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// processStart is field 22 of /proc/<pid>/stat, the start time in ticks.
func processStart(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return f[19], nil // fields 3.. follow the name; 22 is the 20th of them
}

// alive reports whether the lab's own process still runs.
func (st labState) alive() bool {
	start, err := processStart(st.PID)
	return err == nil && start == st.PIDStart
}

// namespaceRE matches the names labs give their namespaces.
var namespaceRE = regexp.MustCompile(`^hl([0-9a-f]{6})-(lan|client|router|remote|node[0-9])$`)

// DownReport says what Down did.
type DownReport struct {
	Labs       []string // ids of the labs removed
	Live       []string // ids of running labs left alone
	Namespaces []string // namespaces deleted
	Killed     []int    // pids killed
}

// Down removes what labs left behind: for every state file in stateDir
// whose lab process is gone (or every one, with all), it kills the lab's
// processes (those inside its namespaces, and those whose command line
// names its working folder: etcd, kube-apiserver, herald), deletes its
// namespaces, folder and state file. Namespaces named like a lab's that no
// state file accounts for are deleted too, unless they belong to a running
// lab. Running labs are left alone unless all is set.
func Down(ctx context.Context, stateDir string, all bool) (DownReport, error) {
	var rep DownReport
	var errs []error
	files, _ := filepath.Glob(filepath.Join(stateDir, "*.json"))
	keep := map[string]bool{} // ids of live labs
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var st labState
		if err := json.Unmarshal(b, &st); err != nil || st.ID == "" {
			errs = append(errs, fmt.Errorf("%s: not a lab state file: %v", f, err))
			continue
		}
		if st.alive() && !all {
			keep[st.ID] = true
			rep.Live = append(rep.Live, st.ID)
			continue
		}
		if st.PID == os.Getpid() {
			errs = append(errs, fmt.Errorf("lab %s belongs to this process: Close it instead", st.ID))
			keep[st.ID] = true
			continue
		}
		if st.alive() {
			if err := syscall.Kill(st.PID, syscall.SIGKILL); err == nil {
				rep.Killed = append(rep.Killed, st.PID)
			}
		}
		if err := removeLab(ctx, st, &rep); err != nil {
			errs = append(errs, fmt.Errorf("lab %s: %w", st.ID, err))
			continue
		}
		if err := removeIfExists(f); err != nil {
			errs = append(errs, err)
		}
		rep.Labs = append(rep.Labs, st.ID)
	}

	// Namespaces with no state file: from a lab whose state was lost.
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		m := namespaceRE.FindStringSubmatch(e.Name())
		if m == nil || keep[m[1]] {
			continue
		}
		rep.Killed = append(rep.Killed, killInNamespace(e.Name())...)
		if err := deleteNamespace(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Namespaces = append(rep.Namespaces, e.Name())
	}
	return rep, errors.Join(errs...)
}

func removeLab(ctx context.Context, st labState, rep *DownReport) error {
	var errs []error
	for _, ns := range st.Namespaces {
		rep.Killed = append(rep.Killed, killInNamespace(ns)...)
	}
	if st.Dir != "" {
		rep.Killed = append(rep.Killed, killMentioning(st.Dir+string(filepath.Separator))...)
	}
	if err := removeNodeLeftovers(filepath.Dir(st.Dir), st.ID, st.Dir); err != nil {
		errs = append(errs, err)
	}
	for _, ns := range st.Namespaces {
		if _, err := os.Stat(namespacePath(ns)); err != nil {
			continue
		}
		if err := deleteNamespace(ns); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Namespaces = append(rep.Namespaces, ns)
	}
	if st.Dir != "" && ctx.Err() == nil {
		if err := os.RemoveAll(st.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// pids lists the running processes.
func pids() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid != os.Getpid() {
			out = append(out, pid)
		}
	}
	return out
}

// killInNamespace kills every process inside the named network namespace
// and returns their pids. They can only be the lab's: nothing else enters
// a lab's namespaces.
func killInNamespace(name string) []int {
	var st syscall.Stat_t
	if err := syscall.Stat(namespacePath(name), &st); err != nil {
		return nil
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	var killed []int
	for _, pid := range pids() {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err == nil && link == want && syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	waitGone(killed)
	return killed
}

// killMentioning kills every process whose command line contains s (a
// lab's unique working folder) and returns their pids.
func killMentioning(s string) []int {
	var killed []int
	for _, pid := range pids() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && bytes.Contains(b, []byte(s)) && syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	waitGone(killed)
	return killed
}

// waitGone waits briefly for killed processes to disappear, so that their
// namespaces and files are free when we go on.
func waitGone(pids []int) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		pids = slices.DeleteFunc(pids, func(pid int) bool {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			// Gone, or a zombie waiting for a parent that is not us.
			return err != nil || bytes.Contains(b, []byte(") Z "))
		})
		if len(pids) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
