// Package report writes benchmark results to bench/results/: a JSON file for
// machines and a short Markdown table for people, both noting the machine
// the figures were measured on, since figures from different machines do not
// compare.
package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where a benchmark ran.
type Machine struct {
	CPU         string    `json:"cpu"`
	Cores       int       `json:"cores"`
	MemoryBytes uint64    `json:"memoryBytes"`
	GoVersion   string    `json:"goVersion"`
	OS          string    `json:"os"`
	Arch        string    `json:"arch"`
	Kernel      string    `json:"kernel"`
	Date        time.Time `json:"date"`
}

// DescribeMachine reads the current machine's description from /proc and
// the runtime. Fields it cannot read are left empty rather than failing:
// a report without a CPU name is still worth writing.
func DescribeMachine(now time.Time) Machine {
	m := Machine{
		Cores:     runtime.NumCPU(),
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
		Date:      now.UTC().Truncate(time.Second),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU = cpuModel(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemoryBytes = memTotal(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		if name := osName(string(b)); name != "" {
			m.OS += " (" + name + ")"
		}
	}
	return m
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel(cpuinfo string) string {
	sc := bufio.NewScanner(strings.NewReader(cpuinfo))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// memTotal returns MemTotal of /proc/meminfo in bytes.
func memTotal(meminfo string) uint64 {
	sc := bufio.NewScanner(strings.NewReader(meminfo))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// osName returns PRETTY_NAME of /etc/os-release.
func osName(osRelease string) string {
	sc := bufio.NewScanner(strings.NewReader(osRelease))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// Metric is one measured figure.
type Metric struct {
	Name  string  `json:"name"`
	Unit  string  `json:"unit"`
	Value float64 `json:"value"`
}

// Result is one benchmarked scenario.
type Result struct {
	Name    string   `json:"name"`
	Metrics []Metric `json:"metrics"`
}

// Report is a set of results measured in one run.
type Report struct {
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Command     string   `json:"command"`
	Machine     Machine  `json:"machine"`
	Results     []Result `json:"results"`
	Notes       []string `json:"notes,omitempty"`
}

// Write writes dir/base.json and dir/base.md.
func Write(dir, base string, r Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", base, err)
	}
	if err := os.WriteFile(filepath.Join(dir, base+".json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, base+".md"), []byte(r.Markdown()), 0o644)
}

// Markdown renders the report: the machine, then one table row per result
// with one column per metric name (in order of first appearance).
func (r Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	if r.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", r.Description)
	}
	m := r.Machine
	fmt.Fprintf(&b, "Measured %s on %s, %d cores, %.1f GiB memory; %s %s, kernel %s; %s.\n",
		m.Date.Format("2006-01-02 15:04 MST"), orUnknown(m.CPU), m.Cores, float64(m.MemoryBytes)/(1<<30),
		m.OS, m.Arch, orUnknown(m.Kernel), m.GoVersion)
	if r.Command != "" {
		fmt.Fprintf(&b, "Reproduce with `%s`.\n", r.Command)
	}
	b.WriteString("\n")

	type column struct{ name, unit string }
	var cols []column
	index := map[string]int{}
	for _, res := range r.Results {
		for _, mt := range res.Metrics {
			if _, ok := index[mt.Name]; !ok {
				index[mt.Name] = len(cols)
				cols = append(cols, column{mt.Name, mt.Unit})
			}
		}
	}
	b.WriteString("| scenario |")
	for _, c := range cols {
		if c.unit != "" {
			fmt.Fprintf(&b, " %s (%s) |", c.name, c.unit)
		} else {
			fmt.Fprintf(&b, " %s |", c.name)
		}
	}
	b.WriteString("\n|---|")
	for range cols {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, res := range r.Results {
		cells := make([]string, len(cols))
		for _, mt := range res.Metrics {
			cells[index[mt.Name]] = formatValue(mt.Value)
		}
		fmt.Fprintf(&b, "| %s | %s |\n", res.Name, strings.Join(cells, " | "))
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// formatValue prints whole numbers as such and keeps about three
// significant figures otherwise, without exponents.
func formatValue(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 100 || v <= -100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10 || v <= -10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
