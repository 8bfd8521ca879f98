package hetzner_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/cloud"
	"github.com/herald-lb/herald/internal/cloud/hetzner"
	"github.com/herald-lb/herald/internal/cloud/hetzner/hcloudsim"
)

// Every test runs the real hcloud-go client, through Provider, against the
// stand-in API on 127.0.0.1, and counts requests in the stand-in's log.

const token = "test-token"

// Servers of the stand-in; node-<x> runs on server <id>.
const (
	serverA = "1"
	serverB = "2"
	serverC = "3"
)

// fastBackoff keeps the retry tests short; the delays still double and
// are jittered.
func fastBackoff() cloud.Backoff {
	return cloud.Backoff{Base: 40 * time.Millisecond, Max: 400 * time.Millisecond, Attempts: 4}
}

type env struct {
	sim    *hcloudsim.Sim
	budget *cloud.Budget
	prov   *hetzner.Provider
}

func newEnv(t *testing.T, opts hcloudsim.Options) *env {
	t.Helper()
	sim := hcloudsim.New(opts)
	t.Cleanup(sim.Close)
	sim.AddServer(1, "node-a")
	sim.AddServer(2, "node-b")
	sim.AddServer(3, "node-c")
	e := &env{sim: sim, budget: &cloud.Budget{}}
	e.prov = e.provider(t, token)
	return e
}

func (e *env) provider(t *testing.T, tok string) *hetzner.Provider {
	t.Helper()
	p, err := hetzner.New(hetzner.Options{Token: tok, Endpoint: e.sim.Endpoint(),
		PollInterval: 20 * time.Millisecond, RequestTimeout: 500 * time.Millisecond, Budget: e.budget})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// owner returns an Owner for node on server, logging into the test's log
// on failure.
func (e *env) owner(t *testing.T, node, server string, arb cloud.Arbiter, prov cloud.Provider) *cloud.Owner {
	t.Helper()
	if prov == nil {
		prov = e.prov
	}
	o, err := cloud.NewOwner(cloud.OwnerConfig{
		Provider: prov, Arbiter: arb, Budget: e.budget, Node: node, Server: server,
		Backoff: fastBackoff(), ActionTimeout: 5 * time.Second, HoldDown: 500 * time.Millisecond,
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func testLogger(t *testing.T) *slog.Logger {
	var (
		mu  sync.Mutex
		buf bytes.Buffer
	)
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("log:\n%s", buf.String())
			mu.Unlock()
		}
	})
	return slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func newArbiter() *cloud.MemoryArbiter {
	return &cloud.MemoryArbiter{Duration: 200 * time.Millisecond, HoldDown: 500 * time.Millisecond}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// requests is what the stand-in logged, by kind.
type requests struct{ reads, assigns, polls, total int }

func (e *env) requests(fip string) requests {
	return requests{
		reads:   e.sim.Count("GET", "/floating_ips/"+fip),
		assigns: e.sim.Count("POST", "/floating_ips/"+fip+"/actions/assign"),
		polls:   e.sim.Count("GET", "/actions"),
		total:   len(e.sim.Requests()),
	}
}
