// Command controllerbench measures Herald's controller end to end: the
// herald binary runs as its own process against a real kube-apiserver and
// etcd (controller-runtime's envtest, binaries from hack/testenv.sh), and
// the benchmark creates LoadBalancer Services and watches for their
// addresses. It writes bench/results/controller.{json,md}.
//
// Two scenarios, in one run:
//
//   - burst: -services Services (-ipv6 of them single-stack IPv6, the rest
//     IPv4) created by -creators parallel creators, timed from the first
//     create until every one has status.loadBalancer.ingress, with the
//     controller's CPU, peak RSS and API requests and the API server's and
//     etcd's CPU over that window;
//   - sequential: with those in place, -sequential more created one at a
//     time, each timed from its create to the watch event carrying its
//     address.
//
// Run from the repository root after `make build`:
//
//	go run ./bench/controllerbench
//	go run ./bench/controllerbench -services 500 -ipv6 100 -sequential 20 -out /tmp/cb   # smoke run
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/herald-lb/herald/bench/labrun"
	"github.com/herald-lb/herald/bench/procstat"
	"github.com/herald-lb/herald/bench/report"
	"github.com/herald-lb/herald/internal/kubeconfig"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

type options struct {
	services, ipv6, namespaces, creators, sequential int
	burstTimeout                                     time.Duration
	herald, assets, repo, out                        string
	controllerArgs                                   stringList
}

func main() {
	var o options
	flag.IntVar(&o.services, "services", 10_000, "Services created in the burst")
	flag.IntVar(&o.ipv6, "ipv6", 2_000, "how many of the burst's Services are single-stack IPv6 (the rest are IPv4)")
	flag.IntVar(&o.namespaces, "namespaces", 4, "namespaces the burst is spread over")
	flag.IntVar(&o.creators, "creators", 32, "parallel creators in the burst")
	flag.IntVar(&o.sequential, "sequential", 200, "Services created one at a time after the burst")
	flag.DurationVar(&o.burstTimeout, "burst-timeout", 10*time.Minute, "give up on the burst after this long and report how far it got")
	flag.StringVar(&o.herald, "herald", "bin/herald", "herald binary (make build)")
	flag.StringVar(&o.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "kube-apiserver/etcd folder; empty runs hack/testenv.sh")
	flag.StringVar(&o.repo, "repo", ".", "repository root (for config/crd/bases and hack/testenv.sh)")
	flag.StringVar(&o.out, "out", "bench/results", "directory for controller.json and controller.md")
	flag.Var(&o.controllerArgs, "controller-arg", "extra argument for `herald controller` (repeatable)")
	flag.Parse()

	// Ctrl-C cancels the context; every wait watches it, and run's deferred
	// cleanup stops the controller and the control plane.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		slog.Error("controllerbench failed", "err", err)
		os.Exit(1)
	}
}

func (o options) validate() error {
	switch {
	case o.services < 1 || o.ipv6 < 0 || o.ipv6 > o.services:
		return fmt.Errorf("-services %d -ipv6 %d: want 1 <= services and 0 <= ipv6 <= services", o.services, o.ipv6)
	case o.namespaces < 1 || o.creators < 1 || o.sequential < 0:
		return errors.New("-namespaces and -creators must be positive, -sequential not negative")
	}
	return nil
}

func run(ctx context.Context, o options) error {
	if err := o.validate(); err != nil {
		return err
	}
	herald, assets, err := labrun.Binaries(ctx, o.herald, o.assets, o.repo)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "controllerbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	load, _ := os.ReadFile("/proc/loadavg")
	slog.Info("starting control plane", "assets", assets, "loadavg", strings.TrimSpace(string(load)))
	cp, err := startControlPlane(assets, labrun.CRDs(o.repo), tmp)
	if err != nil {
		return err
	}
	defer cp.stop()

	b, err := newBench(ctx, cp, o)
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.setup(ctx); err != nil {
		return err
	}
	ctl, err := startController(ctx, herald, cp.kubeconfig, filepath.Join(tmp, "controller.log"), o.controllerArgs)
	if err != nil {
		return err
	}
	defer ctl.stop()
	if err := ctl.waitReady(ctx); err != nil {
		return err
	}
	b.ctl = ctl

	burst, err := b.burst(ctx)
	if err != nil {
		return err
	}
	if !burst.complete {
		slog.Warn("burst did not finish in time; writing what was measured", "addressed", burst.addressed, "of", o.services)
		rep := buildReport(o, b, burst, nil, string(load))
		if werr := writeReport(o.out, rep); werr != nil {
			return werr
		}
		return fmt.Errorf("burst: %d of %d Services addressed after %s", burst.addressed, o.services, o.burstTimeout)
	}
	seq, err := b.sequentialRun(ctx)
	if err != nil {
		return err
	}
	if err := b.verify(ctx); err != nil {
		return fmt.Errorf("address check: %w", err)
	}
	if v, err := procstat.StatusBytes(ctl.pid(), "VmHWM", "VmRSS"); err == nil {
		seq.rssPeak, seq.rssNow = v[0], v[1]
	}
	return writeReport(o.out, buildReport(o, b, burst, seq, string(load)))
}

