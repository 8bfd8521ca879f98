package webhookcert

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

func TestOptionsWithDefaults(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		check func(t *testing.T, o Options)
		want  string
	}{
		{
			name: "defaults",
			opts: Options{Namespace: "herald-system"},
			check: func(t *testing.T, o Options) {
				if o.SecretName != DefaultSecretName || o.ServiceName != DefaultServiceName || o.WebhookConfigName != DefaultWebhookConfigName {
					t.Errorf("names = %q %q %q", o.SecretName, o.ServiceName, o.WebhookConfigName)
				}
				if o.CAValidity != DefaultCAValidity || o.CertValidity != DefaultCertValidity || o.RefreshBefore != DefaultRefreshBefore || o.CheckInterval != DefaultCheckInterval {
					t.Errorf("durations = %s %s %s %s", o.CAValidity, o.CertValidity, o.RefreshBefore, o.CheckInterval)
				}
				if o.CertDir == "" {
					t.Error("CertDir not defaulted")
				}
				want := []string{"herald-webhook-service.herald-system.svc", "herald-webhook-service.herald-system.svc.cluster.local"}
				if got := o.DNSNames(); !slices.Equal(got, want) {
					t.Errorf("DNSNames = %v, want %v", got, want)
				}
				if got := (Options{Namespace: "herald-system"}).DNSNames(); !slices.Equal(got, want) {
					t.Errorf("DNSNames before defaulting = %v, want %v", got, want)
				}
			},
		},
		{
			name: "explicit values kept",
			opts: Options{Namespace: "ns", ServiceName: "hook", ClusterDomain: "example.internal", CertValidity: 3 * time.Second, RefreshBefore: time.Second},
			check: func(t *testing.T, o Options) {
				if o.CertValidity != 3*time.Second || o.RefreshBefore != time.Second {
					t.Errorf("durations = %s %s", o.CertValidity, o.RefreshBefore)
				}
				want := []string{"hook.ns.svc", "hook.ns.svc.example.internal"}
				if got := o.DNSNames(); !slices.Equal(got, want) {
					t.Errorf("DNSNames = %v, want %v", got, want)
				}
			},
		},
		{name: "no namespace", opts: Options{}, want: "Namespace is required"},
		{name: "refresh as long as certificate", opts: Options{Namespace: "ns", CertValidity: time.Hour, RefreshBefore: time.Hour}, want: "shorter than CertValidity"},
		{name: "refresh longer than CA", opts: Options{Namespace: "ns", CAValidity: time.Hour, CertValidity: 2 * time.Hour, RefreshBefore: 90 * time.Minute}, want: "shorter than CAValidity"},
		{name: "negative", opts: Options{Namespace: "ns", CheckInterval: -time.Second}, want: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opts.withDefaults()
			checkErr(t, err, tt.want)
			if err == nil && tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	steps := []struct {
		name        string
		data        string
		perm        fs.FileMode
		wantChanged bool
	}{
		{name: "create", data: "one", perm: 0o600, wantChanged: true},
		{name: "same content", data: "one", perm: 0o600, wantChanged: false},
		{name: "new content", data: "two", perm: 0o600, wantChanged: true},
		{name: "new mode", data: "three", perm: 0o644, wantChanged: true},
	}
	path := filepath.Join(dir, "tls.key")
	var before os.FileInfo
	for _, s := range steps {
		changed, err := writeFileAtomic(dir, "tls.key", []byte(s.data), s.perm)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if changed != s.wantChanged {
			t.Errorf("%s: changed = %v, want %v", s.name, changed, s.wantChanged)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != s.data {
			t.Errorf("%s: file = %q, %v; want %q", s.name, got, err, s.data)
		}
		after, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if after.Mode().Perm() != s.perm {
			t.Errorf("%s: mode = %v, want %v", s.name, after.Mode().Perm(), s.perm)
		}
		// A rewrite is a rename of a new file, never an edit in place.
		if before != nil && os.SameFile(before, after) == s.wantChanged {
			t.Errorf("%s: same file after write = %v, want %v", s.name, os.SameFile(before, after), !s.wantChanged)
		}
		before = after
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only tls.key (temporary files left behind?)", len(entries))
	}
	if _, err := writeFileAtomic(filepath.Join(dir, "missing"), "tls.key", []byte("x"), 0o600); err == nil {
		t.Error("write into a missing directory: got no error")
	}
}

// startRecorder is a webhook server that records being started.
type startRecorder struct {
	webhook.Server
	started chan struct{}
}

func (s startRecorder) Start(ctx context.Context) error {
	close(s.started)
	<-ctx.Done()
	return nil
}

func TestGate(t *testing.T) {
	r, err := New(nil, Options{Namespace: "ns", CertDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if r.NeedLeaderElection() {
		t.Error("Rotator needs leader election; every replica must run it")
	}
	next := startRecorder{Server: webhook.NewServer(webhook.Options{}), started: make(chan struct{})}
	gate := r.Gate(next)
	if gate.NeedLeaderElection() {
		t.Error("gated server needs leader election")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- gate.Start(ctx) }()

	select {
	case <-next.started:
		t.Fatal("gated server started before the rotator was ready")
	case <-time.After(100 * time.Millisecond):
	}
	r.readyOnce.Do(func() { close(r.ready) })
	select {
	case <-next.started:
	case <-time.After(5 * time.Second):
		t.Fatal("gated server not started once ready")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("gate returned %v", err)
	}

	// Stopping before the rotator is ready returns without starting.
	r2, err := New(nil, Options{Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	never := startRecorder{Server: webhook.NewServer(webhook.Options{}), started: make(chan struct{})}
	ctx2, cancel2 := context.WithCancel(t.Context())
	cancel2()
	if err := r2.Gate(never).Start(ctx2); err != nil {
		t.Errorf("gate returned %v", err)
	}
	select {
	case <-never.started:
		t.Error("gated server started though the rotator never became ready")
	default:
	}
}
