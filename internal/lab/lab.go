// Package lab builds a small Layer 2 LAN out of Linux network namespaces and
// runs Herald on it against a real kube-apiserver and etcd (envtest). It is
// what `herald lab` (make lab) shows a newcomer, and what the end-to-end
// tests drive.
//
// The LAN, for a lab with id <id>:
//
//	hl<id>-lan      bridge br0; one veth port per member (node1..N, client)
//	hl<id>-nodeN    eth0 192.0.2.1N/24, 2001:db8::1N/64; kube-ipvs0 (dummy) holds
//	                every Service address, as kube-proxy in IPVS mode does;
//	                strict ARP; a backend answering "nodeN"; herald speaker
//	hl<id>-client   eth0 192.0.2.100/24, 2001:db8::100/64; curl, arping, ndisc6
//
// The API server listens on the root namespace's loopback; each node
// namespace gets a forwarder at the same address, so one kubeconfig serves
// the controller (root namespace) and every speaker. Nothing in the root
// namespace's interfaces, addresses or routes is touched.
//
// Everything a lab creates is recorded in a state file, so Down (herald
// lab-down) can remove what a killed lab left behind.
package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// DefaultStateDir holds each lab's state file and working folder.
const DefaultStateDir = "/run/herald-lab"

// HeraldNamespace is where the lab runs Herald and expects its configuration.
const HeraldNamespace = "metallb-system"

// Address plan. The LAN is 192.0.2.0/24 and 2001:db8::/64 (documentation
// ranges); Services get addresses from Pool4 and Pool6 when the seed-style
// configuration (Config) is applied.
const (
	Pool4 = "192.0.2.200-192.0.2.250"
	Pool6 = "2001:db8::200-2001:db8::2ff"
)

var (
	clientIPv4 = netip.MustParseAddr("192.0.2.100")
	clientIPv6 = netip.MustParseAddr("2001:db8::100")
)

// ErrNoSpeaker means the herald binary has no speaker subcommand.
var ErrNoSpeaker = errors.New("no speaker command")

// Options configure a lab. The zero value (plus Herald, Assets and CRDs)
// gives three nodes, the controller and a speaker on every node.
type Options struct {
	// Herald is the herald binary the controller and speakers run from.
	Herald string
	// Assets is the folder with kube-apiserver, etcd and kubectl
	// (KUBEBUILDER_ASSETS, as printed by hack/testenv.sh).
	Assets string
	// CRDs is the folder of Herald's CRDs (config/crd/bases).
	CRDs string
	// Nodes is the number of node namespaces: default 3, at most 9.
	Nodes int
	// NoController and NoSpeakers leave those processes out.
	NoController bool
	NoSpeakers   bool
	// SpeakerArgs builds a speaker's arguments after the binary; nil means
	// DefaultSpeakerArgs.
	SpeakerArgs func(kubeconfig string, n Node) []string
	// ControllerArgs builds the controller's arguments after the binary;
	// nil means DefaultControllerArgs.
	ControllerArgs func(kubeconfig string) []string
	// StateDir holds state files and working folders; default DefaultStateDir.
	StateDir string
	// LogDir receives the processes' logs (<name>.log) and is kept after
	// Close; default a folder inside the lab's working folder, removed on Close.
	LogDir string
	// Log receives progress messages; nil discards them.
	Log *slog.Logger

	// Router adds a router namespace on the LAN (192.0.2.1, 2001:db8::1)
	// running FRR, peering over BGP with every node with multipath on, and
	// a remote client behind it on 198.51.100.0/24 and 2001:db8:100::/64
	// (see router.go). Needs FRR (Debian: apt-get install frr).
	Router bool
	// RouterASN and NodeASN are the AS numbers of the router and of the
	// nodes; default DefaultRouterASN and DefaultNodeASN.
	RouterASN, NodeASN uint32
	// RouterBFD turns BFD on for the router's sessions.
	RouterBFD bool
	// RouterPassword, if set, is the TCP MD5 password of the router's sessions.
	RouterPassword string
	// PointToPoint, with Router, is the cloud topology (see uplinks.go):
	// the router has no port on the LAN and runs no FRR; each node reaches
	// it over a point-to-point link of its own, and an address reaches a
	// node only through a route the router holds for it (RouteVia).
	PointToPoint bool

	// Cluster, if set, makes the nodes real Kubernetes nodes (see
	// nodes.go) and starts no herald process: Herald is installed as Pods.
	Cluster *ClusterOptions

	// Forward are loopback addresses (IP:port) of the root namespace that
	// every node namespace reaches at the same address, as it reaches the
	// API server: a cloud API's stand-in on 127.0.0.1.
	Forward []string
}

