package lab

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// What real nodes leave outside the lab's namespaces and folder: cgroups
// under every hierarchy's root, and kernel settings the kubelet rewrites.
// Both are undone by Close and, after a crash, by Down.

// kernelTunables are the global sysctls a kubelet sets at start.
var kernelTunables = []string{
	"vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
	"kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes",
}

// tunables is the record, shared by every cluster lab under one state
// folder, of the kernel settings from before the first of them started a
// kubelet. Labs run side by side (the tests do), and each one's kubelets
// rewrite the same global settings, so only the last lab to go may put
// back the values, and only the first one's reading is the original.
type tunables struct {
	Original map[string]string `json:"original"`
	Holders  []string          `json:"holders"` // the labs' folders
}

const (
	tunablesFile = "kernel-tunables" // not *.json: Down reads those as labs' state
	tunablesLock = "kernel-tunables.lock"
)

func sysctlPath(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

// withTunables runs fn on the shared record under an exclusive lock and
// saves what fn leaves (removing the file when no lab holds it).
func withTunables(stateDir string, fn func(t *tunables) error) error {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(stateDir, tunablesLock), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	path := filepath.Join(stateDir, tunablesFile)
	var t tunables
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &t); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := fn(&t); err != nil {
		return err
	}
	if len(t.Holders) == 0 {
		return removeIfExists(path)
	}
	b, err = json.Marshal(t)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// saveKernelTunables joins the shared record before any kubelet of this lab
// runs (recording the settings if it is the first), and leaves it on Close.
func (l *Lab) saveKernelTunables() error {
	err := withTunables(l.opts.StateDir, func(t *tunables) error {
		if len(t.Holders) == 0 {
			t.Original = map[string]string{}
			for _, k := range kernelTunables {
				b, err := os.ReadFile(sysctlPath(k))
				if err != nil {
					return fmt.Errorf("sysctl %s: %w", k, err)
				}
				t.Original[k] = strings.TrimSpace(string(b))
			}
		}
		t.Holders = append(t.Holders, l.dir)
		return nil
	})
	if err != nil {
		return err
	}
	l.onClose(func() error { return releaseKernelTunables(l.opts.StateDir, l.dir) })
	return nil
}

// releaseKernelTunables drops lab dir from the shared record, and holders
// whose folder is gone (Down removed them); the last one out writes the
// original settings back.
func releaseKernelTunables(stateDir, dir string) error {
	return withTunables(stateDir, func(t *tunables) error {
		t.Holders = slices.DeleteFunc(t.Holders, func(h string) bool {
			_, err := os.Stat(h)
			return h == dir || errors.Is(err, fs.ErrNotExist)
		})
		if len(t.Holders) > 0 {
			return nil
		}
		var errs []error
		for k, v := range t.Original {
			cur, err := os.ReadFile(sysctlPath(k))
			if err == nil && strings.TrimSpace(string(cur)) == v {
				continue
			}
			if err := os.WriteFile(sysctlPath(k), []byte(v), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", k, v, err))
			}
		}
		return errors.Join(errs...)
	})
}

// cgroupMounts lists the mount points of the cgroup hierarchies.
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "... mountpoint options - fstype source superoptions"
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, fsFields := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(fsFields) < 1 {
			continue
		}
		if fsFields[0] == "cgroup" || fsFields[0] == "cgroup2" {
			out = append(out, fields[4])
		}
	}
	return out, sc.Err()
}

// makeCgroups creates cgroup name at the root of every hierarchy, as the
// kubelet's cgroupRoot must exist beforehand; cpuset's needs its cpus and
// mems before anything can join it.
func (l *Lab) makeCgroups(name string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	l.onClose(func() error { return killCgroup(name) })
	for _, m := range mounts {
		dir := filepath.Join(m, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("cgroup %s: %w", dir, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			b, err := os.ReadFile(filepath.Join(m, f))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				return fmt.Errorf("cgroup %s: %w", filepath.Join(dir, f), err)
			}
		}
	}
	return nil
}

// killCgroup kills every process in cgroup name (and below) in every
// hierarchy, and removes the cgroups, deepest first.
func killCgroup(name string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var dirs []string
	for _, m := range mounts {
		root := filepath.Join(m, name)
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	// Deeper paths first: a cgroup goes only once its children have.
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	deadline := time.Now().Add(10 * time.Second)
	for {
		live := 0
		for _, d := range dirs {
			for _, pid := range cgroupProcs(d) {
				if syscall.Kill(pid, syscall.SIGKILL) == nil {
					live++
				}
			}
		}
		if live == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var errs []error
	for _, d := range dirs {
		if err := removeCgroupDir(d, deadline); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeCgroupDir retries for a moment: a killed process leaves its cgroup
// only once the kernel has finished tearing it down.
func removeCgroupDir(d string, deadline time.Time) error {
	for {
		err := syscall.Rmdir(d)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cgroupProcs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// removeNodeLeftovers is Down's part for real nodes: the cgroups of every
// node of lab id, and its hold on the kernel settings.
func removeNodeLeftovers(stateDir, id, dir string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, m := range mounts {
		found, _ := filepath.Glob(filepath.Join(m, "herald-lab-"+id+"-*"))
		for _, f := range found {
			names[filepath.Base(f)] = true
		}
	}
	var errs []error
	for n := range names {
		errs = append(errs, killCgroup(n))
	}
	if dir != "" {
		errs = append(errs, releaseKernelTunables(stateDir, dir))
	}
	return errors.Join(errs...)
}
