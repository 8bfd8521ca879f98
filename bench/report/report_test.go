package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParsers(t *testing.T) {
	cpuinfo := "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n"
	if got := cpuModel(cpuinfo); got != "Intel(R) Xeon(R) Processor" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := memTotal("MemTotal:       24576000 kB\nMemFree:        1 kB\n"); got != 24576000*1024 {
		t.Errorf("memTotal = %d", got)
	}
	if got := osName("NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n"); got != "Debian GNU/Linux 13 (trixie)" {
		t.Errorf("osName = %q", got)
	}
	if cpuModel("") != "" || memTotal("garbage") != 0 {
		t.Error("empty input not handled")
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	r := Report{
		Title:       "Allocator",
		Description: "What was measured.",
		Command:     "go run ./bench/allocbench",
		Machine:     Machine{CPU: "Test CPU", Cores: 2, MemoryBytes: 2 << 30, GoVersion: "go1.26", OS: "linux", Arch: "amd64", Kernel: "6.1", Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		Results: []Result{
			{Name: "a", Metrics: []Metric{{"time", "ns/op", 1234.4}, {"allocs", "", 7}}},
			{Name: "b", Metrics: []Metric{{"allocs", "", 8}, {"speedup", "x", 15.25}}},
		},
		Notes: []string{"a note"},
	}
	if err := Write(dir, "allocator", r); err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(filepath.Join(dir, "allocator.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil || back.Machine.CPU != "Test CPU" || len(back.Results) != 2 || back.Results[0].Metrics[0].Value != 1234.4 {
		t.Errorf("JSON round trip: %+v %v", back, err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "allocator.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# Allocator", "Test CPU, 2 cores, 2.0 GiB memory", "2026-01-02 03:04 UTC", "kernel 6.1", "go1.26",
		"| scenario | time (ns/op) | allocs | speedup (x) |",
		"| a | 1234 | 7 |  |", "| b |  | 8 | 15.2 |", "- a note", "`go run ./bench/allocbench`",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestDescribeMachine(t *testing.T) {
	m := DescribeMachine(time.Now())
	if m.Cores < 1 || m.GoVersion == "" || m.OS == "" || m.Date.IsZero() {
		t.Errorf("incomplete machine description %+v", m)
	}
}
