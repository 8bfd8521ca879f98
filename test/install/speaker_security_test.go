package install

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/mdlayher/packet"
	"golang.org/x/net/icmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// imageUser is the user the image runs as when the Pod does not say
// (hack/image; test/image checks it).
const imageUser = 65534

// containerdDefaultCaps is the bounding set containerd gives a container
// before the securityContext's drop and add.
var containerdDefaultCaps = []string{"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}

// processSecurity is what the kernel sees of a container: the runtime
// turns the Pod's and the container's securityContext into these.
type processSecurity struct {
	uid, gid     int64
	caps         []string // the bounding set
	noNewPrivs   bool     // allowPrivilegeEscalation: false
	readOnlyRoot bool
	seccomp      string
	privileged   bool
	drop, add    []string
}

func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, s := range l {
		out = append(out, fmt.Sprint(s))
	}
	return out
}

func int64Of(v any, def int64) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case int:
		return int64(n)
	}
	return def
}

// speakerSecurity merges the rendered speaker's Pod and container
// securityContext as the kubelet does: the container's fields win.
func speakerSecurity(t *testing.T, objs []*unstructured.Unstructured) processSecurity {
	t.Helper()
	ds := find(objs, "DaemonSet", "speaker")
	if ds == nil {
		t.Fatal("no DaemonSet speaker")
	}
	pod, _, _ := unstructured.NestedMap(ds.Object, "spec", "template", "spec", "securityContext")
	c := deref[[]any](t, ds, "spec", "template", "spec", "containers")[0].(map[string]any)
	ctr, _ := c["securityContext"].(map[string]any)
	field := func(name string) any {
		if v, ok := ctr[name]; ok {
			return v
		}
		return pod[name]
	}
	s := processSecurity{
		uid:          int64Of(field("runAsUser"), imageUser),
		gid:          int64Of(field("runAsGroup"), imageUser),
		noNewPrivs:   field("allowPrivilegeEscalation") == false,
		readOnlyRoot: ctr["readOnlyRootFilesystem"] == true,
		privileged:   ctr["privileged"] == true,
	}
	if sp, ok := field("seccompProfile").(map[string]any); ok {
		s.seccomp = fmt.Sprint(sp["type"])
	}
	caps, _ := ctr["capabilities"].(map[string]any)
	s.drop, s.add = stringList(caps["drop"]), stringList(caps["add"])
	if !slices.Contains(s.drop, "ALL") {
		for _, c := range containerdDefaultCaps {
			if !slices.Contains(s.drop, c) {
				s.caps = append(s.caps, c)
			}
		}
	}
	for _, c := range s.add {
		if !slices.Contains(s.caps, c) {
			s.caps = append(s.caps, c)
		}
	}
	return s
}

// effectiveCaps is what the process holds after the runtime's execve: the
// bounding set for root, nothing for any other user (Kubernetes sets no
// ambient capabilities, and the image's binary has no file capabilities).
func (s processSecurity) effectiveCaps() []string {
	if s.uid == 0 {
		return s.caps
	}
	return nil
}

// TestSpeakerSecurityContext: the speaker holds NET_RAW, for its ARP/NDP
// (AF_PACKET) and unnumbered-BGP (ICMPv6) raw sockets, and nothing else:
// BGP only dials out (no port 179 to bind), BFD listens on 3784 and
// memberlist on 7946 (above 1024), TCP-MD5 and TTLs are plain socket
// options, and netlink is only read. Non-root, NET_RAW is in the bounding
// set only, which is how the speaker failed on a real node.
func TestSpeakerSecurityContext(t *testing.T) {
	eachValues(t, func(t *testing.T, objs []*unstructured.Unstructured) {
		s := speakerSecurity(t, objs)
		if got := s.effectiveCaps(); !slices.Equal(got, []string{"NET_RAW"}) {
			t.Errorf("speaker runs as uid %d with effective capabilities %v, want exactly NET_RAW (bounding set %v)", s.uid, got, s.caps)
		}
		if !slices.Equal(s.drop, []string{"ALL"}) || !slices.Equal(s.add, []string{"NET_RAW"}) {
			t.Errorf("capabilities drop %v add %v, want drop [ALL] add [NET_RAW]", s.drop, s.add)
		}
		if !s.noNewPrivs || !s.readOnlyRoot || s.privileged {
			t.Errorf("allowPrivilegeEscalation false %v, readOnlyRootFilesystem %v, privileged %v", s.noNewPrivs, s.readOnlyRoot, s.privileged)
		}
		if s.seccomp != "RuntimeDefault" {
			t.Errorf("seccompProfile %q, want RuntimeDefault", s.seccomp)
		}
	})
}