func writeReport(dir string, r report.Report) error {
	fmt.Print("\n" + r.Markdown())
	if dir == "" {
		return nil
	}
	return report.Write(dir, "controller", r)
}

// controlPlane is a running envtest API server and etcd.
type controlPlane struct {
	env        *envtest.Environment
	cfg        *rest.Config
	kubeconfig string
	apiPID     int
	etcdPID    int
}

func startControlPlane(assets, crds, tmp string) (*controlPlane, error) {
	// controller-runtime logs through a global logger and complains when
	// none is set; the benchmark's own output is slog.
	ctrllog.SetLogger(logr.Discard())
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{crds},
		ErrorIfCRDPathMissing: true,
	}
	api := env.ControlPlane.GetAPIServer().Configure()
	// Dual-stack ClusterIPs, and a /16 since every Service needs one.
	api.Set("service-cluster-ip-range", "10.96.0.0/16,fd00:10::/108")
	// The defaults (400 and 200) turn a burst of parallel creates plus the
	// controller's writes into 429s the clients then retry.
	api.Set("max-requests-inflight", "800")
	api.Set("max-mutating-requests-inflight", "400")
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	cp := &controlPlane{env: env, cfg: cfg, kubeconfig: filepath.Join(tmp, "kubeconfig")}
	if err := kubeconfig.Write(cfg, cp.kubeconfig); err != nil {
		cp.stop()
		return nil, fmt.Errorf("write kubeconfig: %w", err)
	}
	if cp.apiPID, err = procstat.ChildByExe("kube-apiserver"); err != nil {
		cp.stop()
		return nil, err
	}
	if cp.etcdPID, err = procstat.ChildByExe("etcd"); err != nil {
		cp.stop()
		return nil, err
	}
	return cp, nil
}

func (cp *controlPlane) stop() {
	if err := cp.env.Stop(); err != nil {
		slog.Error("stop control plane", "err", err)
	}
}

// controllerProc is the herald controller process.
type controllerProc struct {
	cmd        *exec.Cmd
	exited     chan struct{}
	metricsURL string
	logPath    string
}

func startController(ctx context.Context, herald, kubeconfig, logPath string, extra []string) (*controllerProc, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{"controller",
		"--kubeconfig", kubeconfig, "--namespace", configNamespace,
		// Plain HTTP: the benchmark scrapes without a token.
		"--metrics-addr", addr, "--metrics-secure=false", "--health-addr", "0",
		// One replica: the election's Lease traffic is not what is measured.
		"--leader-elect=false",
	}, extra...)
	cmd := exec.Command(herald, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C at the terminal reaches only us
	// and the controller is stopped in order by our cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", herald, err)
	}
	p := &controllerProc{cmd: cmd, exited: make(chan struct{}), metricsURL: "http://" + addr + "/metrics", logPath: logPath}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	slog.Info("controller started", "pid", cmd.Process.Pid, "args", strings.Join(args, " "))
	return p, nil
}

func (p *controllerProc) pid() int { return p.cmd.Process.Pid }

func (p *controllerProc) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("controller exited (%s); log tail:\n%s", p.cmd.ProcessState, p.logTail(20))
	default:
		return nil
	}
}

func (p *controllerProc) logTail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// countLog counts log lines containing s.
func (p *controllerProc) countLog(s string) int {
	b, _ := os.ReadFile(p.logPath)
	return strings.Count(string(b), s)
}

func (p *controllerProc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitReady waits until the controller serves metrics and has loaded the
// configuration.
func (p *controllerProc) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := p.alive(); err != nil {
			return err
		}
		m, err := scrape(ctx, p.metricsURL)
		if err == nil && m.Sum("metallb_k8s_client_config_loaded_bool") == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("controller not ready after 60s (last scrape error: %v); log tail:\n%s", err, p.logTail(20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
