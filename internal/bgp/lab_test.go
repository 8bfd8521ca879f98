package bgp

// Test lab: network namespaces, a speaker process inside the "node"
// namespace and real routers in a "router" namespace.
//
// GoBGP dials and listens from its own goroutines, which Go schedules on
// any OS thread, so entering a namespace on one locked thread is not
// enough. Instead the test binary re-executes itself under
// `ip netns exec`, with heraldHelperEnv set, and drives the Speaker in
// that child over JSON lines on stdin/stdout (see runHelper).

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const heraldHelperEnv = "HERALD_BGP_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(heraldHelperEnv) == "1" {
		if err := runHelper(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperRequest is one command to the speaker process.
type helperRequest struct {
	Op     string          `json:"op"` // start, peers, ads, state, stop
	Config *Config         `json:"config,omitempty"`
	Peers  []Peer          `json:"peers,omitempty"`
	Ads    []Advertisement `json:"ads,omitempty"`
}

type helperResponse struct {
	Error string      `json:"error,omitempty"`
	Peers []PeerState `json:"peers,omitempty"`
}

func runHelper(in io.Reader, out io.Writer) error {
	ctx := context.Background()
	enc := json.NewEncoder(out)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var sp *Speaker
	for sc.Scan() {
		var req helperRequest
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			return err
		}
		var resp helperResponse
		var err error
		switch req.Op {
		case "start":
			cfg := *req.Config
			if os.Getenv("HERALD_BGP_TEST_DEBUG") != "" {
				cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
			}
			if sp, err = New(cfg); err == nil {
				err = sp.Start(ctx)
			}
		case "peers":
			err = sp.SetPeers(ctx, req.Peers)
		case "ads":
			err = sp.SetAdvertisements(ctx, req.Ads)
		case "state":
			resp.Peers = sp.Peers()
		case "stop":
			err = sp.Stop(ctx)
		default:
			err = fmt.Errorf("unknown op %q", req.Op)
		}
		if err != nil {
			resp.Error = err.Error()
		}
		if err := enc.Encode(resp); err != nil {
			return err
		}
		if req.Op == "stop" {
			return nil
		}
	}
	return sc.Err()
}

// requireLab skips (or fails under HERALD_REQUIRE_NETNS=1) when namespaces
// or the named tools are unavailable.
func requireLab(t *testing.T, tools ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("HERALD_REQUIRE_NETNS") == "1" {
		t.Fatalf("lab prerequisites missing: %s", strings.Join(missing, ", "))
	}
	t.Skipf("lab prerequisites missing: %s", strings.Join(missing, ", "))
}

func randSuffix(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// lab is a node namespace linked to a router namespace by a veth pair:
// node 192.0.2.1/24 + 2001:db8::1/64, router 192.0.2.2/24 + 2001:db8::2/64.
type lab struct {
	node, router     string
	nodeIf, routerIf string // the two ends of the veth pair
	dir              string
}

var (
	nodeV4   = netip.MustParseAddr("192.0.2.1")
	routerV4 = netip.MustParseAddr("192.0.2.2")
	nodeV6   = netip.MustParseAddr("2001:db8::1")
	routerV6 = netip.MustParseAddr("2001:db8::2")
)

func newLab(t *testing.T, tools ...string) *lab {
	t.Helper()
	requireLab(t, tools...)
	sfx := randSuffix(t)
	l := &lab{node: "hbgp-n-" + sfx, router: "hbgp-r-" + sfx, nodeIf: "hb" + sfx, routerIf: "hr" + sfx, dir: t.TempDir()}
	for _, ns := range []string{l.node, l.router} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", l.nodeIf, "netns", l.node, "type", "veth", "peer", "name", l.routerIf, "netns", l.router)
	for _, c := range []struct{ ns, dev, v4, v6 string }{
		{l.node, l.nodeIf, "192.0.2.1/24", "2001:db8::1/64"},
		{l.router, l.routerIf, "192.0.2.2/24", "2001:db8::2/64"},
	} {
		run(t, "ip", "-n", c.ns, "addr", "add", c.v4, "dev", c.dev)
		run(t, "ip", "-n", c.ns, "addr", "add", c.v6, "dev", c.dev, "nodad")
		run(t, "ip", "-n", c.ns, "link", "set", c.dev, "up")
	}
	return l
}

// daemon starts cmd inside ns and kills it at cleanup.
func (l *lab) daemon(t *testing.T, ns, logName string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	logf, err := os.Create(filepath.Join(l.dir, logName))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", args[0], err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s log (tail):\n%s", logName, tail(string(b), 3000))
		}
	})
	return cmd
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// speakerProc is the Speaker running in the node namespace.
type speakerProc struct {
	t   *testing.T
	mu  sync.Mutex
	in  io.WriteCloser
	out *bufio.Scanner
	cmd *exec.Cmd
}

func (l *lab) startSpeaker(t *testing.T, cfg Config) *speakerProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", l.node, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), heraldHelperEnv+"=1")
	logf, err := os.Create(filepath.Join(l.dir, "speaker.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sp := &speakerProc{t: t, in: in, out: bufio.NewScanner(out), cmd: cmd}
	sp.out.Buffer(make([]byte, 1<<20), 1<<20)
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("speaker log (tail):\n%s", tail(string(b), 4000))
		}
	})
	sp.do(helperRequest{Op: "start", Config: &cfg})
	return sp
}

func (sp *speakerProc) call(req helperRequest) (helperResponse, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	b, err := json.Marshal(req)
	if err != nil {
		return helperResponse{}, err
	}
	if _, err := sp.in.Write(append(b, '\n')); err != nil {
		return helperResponse{}, fmt.Errorf("write to speaker: %w", err)
	}
	if !sp.out.Scan() {
		return helperResponse{}, fmt.Errorf("speaker exited: %v", sp.out.Err())
	}
	var resp helperResponse
	if err := json.Unmarshal(sp.out.Bytes(), &resp); err != nil {
		return helperResponse{}, err
	}
	if resp.Error != "" {
		return resp, fmt.Errorf("%s: %s", req.Op, resp.Error)
	}
	return resp, nil
}

func (sp *speakerProc) do(req helperRequest) helperResponse {
	sp.t.Helper()
	resp, err := sp.call(req)
	if err != nil {
		sp.t.Fatal(err)
	}
	return resp
}

func (sp *speakerProc) setPeers(peers ...Peer)      { sp.do(helperRequest{Op: "peers", Peers: peers}) }
func (sp *speakerProc) setAds(ads ...Advertisement) { sp.do(helperRequest{Op: "ads", Ads: ads}) }
func (sp *speakerProc) stop()                       { sp.do(helperRequest{Op: "stop"}) }
func (sp *speakerProc) peers() []PeerState          { return sp.do(helperRequest{Op: "state"}).Peers }
func (sp *speakerProc) peer(name string) (PeerState, bool) {
	for _, p := range sp.peers() {
		if p.Name == name {
			return p, true
		}
	}
	return PeerState{}, false
}

// eventually polls cond every 100 ms until it returns "" or timeout passes,
// and returns how long it took.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() string) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < timeout {
		if last = cond(); last == "" {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within %s: %s", what, timeout, last)
	return 0
}