// DefaultSpeakerArgs runs `herald speaker` as node n. Its /metrics are
// plain HTTP, explicitly: only the lab's own namespaces reach them, and the
// tests and benchmarks scrape them without a token.
func DefaultSpeakerArgs(kubeconfig string, n Node) []string {
	return []string{"speaker", "--kubeconfig", kubeconfig, "--node-name", n.Name,
		"--namespace", HeraldNamespace, "--ml-bind-addr", n.IPv4.String(), "--metrics-secure=false"}
}

// DefaultControllerArgs runs `herald controller` with no listeners of its
// own (metrics and health off), so several labs can run side by side.
func DefaultControllerArgs(kubeconfig string) []string {
	return []string{"controller", "--kubeconfig", kubeconfig, "--namespace", HeraldNamespace,
		"--metrics-addr", "0", "--health-addr", "0", "--leader-elect=false"}
}

// Node is one node of the LAN.
type Node struct {
	Name      string // node1, node2, ...; also the Kubernetes Node name
	Namespace string // its network namespace
	IPv4      netip.Addr
	IPv6      netip.Addr
	MAC       net.HardwareAddr // of eth0
}

// member is a namespace attached to the LAN: a node or the client.
type member struct {
	Node
	port string // its veth peer on the bridge, in the lan namespace
	// uplink are a node's IPv4 and IPv6 addresses on its point-to-point
	// link to the router (Options.PointToPoint).
	uplink [2]netip.Addr
	// remoteVia are the router's IPv4 and IPv6 addresses a node routes
	// the remote subnet via (Options.Router).
	remoteVia [2]netip.Addr
	ns        netns.NsHandle
	nl        *netlink.Handle
}

// Lab is a running lab. Its methods are safe for concurrent use.
type Lab struct {
	opts       Options
	id         string
	dir        string
	logDir     string
	statePath  string
	kubeconfig string
	apiAddr    string // host:port of the API server, the same in every namespace

	env    *envtest.Environment
	cfg    *rest.Config
	client kubernetes.Interface

	lan     *member // only ns and nl are used
	nodes   []*member
	clientM *member
	router  *member // nil unless Options.Router
	remote  *member // nil unless Options.Router
	frrDir  string  // the router's FRR configuration, pid files and sockets

	proxy *kubeProxy

	ctx    context.Context // cancelled by Close: stops background work
	cancel context.CancelFunc

	mu      sync.Mutex
	procs   map[string]*process
	closers []func() error // run in reverse order by Close

	closeOnce sync.Once
	closeErr  error
}

