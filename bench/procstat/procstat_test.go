package procstat

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/herald-lb/herald/internal/lab"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name, stat string
		want       float64
		wantErr    bool
	}{
		{"plain", "42 (herald) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 100 0 0", 3.25, false},
		{"name with spaces and parens", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 0 0 0", 0.03, false},
		{"exactly 13 fields after the name", "42 (herald) S 1 42 42 0 -1 0 0 0 0 0 1 2", 0.03, false},
		{"truncated", "7 (x) R 1 2", 0, true},
		{"no name", "garbage", 0, true},
		{"no closing parenthesis", "42 herald S", 0, true},
		{"utime not a number", "42 (herald) S 1 42 42 0 -1 0 0 0 0 0 x 2 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatCPU(tt.stat)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\therald\nVmHWM:\t  104448 kB\nVmRSS:\t   51200 kB\nVmBad:\t lots kB\n"
	tests := []struct {
		field   string
		want    uint64
		wantErr bool
	}{
		{"VmHWM", 104448 * 1024, false},
		{"VmRSS", 51200 * 1024, false},
		{"VmSwap", 0, true},
		{"VmBad", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			got, err := ParseStatusKB(status, tt.field)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("%s = %d, %v; want %d, wantErr %v", tt.field, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestOwnProcess(t *testing.T) {
	// Our own /proc entries must parse: the same code reads the
	// controller's and the speakers'.
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := CPUSeconds(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	v, err := StatusBytes(os.Getpid(), "VmRSS", "VmHWM", "RssAnon", "RssFile")
	if err != nil {
		t.Fatal(err)
	}
	if rss, hwm := v[0], v[1]; hwm < 1<<20 || hwm < rss || rss == 0 {
		t.Errorf("VmRSS = %d, VmHWM = %d; want non-zero, peak at least 1 MiB and at least now", rss, hwm)
	}
	if _, err := StatusBytes(os.Getpid(), "VmRSS", "NoSuchField"); err == nil {
		t.Error("missing field: want an error")
	}
}

func TestIsSpeaker(t *testing.T) {
	const herald, kc = "/w/bin/herald", "/run/herald-lab/abc123/kubeconfig"
	cmd := func(args ...string) []byte { return []byte(strings.Join(args, "\x00") + "\x00") }
	// speaker is the command line the lab really starts a speaker with.
	speaker := func(node string) []byte {
		return cmd(append([]string{herald}, append(lab.DefaultSpeakerArgs(kc, lab.Node{Name: node, IPv4: netip.MustParseAddr("192.0.2.11")}), "--ml-profile", "lan")...)...)
	}
	tests := []struct {
		name    string
		cmdline []byte
		node    string
		want    bool
	}{
		{"the speaker", speaker("node1"), "node1", true},
		{"plain flags", cmd(herald, "speaker", "--kubeconfig", kc, "--node-name", "node1"), "node1", true},
		{"another node", speaker("node1"), "node2", false},
		{"node10 is not node1", speaker("node10"), "node1", false},
		{"ip netns exec before its exec", cmd(append([]string{"ip", "netns", "exec", "hlabc123-node1"}, strings.Split(strings.TrimRight(string(speaker("node1")), "\x00"), "\x00")...)...), "node1", false},
		{"another lab", cmd(herald, "speaker", "--kubeconfig", "/run/herald-lab/def456/kubeconfig", "--node-name", "node1"), "node1", false},
		{"another binary", cmd("/other/herald", "speaker", "--kubeconfig", kc, "--node-name", "node1"), "node1", false},
		{"the controller", cmd(herald, "controller", "--kubeconfig", kc), "node1", false},
		{"--node-name without a value", cmd(herald, "speaker", "--kubeconfig", kc, "--node-name"), "node1", false},
		{"empty", nil, "node1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsSpeaker(tt.cmdline, herald, kc, tt.node); got != tt.want {
				t.Errorf("IsSpeaker = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestChildByExe(t *testing.T) {
	// The test binary has no child running it, nor anything else.
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if pid, err := ChildByExe("no-such-binary"); err == nil {
		t.Errorf("ChildByExe = %d, want an error", pid)
	}
}
