package speaker

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRawSocketCheck runs the readiness check in a child process with and
// without CAP_NET_RAW: a speaker Pod that cannot answer ARP must not be
// Ready (the chart once ran it as a non-root user with no effective
// capability, and the Pod was Ready all the same).
func TestRawSocketCheck(t *testing.T) {
	if os.Getenv("HERALD_RAW_SOCKET_CHILD") != "" {
		if err := rawSocketCheck(nil); err != nil {
			os.Stdout.WriteString(err.Error())
			os.Exit(3)
		}
		os.Exit(0)
	}
	setpriv, err := exec.LookPath("setpriv")
	if os.Geteuid() != 0 || err != nil {
		msg := "needs root and setpriv (util-linux) to run a process without CAP_NET_RAW"
		if os.Getenv("HERALD_REQUIRE_NETNS") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		prefix []string
		ready  bool
	}{
		{"root with every capability", nil, true},
		{"root without NET_RAW", []string{setpriv, "--bounding-set=-net_raw", "--inh-caps=-net_raw", "--"}, false},
		{"root with NET_RAW alone, as the chart runs it", []string{setpriv, "--bounding-set=-all,+net_raw", "--inh-caps=-all", "--"}, true},
		{"non-root with NET_RAW in the bounding set only", []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--bounding-set=-all,+net_raw", "--inh-caps=-all", "--"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, tc.prefix...), self, "-test.run=^TestRawSocketCheck$")
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Env = append(os.Environ(), "HERALD_RAW_SOCKET_CHILD=1")
			out, err := cmd.Output()
			if ready := err == nil; ready != tc.ready {
				t.Fatalf("ready = %v (%v: %s), want %v", ready, err, out, tc.ready)
			}
			if !tc.ready && !strings.Contains(string(out), "CAP_NET_RAW") {
				t.Errorf("message %q does not name CAP_NET_RAW", out)
			}
		})
	}
}
