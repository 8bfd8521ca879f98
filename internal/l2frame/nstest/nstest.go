// Package nstest holds what the tests of the ARP and NDP responders share:
// throwaway network namespaces for their kernel tests, and checks of the
// l2frame.Responder both build on. It never changes the namespace the test
// runs in: links are created inside the new namespaces.
package nstest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// RequireEnv names the variable that turns a skip into a failure, so that CI
// cannot silently lose the kernel tests.
const RequireEnv = "HERALD_REQUIRE_NETNS"

// Require skips the test unless it runs as root with ip and the given tools
// on PATH; with HERALD_REQUIRE_NETNS=1 it fails instead.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (euid 0)")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("kernel test needs %s, and %s=1 forbids skipping it", strings.Join(missing, ", "), RequireEnv)
	}
	t.Skipf("kernel test needs %s (set %s=1 to make this a failure)", strings.Join(missing, ", "), RequireEnv)
}

// Link is one end of the veth pair.
type Link struct {
	NS   string // namespace name, for ip netns
	Name string // interface name inside NS
	MAC  net.HardwareAddr
}

// NewPair creates namespaces <prefix>-<rand>-node and <prefix>-<rand>-client
// joined by a veth pair, both ends up, and deletes them when the test ends.
// The node end has no IP address at all, not even an IPv6 link-local one,
// so the responders are shown not to depend on any. The client end skips
// duplicate address detection so its addresses work at once.
func NewPair(t testing.TB, prefix string) (node, client Link) {
	t.Helper()
	id := strings.ToLower(rand.Text()[:6])
	node = Link{NS: prefix + "-" + id + "-node", Name: "hl0"}
	client = Link{NS: prefix + "-" + id + "-client", Name: "hl1"}
	for _, ns := range []string{node.NS, client.NS} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("deleting namespace %s: %v: %s", ns, err, out)
			}
		})
	}
	run(t, "ip", "-n", node.NS, "link", "add", node.Name, "type", "veth", "peer", "name", client.Name, "netns", client.NS)
	run(t, "ip", "-n", node.NS, "link", "set", node.Name, "addrgenmode", "none")
	Sysctl(t, client.NS, "net.ipv6.conf."+client.Name+".accept_dad", "0")
	for _, l := range []*Link{&node, &client} {
		run(t, "ip", "-n", l.NS, "link", "set", "lo", "up")
		run(t, "ip", "-n", l.NS, "link", "set", l.Name, "up")
		if err := Do(l.NS, func() error {
			ifi, err := net.InterfaceByName(l.Name)
			if err != nil {
				return err
			}
			l.MAC = ifi.HardwareAddr
			return nil
		}); err != nil {
			t.Fatalf("reading %s in %s: %v", l.Name, l.NS, err)
		}
	}
	return node, client
}

// Exec runs a command inside namespace ns and returns its combined output.
func Exec(ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in %s: %w", strings.Join(args, " "), ns, err)
	}
	return string(out), nil
}

// MustExec is Exec failing the test on error.
func MustExec(t testing.TB, ns string, args ...string) string {
	t.Helper()
	out, err := Exec(ns, args...)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return out
}

// Sysctl sets a kernel parameter, such as net.ipv6.conf.hl1.accept_dad,
// inside namespace ns: /proc/sys/net belongs to the namespace of the thread
// that opens it.
func Sysctl(t testing.TB, ns, key, value string) {
	t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	if err := Do(ns, func() error { return os.WriteFile(path, []byte(value), 0o644) }); err != nil {
		t.Fatalf("sysctl %s=%s in %s: %v", key, value, ns, err)
	}
}

func run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Do runs fn on an OS thread switched into namespace ns. Sockets fn opens
// stay in ns. The thread is discarded if it cannot be switched back.
func Do(ns string, fn func() error) error {
	target, err := netns.GetFromName(ns)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("entering %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Stay locked: the runtime ends the thread with this goroutine.
			errc <- fmt.Errorf("leaving %s: %w", ns, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