// rawSocketHelper, set in the environment, makes the test binary open the
// speaker's raw sockets and exit: 0 when both open.
const rawSocketHelper = "HERALD_TEST_RAW_SOCKETS"

func TestMain(m *testing.M) {
	if os.Getenv(rawSocketHelper) != "" {
		os.Exit(openRawSockets())
	}
	os.Exit(m.Run())
}

// openRawSockets opens the sockets the speaker opens: AF_PACKET for ARP
// (internal/l2frame) and raw ICMPv6 (internal/bgp's unnumbered peers).
func openRawSockets() int {
	status, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "Cap") || strings.HasPrefix(l, "NoNewPrivs") {
			fmt.Println(l)
		}
	}
	failed := 0
	lo, err := net.InterfaceByName("lo")
	if err == nil {
		var c *packet.Conn
		if c, err = packet.Listen(lo, packet.Raw, 0x0806, nil); err == nil {
			c.Close()
		}
	}
	if err != nil {
		fmt.Println("AF_PACKET:", err)
		failed++
	}
	ic, err := icmp.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		fmt.Println("ICMPv6:", err)
		failed++
	} else {
		ic.Close()
	}
	return failed
}

// TestSpeakerSecurityContextOnKernel runs a process with the credentials
// the runtime derives from the rendered speaker's securityContext (uid and
// gid, bounding set, no inheritable or ambient capabilities, no_new_privs)
// and has it open the speaker's raw sockets, in a network namespace of its
// own. The first row is the chart as rendered; the others show the kernel
// rule the chart relies on.
func TestSpeakerSecurityContextOnKernel(t *testing.T) {
	setpriv, err := exec.LookPath("setpriv")
	if os.Geteuid() != 0 || err != nil {
		if os.Getenv("HERALD_REQUIRE_NETNS") != "" {
			t.Fatalf("needs root and setpriv (util-linux): euid %d, %v", os.Geteuid(), err)
		}
		t.Skipf("needs root and setpriv (util-linux); HERALD_REQUIRE_NETNS=1 turns this skip into a failure")
	}
	rendered := speakerSecurity(t, objects(t, render(t)))
	nonRoot := rendered
	nonRoot.uid, nonRoot.gid = imageUser, imageUser
	noRaw := rendered
	noRaw.caps = nil
	for _, tc := range []struct {
		name   string
		s      processSecurity
		opened bool
	}{
		{"the chart's speaker", rendered, true},
		{"non-root with NET_RAW added", nonRoot, false},
		{"root without NET_RAW", noRaw, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bounding := "-all"
			for _, c := range tc.s.caps {
				bounding += ",+" + strings.ToLower(c)
			}
			args := []string{fmt.Sprintf("--reuid=%d", tc.s.uid), fmt.Sprintf("--regid=%d", tc.s.gid), "--clear-groups",
				"--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=" + bounding}
			if tc.s.noNewPrivs {
				args = append(args, "--no-new-privs")
			}
			cmd := exec.Command(setpriv, append(args, "--", os.Args[0])...)
			cmd.Env = append(os.Environ(), rawSocketHelper+"=1")
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
			out, err := cmd.CombinedOutput()
			if opened := err == nil; opened != tc.opened {
				t.Errorf("raw sockets opened: %v, want %v (setpriv %s: %v)\n%s", opened, tc.opened, strings.Join(args, " "), err, out)
			}
		})
	}
}

// TestSpeakerReadiness: the speaker Pod is Ready only through its /readyz,
// which fails while Layer 2 cannot open its raw socket
// (internal/speaker TestRawSocketCheck); without a probe, a speaker with no
// effective capability was Ready and `helm install --wait` passed.
func TestSpeakerReadiness(t *testing.T) {
	eachValues(t, func(t *testing.T, objs []*unstructured.Unstructured) {
		ds := find(objs, "DaemonSet", "speaker")
		if ds == nil {
			t.Fatal("no DaemonSet speaker")
		}
		c := deref[[]any](t, ds, "spec", "template", "spec", "containers")[0].(map[string]any)
		path, _, _ := unstructured.NestedString(c, "readinessProbe", "httpGet", "path")
		port, _, _ := unstructured.NestedFieldNoCopy(c, "readinessProbe", "httpGet", "port")
		if path != "/readyz" || port != "health" {
			t.Fatalf("readinessProbe %v %v, want /readyz on port health", path, port)
		}
		var healthPort any
		ports, _ := c["ports"].([]any)
		for _, p := range ports {
			if m := p.(map[string]any); m["name"] == "health" {
				healthPort = m["containerPort"]
			}
		}
		args := fmt.Sprint(c["args"])
		if healthPort == nil || !strings.Contains(args, fmt.Sprintf("--health-addr=:%v", healthPort)) {
			t.Errorf("health port %v not served by args %s", healthPort, args)
		}
	})
}