// Start builds a lab. On error everything built so far is removed again.
func Start(ctx context.Context, opts Options) (*Lab, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.StateDir == "" {
		opts.StateDir = DefaultStateDir
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.RouterASN == 0 {
		opts.RouterASN = DefaultRouterASN
	}
	if opts.NodeASN == 0 {
		opts.NodeASN = DefaultNodeASN
	}
	if opts.Cluster != nil {
		opts.NoController, opts.NoSpeakers = true, true
	}
	if err := preflight(ctx, opts); err != nil {
		return nil, err
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	l := &Lab{
		opts:      opts,
		id:        id,
		dir:       filepath.Join(opts.StateDir, id),
		statePath: filepath.Join(opts.StateDir, id+".json"),
		procs:     map[string]*process{},
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	if err := l.start(ctx); err != nil {
		if cerr := l.Close(); cerr != nil {
			err = fmt.Errorf("%w (and cleaning up: %v)", err, cerr)
		}
		return nil, fmt.Errorf("lab %s: %w", id, err)
	}
	return l, nil
}

// preflight checks what Start needs before anything is created, so that a
// missing tool or binary is one clear error.
func preflight(ctx context.Context, opts Options) error {
	if opts.Nodes < 1 || opts.Nodes > 9 {
		return fmt.Errorf("nodes: %d, want 1 to 9", opts.Nodes)
	}
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root (network namespaces): run it as root")
	}
	for _, tool := range []string{"ip", "curl", "arping", "ndisc6"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s: %w (Debian: apt-get install iproute2 curl iputils-arping ndisc6)", tool, err)
		}
	}
	if opts.Assets == "" {
		return errors.New("no control-plane binaries: set KUBEBUILDER_ASSETS=$(hack/testenv.sh)")
	}
	for _, b := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(opts.Assets, b)); err != nil {
			return fmt.Errorf("control-plane binaries: %w (run hack/testenv.sh)", err)
		}
	}
	if _, err := os.Stat(opts.CRDs); opts.CRDs == "" || err != nil {
		return fmt.Errorf("CRD folder %q not found (config/crd/bases of the checkout)", opts.CRDs)
	}
	if opts.PointToPoint && !opts.Router {
		return errors.New("the point-to-point topology needs the router (Options.Router)")
	}
	if opts.Router && !opts.PointToPoint {
		if err := routerPreflight(); err != nil {
			return err
		}
	}
	if opts.Cluster != nil {
		if err := clusterPreflight(opts.Cluster); err != nil {
			return err
		}
	}
	if opts.NoController && opts.NoSpeakers {
		return nil
	}
	if opts.Herald == "" {
		return errors.New("no herald binary given")
	}
	if _, err := os.Stat(opts.Herald); err != nil {
		return fmt.Errorf("herald binary: %w (run make build)", err)
	}
	if !opts.NoSpeakers && opts.SpeakerArgs == nil {
		ok, err := HasSpeaker(ctx, opts.Herald)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s: %w yet (rebuild with make build once it exists)", opts.Herald, ErrNoSpeaker)
		}
	}
	return nil
}

// HasSpeaker reports whether the herald binary has the speaker subcommand.
func HasSpeaker(ctx context.Context, herald string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, herald, "speaker", "-h").CombinedOutput()
	if err != nil && ctx.Err() != nil {
		return false, fmt.Errorf("%s speaker -h: %w", herald, ctx.Err())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return false, fmt.Errorf("%s: %w", herald, err)
	}
	// main prints this for a command it does not know.
	return !bytes.Contains(out, []byte(`unknown command "speaker"`)), nil
}

func newID() (string, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("lab id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func (l *Lab) start(ctx context.Context) error {
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return err
	}
	l.logDir = l.opts.LogDir
	if l.logDir == "" {
		l.logDir = filepath.Join(l.dir, "logs")
	}
	if err := os.MkdirAll(l.logDir, 0o755); err != nil {
		return err
	}
	l.planMembers()
	if l.opts.Router {
		l.planRouter()
	}
	// The state file comes first: whatever exists after this point can be
	// found by Down, even if this process is killed the next instant.
	if err := writeState(l.statePath, l.state()); err != nil {
		return err
	}

	// The control plane takes a few seconds to boot; build the LAN meanwhile.
	cpErr := make(chan error, 1)
	go func() { cpErr <- l.startControlPlane() }()
	lanErr := l.buildLAN(ctx)
	if lanErr == nil && l.opts.Router {
		lanErr = l.startRouter(ctx)
	}
	if err := <-cpErr; err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	if lanErr != nil {
		return fmt.Errorf("LAN: %w", lanErr)
	}
	l.opts.Log.Info("control plane and LAN up", "api", l.apiAddr, "id", l.id)
	if err := l.startForwarders(); err != nil {
		return err
	}
	if l.opts.Cluster != nil {
		return l.startNodes(ctx)
	}
	if err := l.seedCluster(ctx); err != nil {
		return err
	}
	l.proxy = newKubeProxy(l.client, l.nodes, l.opts.Log)
	l.onClose(l.proxy.close)
	if err := l.proxy.start(l.ctx); err != nil {
		return fmt.Errorf("kube-proxy stand-in: %w", err)
	}
	if !l.opts.NoController {
		if err := l.StartController(); err != nil {
			return err
		}
	}
	if !l.opts.NoSpeakers {
		for _, n := range l.nodes {
			if err := l.StartSpeaker(n.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// planMembers names the namespaces and addresses; nothing is created yet.
func (l *Lab) planMembers() {
	prefix := "hl" + l.id + "-"
	l.lan = &member{Node: Node{Name: "lan", Namespace: prefix + "lan"}}
	for i := 1; i <= l.opts.Nodes; i++ {
		name := fmt.Sprintf("node%d", i)
		l.nodes = append(l.nodes, &member{
			Node: Node{
				Name:      name,
				Namespace: prefix + name,
				IPv4:      netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}),
				IPv6:      netip.MustParseAddr(fmt.Sprintf("2001:db8::%d", 10+i)),
				MAC:       labMAC(byte(0x10 + i)),
			},
			port: name,
		})
	}
	l.clientM = &member{
		Node: Node{Name: "client", Namespace: prefix + "client", IPv4: clientIPv4, IPv6: clientIPv6, MAC: labMAC(0x64)},
		port: "client",
	}
}

// labMAC is a locally administered address ending in b, so that node2 is
// 02:4c:41:42:00:12 and output stays readable. Each lab has its own bridge,
// so two labs never see each other's addresses.
func labMAC(b byte) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x4c, 0x41, 0x42, 0x00, b}
}

