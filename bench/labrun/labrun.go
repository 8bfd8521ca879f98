// Package labrun is what the lab benchmarks share around their
// measurements: the flags that say where herald and the Kubernetes binaries
// are, and starting and removing the network-namespace lab.
package labrun

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/herald-lb/herald/internal/lab"
)

// Inputs are the flags that say what a lab benchmark runs and where its
// process logs go.
type Inputs struct {
	Herald, Assets, Repo, Logs string
}

// Register adds -herald, -assets, -repo and -logs to fs.
func (in *Inputs) Register(fs *flag.FlagSet) {
	fs.StringVar(&in.Herald, "herald", "bin/herald", "herald binary (make build)")
	fs.StringVar(&in.Assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "kube-apiserver/etcd/kubectl folder; empty runs hack/testenv.sh")
	fs.StringVar(&in.Repo, "repo", ".", "repository root (config/crd/bases, hack/testenv.sh)")
	fs.StringVar(&in.Logs, "logs", "", "keep the lab's process logs in this folder (default: a new folder under $TMPDIR, kept)")
}

// Main runs a lab benchmark called name, logging to stderr, and exits with
// status 1 if run fails. Ctrl-C or SIGTERM cancels run's context; every wait
// watches it and run's deferred cleanup removes the lab.
func Main(name string, run func(context.Context, *slog.Logger) error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// envtest logs through controller-runtime's logger; unset, it prints a
	// stack trace into the benchmark's output at the second lab it starts.
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, log)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("interrupted (the lab is removed): %w", err)
	}
	stop()
	if err != nil {
		log.Error(name+" failed", "err", err)
		os.Exit(1)
	}
}

// Binaries returns the herald binary's absolute path, checked to exist,
// and the folder of kube-apiserver and etcd: assets if set, else what
// hack/testenv.sh under repo prints (it downloads them once).
func Binaries(ctx context.Context, herald, assets, repo string) (string, string, error) {
	herald, err := filepath.Abs(herald)
	if err != nil {
		return "", "", err
	}
	if _, err := os.Stat(herald); err != nil {
		return "", "", fmt.Errorf("herald binary: %w (run `make build` first)", err)
	}
	if assets == "" {
		out, err := exec.CommandContext(ctx, filepath.Join(repo, "hack", "testenv.sh")).Output()
		if err != nil {
			return "", "", fmt.Errorf("hack/testenv.sh: %w", err)
		}
		assets = strings.TrimSpace(string(out))
	}
	return herald, assets, nil
}

// CRDs is the folder of the CRD manifests in the repository at repo.
func CRDs(repo string) string {
	return filepath.Join(repo, "config", "crd", "bases")
}

// Options resolves the inputs into the lab options every lab benchmark
// starts from. With no -logs it makes a new folder, named after prefix,
// under $TMPDIR and records it in in.Logs; the folder outlives the run.
func (in *Inputs) Options(ctx context.Context, prefix string, log *slog.Logger) (lab.Options, error) {
	herald, assets, err := Binaries(ctx, in.Herald, in.Assets, in.Repo)
	if err != nil {
		return lab.Options{}, err
	}
	if in.Logs == "" {
		if in.Logs, err = os.MkdirTemp("", prefix); err != nil {
			return lab.Options{}, err
		}
	}
	return lab.Options{
		Herald: herald, Assets: assets,
		CRDs:   CRDs(in.Repo),
		LogDir: in.Logs,
		Log:    log,
	}, nil
}

// Start starts the lab. The returned done removes it and is meant for the
// caller's deferred cleanup, as `err = done(err)`: when the run failed, and
// not because ctx ended, it first adds any process that died to err and
// logs the end of every speaker's log, then calls onFailure (if not nil)
// for whatever else the benchmark wants shown.
func Start(ctx context.Context, opts lab.Options, onFailure func(*lab.Lab)) (l *lab.Lab, done func(error) error, err error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Info("starting the lab", "logs", opts.LogDir)
	l, err = lab.Start(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	done = func(err error) error {
		if err != nil && ctx.Err() == nil {
			if perr := l.CheckProcesses(); perr != nil {
				err = errors.Join(err, perr)
			}
			for _, n := range l.Nodes() {
				log.Warn("end of log", "process", "speaker-"+n.Name, "log", "\n"+l.LogTail("speaker-"+n.Name, 30))
			}
			if onFailure != nil {
				onFailure(l)
			}
		}
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close lab: %w", cerr))
		} else {
			log.Info("lab removed", "logs kept in", opts.LogDir)
		}
		return err
	}
	return l, done, nil
}
