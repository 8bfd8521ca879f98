package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The faults of the chaos suite (issue 14): a lossy or jittery link, a
// controller replica to kill, the API server stopped and started again.
// Everything acts inside the lab's own namespaces and processes.

// Netem puts netem with args (as tc takes them: "loss", "5%", or "delay",
// "0ms", "50ms") on the node's eth0, replacing what was there: every frame
// the node sends goes through it, to the other nodes and to the client.
func (l *Lab) Netem(ctx context.Context, node string, args ...string) error {
	n, err := l.node(node)
	if err != nil {
		return err
	}
	return l.tc(ctx, n.Namespace, append([]string{"qdisc", "replace", "dev", "eth0", "root", "netem"}, args...)...)
}

// ClearNetem removes the node's netem again; a node without one is fine.
func (l *Lab) ClearNetem(ctx context.Context, node string) error {
	n, err := l.node(node)
	if err != nil {
		return err
	}
	err = l.tc(ctx, n.Namespace, "qdisc", "del", "dev", "eth0", "root")
	if err != nil && (strings.Contains(err.Error(), "No such file") || strings.Contains(err.Error(), "handle of zero")) {
		return nil // no qdisc of ours to delete
	}
	return err
}

func (l *Lab) tc(ctx context.Context, namespace string, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", namespace, "tc"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: tc %s: %w: %s", namespace, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// lossChain is the iptables chain of DropOutgoing in a node's namespace.
const lossChain = "HERALD-CHAOS-LOSS"

// DropOutgoing drops each IPv4 packet the node sends with probability p,
// with iptables' statistic match in the node's namespace: packet loss
// where the kernel has no netem (CONFIG_NET_SCH_NETEM). It covers
// memberlist's UDP and TCP and the node's HTTP answers, not ARP. p 0 takes
// the loss away again.
func (l *Lab) DropOutgoing(ctx context.Context, node string, p float64) error {
	n, err := l.node(node)
	if err != nil {
		return err
	}
	ipt := func(args ...string) error {
		out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Namespace, "iptables", "-w"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: iptables %s: %w: %s", node, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if ipt("-N", lossChain) == nil { // new: hook it in once
		if err := ipt("-A", "OUTPUT", "-j", lossChain); err != nil {
			return err
		}
	}
	if err := ipt("-F", lossChain); err != nil || p <= 0 {
		return err
	}
	return ipt("-A", lossChain, "-m", "statistic", "--mode", "random", "--probability", strconv.FormatFloat(p, 'f', 4, 64), "-j", "DROP")
}

// ProcessPID is the pid of a running lab process ("controller",
// "speaker-node1", ...): the herald process itself, as `ip netns exec`
// execs in place.
func (l *Lab) ProcessPID(name string) (int, error) {
	p, err := l.proc(name)
	if err != nil {
		return 0, err
	}
	if p.exited() {
		return 0, fmt.Errorf("%s has exited", name)
	}
	return p.cmd.Process.Pid, nil
}

// SpeakerPID is ProcessPID of the node's speaker.
func (l *Lab) SpeakerPID(node string) (int, error) { return l.ProcessPID(speakerName(node)) }

// KillProcess kills a lab process with SIGKILL and waits for it to be gone.
func (l *Lab) KillProcess(name string) error {
	p, err := l.proc(name)
	if err != nil {
		return err
	}
	p.kill()
	return nil
}

// StartControllerReplica runs one more `herald controller`, under name, with
// the lab's controller arguments: with Options.ControllerArgs turning
// leader election on, replicas that take over from one another.
func (l *Lab) StartControllerReplica(name string) error {
	if name == "controller" || strings.HasPrefix(name, "speaker-") {
		return fmt.Errorf("controller replica %q: the name is taken", name)
	}
	args := DefaultControllerArgs
	if l.opts.ControllerArgs != nil {
		args = l.opts.ControllerArgs
	}
	return l.startProcess(name, "", append([]string{l.opts.Herald}, args(l.kubeconfig)...))
}

// apiServerName is the lab process name of a restarted API server.
const apiServerName = "kube-apiserver"

// StoppedAPIServer is the lab's API server, stopped; Start brings it back.
type StoppedAPIServer struct {
	l    *Lab
	argv []string
}

// StopAPIServer stops the lab's kube-apiserver with SIGTERM, as an upgrade
// or a crash of the control plane would take it away, and waits for it to
// exit; after grace it kills it, and returns the stopped server with an
// error saying so. etcd keeps running.
func (l *Lab) StopAPIServer(grace time.Duration) (*StoppedAPIServer, error) {
	pid, argv, err := l.findAPIServer()
	if err != nil {
		return nil, err
	}
	if p, err := l.proc(apiServerName); err == nil && !p.exited() {
		// Started by StoppedAPIServer.Start: a process of the lab's own.
		return &StoppedAPIServer{l: l, argv: argv}, l.stop(apiServerName, grace)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return nil, fmt.Errorf("stop kube-apiserver (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(grace)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			for processAlive(pid) {
				time.Sleep(20 * time.Millisecond)
			}
			return &StoppedAPIServer{l: l, argv: argv}, fmt.Errorf("kube-apiserver (pid %d) did not exit within %s of SIGTERM; killed", pid, grace)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &StoppedAPIServer{l: l, argv: argv}, nil
}

// Start runs the API server again with the same command line, certificates
// and port, as a lab process, and waits until it is ready.
func (s *StoppedAPIServer) Start(ctx context.Context) error {
	l := s.l
	if err := l.startProcess(apiServerName, "", s.argv); err != nil {
		return err
	}
	for {
		body, err := l.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && strings.TrimSpace(string(body)) == "ok" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready after a restart: %w (last: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// findAPIServer finds envtest's kube-apiserver of this lab by its
// certificate folder, inside the lab's working folder.
func (l *Lab) findAPIServer() (int, []string, error) {
	certDir := filepath.Join(l.dir, "apiserver")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, nil, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(argv[0]) == "kube-apiserver" && strings.Contains(string(b), certDir) {
			return pid, argv, nil
		}
	}
	return 0, nil, fmt.Errorf("no kube-apiserver of lab %s running", l.id)
}

func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie has exited; its parent has yet to reap it.
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || !strings.HasPrefix(strings.TrimSpace(string(b[i+1:])), "Z")
}

// EventReasons counts the Events of every namespace by reason, those last
// seen at or after since (at the API server's one-second resolution, so
// since is rounded down), adding up each Event's repeats.
func (l *Lab) EventReasons(ctx context.Context, since time.Time) (map[string]int, error) {
	list, err := l.client.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list Events: %w", err)
	}
	since = since.Truncate(time.Second)
	out := map[string]int{}
	for _, e := range list.Items {
		last := e.LastTimestamp.Time
		if last.IsZero() {
			last = e.EventTime.Time
		}
		if e.Series != nil && e.Series.LastObservedTime.After(last) {
			last = e.Series.LastObservedTime.Time
		}
		if last.IsZero() {
			last = e.CreationTimestamp.Time
		}
		if last.Before(since) {
			continue
		}
		n := max(int(e.Count), 1)
		if e.Series != nil {
			n = max(int(e.Series.Count), n)
		}
		out[e.Reason] += n
	}
	return out, nil
}