func (l *Lab) members() []*member {
	return append(append([]*member{l.lan}, l.nodes...), l.clientM)
}

// onClose registers cleanup; Close runs it in reverse order.
func (l *Lab) onClose(f func() error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closers = append(l.closers, f)
}

// Close stops every process, removes the namespaces, stops the control
// plane and deletes the state. It is safe to call more than once.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		var errs []error
		l.mu.Lock()
		procs := make([]*process, 0, len(l.procs))
		for _, p := range l.procs {
			procs = append(procs, p)
		}
		closers := l.closers
		l.closers = nil
		l.mu.Unlock()
		// Processes first: they hold namespaces and talk to the API server.
		for _, p := range procs {
			p.kill()
		}
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i](); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			// The state stays, so that lab-down can finish the job.
			errs = append(errs, fmt.Errorf("run `herald lab-down` to remove what is left of lab %s", l.id))
		} else {
			errs = append(errs, os.RemoveAll(l.dir), removeIfExists(l.statePath))
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// ID is the lab's random id, part of every namespace name.
func (l *Lab) ID() string { return l.id }

// Kubeconfig is a kubeconfig file for the lab's API server. It works in the
// root namespace and in every node namespace.
func (l *Lab) Kubeconfig() string { return l.kubeconfig }

// Config is the API server's client configuration.
func (l *Lab) Config() *rest.Config { return rest.CopyConfig(l.cfg) }

// Client is a clientset for the lab's API server.
func (l *Lab) Client() kubernetes.Interface { return l.client }

// APIServer is the API server's host:port (in every namespace).
func (l *Lab) APIServer() string { return l.apiAddr }

// Nodes lists the nodes in order.
func (l *Lab) Nodes() []Node {
	out := make([]Node, len(l.nodes))
	for i, n := range l.nodes {
		out[i] = n.Node
	}
	return out
}

// ClientNode is the client namespace's view of itself.
func (l *Lab) ClientNode() Node { return l.clientM.Node }

// LANNamespace is the namespace holding the bridge.
func (l *Lab) LANNamespace() string { return l.lan.Namespace }

// Namespaces lists every namespace of the lab.
func (l *Lab) Namespaces() []string {
	var out []string
	for _, m := range l.members() {
		out = append(out, m.Namespace)
	}
	if l.router != nil {
		out = append(out, l.router.Namespace, l.remote.Namespace)
	}
	return out
}

func (l *Lab) node(name string) (*member, error) {
	for _, n := range l.nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no node %q in the lab", name)
}

// NodeMAC is the MAC address of the node's eth0.
func (l *Lab) NodeMAC(node string) (net.HardwareAddr, error) {
	n, err := l.node(node)
	if err != nil {
		return nil, err
	}
	return n.MAC, nil
}

// NodeByMAC names the node whose eth0 has the address mac, or "".
func (l *Lab) NodeByMAC(mac net.HardwareAddr) string {
	for _, n := range l.nodes {
		if n.MAC.String() == mac.String() {
			return n.Name
		}
	}
	return ""
}

// state is what Down needs to clean up after this lab.
func (l *Lab) state() labState {
	start, _ := processStart(os.Getpid())
	return labState{
		ID: l.id, PID: os.Getpid(), PIDStart: start, Dir: l.dir,
		Namespaces: l.Namespaces(), Created: time.Now().UTC(),
	}
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
