package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// process is one herald process of the lab.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
	err  error         // its exit, once done is closed
	// stopped is set when the lab ends it, so its exit is no failure.
	stopped atomic.Bool
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *process) kill() {
	p.stopped.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// LogPath is the log file of a lab process: "controller" or "speaker-nodeN".
func (l *Lab) LogPath(name string) string { return filepath.Join(l.logDir, name+".log") }

// LogTail is the end of a process's log, at most n lines.
func (l *Lab) LogTail(name string, n int) string {
	b, err := os.ReadFile(l.LogPath(name))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startProcess runs argv, inside network namespace ns unless ns is empty,
// logging to LogPath(name). `ip netns exec` also gives it a /sys of that
// namespace, where the speaker looks at interfaces, and execs in place, so
// the pid is the herald process itself.
func (l *Lab) startProcess(name, ns string, argv []string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.procs[name]; ok && !old.exited() {
		return fmt.Errorf("%s is already running", name)
	}
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	logf, err := os.OpenFile(l.LogPath(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy
	fmt.Fprintf(logf, "# %s: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A KUBECONFIG of the caller's must never lead a lab process to a real cluster.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+l.kubeconfig)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group, so a Ctrl-C in the terminal reaches the
		// lab only, which then stops everything in order; and killed with
		// the lab should the lab die first.
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.procs[name] = p
	return nil
}

func (l *Lab) proc(name string) (*process, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.procs[name]
	if !ok {
		return nil, fmt.Errorf("%s was never started", name)
	}
	return p, nil
}

func speakerName(node string) string { return "speaker-" + node }

// StartController runs herald controller in the root namespace.
func (l *Lab) StartController() error {
	args := DefaultControllerArgs
	if l.opts.ControllerArgs != nil {
		args = l.opts.ControllerArgs
	}
	return l.startProcess("controller", "", append([]string{l.opts.Herald}, args(l.kubeconfig)...))
}

// StartSpeaker runs herald speaker in the node's namespace, as that node.
func (l *Lab) StartSpeaker(node string) error {
	n, err := l.node(node)
	if err != nil {
		return err
	}
	args := DefaultSpeakerArgs
	if l.opts.SpeakerArgs != nil {
		args = l.opts.SpeakerArgs
	}
	return l.startProcess(speakerName(node), n.Namespace, append([]string{l.opts.Herald}, args(l.kubeconfig, n.Node)...))
}

// KillSpeaker kills the node's speaker with SIGKILL, as a crash or a power
// cut would, and waits for it to be gone.
func (l *Lab) KillSpeaker(node string) error {
	p, err := l.proc(speakerName(node))
	if err != nil {
		return err
	}
	p.kill()
	return nil
}

// StopSpeaker sends SIGTERM, as Kubernetes does when it deletes the pod, and
// waits up to grace for the exit before killing it.
func (l *Lab) StopSpeaker(node string, grace time.Duration) error {
	return l.stop(speakerName(node), grace)
}

// StopController is StopSpeaker for the controller.
func (l *Lab) StopController(grace time.Duration) error { return l.stop("controller", grace) }

func (l *Lab) stop(name string, grace time.Duration) error {
	p, err := l.proc(name)
	if err != nil {
		return err
	}
	if p.exited() {
		return nil
	}
	p.stopped.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		p.kill()
		return fmt.Errorf("%s did not exit within %s of SIGTERM; killed", name, grace)
	}
}

// CheckProcesses returns an error naming every lab process that has exited
// without being asked to, with the end of its log.
func (l *Lab) CheckProcesses() error {
	l.mu.Lock()
	names := make([]string, 0, len(l.procs))
	for n := range l.procs {
		names = append(names, n)
	}
	l.mu.Unlock()
	slices.Sort(names)
	var errs []error
	for _, n := range names {
		p, _ := l.proc(n)
		if !p.exited() || p.stopped.Load() {
			continue // running, or stopped by the lab
		}
		errs = append(errs, fmt.Errorf("%s exited (%v); end of %s:\n%s", n, p.err, l.LogPath(n), indent(l.LogTail(n, 15))))
	}
	return errors.Join(errs...)
}

func indent(s string) string {
	if s == "" {
		return "    (empty)"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// SpeakerMetricsPort is where DefaultSpeakerArgs' speakers serve /metrics,
// on every address of their node.
const SpeakerMetricsPort = 7472

// WaitMembers waits until every node's speaker counts n members in its
// memberlist: a speaker started again is back in every election.
func (l *Lab) WaitMembers(ctx context.Context, n int) error {
	want := fmt.Sprintf("herald_speaker_memberlist_members %d\n", n)
	c := l.HTTPClient(5 * time.Second)
	for _, node := range l.Nodes() {
		u := "http://" + net.JoinHostPort(node.IPv4.String(), strconv.Itoa(SpeakerMetricsPort)) + "/metrics"
		for {
			page, err := getText(ctx, c, u)
			if err == nil && strings.Contains(page, want) {
				break
			}
			if serr := Sleep(ctx, 200*time.Millisecond); serr != nil {
				return fmt.Errorf("%s's speaker does not count %d members (%v): %w", node.Name, n, err, serr)
			}
		}
	}
	return nil
}
