// Package promtext parses Prometheus text exposition, as the benchmarks
// scrape it from herald's /metrics, and adds up its samples.
package promtext

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Sample is one line of Prometheus text exposition.
type Sample struct {
	Name   string
	Labels string // the text between the braces, as written
	Value  float64
}

// Metrics is one scrape.
type Metrics []Sample

// Parse reads every sample, skipping comments and blank lines.
func Parse(r io.Reader) (Metrics, error) {
	var out Metrics
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		var s Sample
		rest := line
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("malformed metric line %q", line)
			}
			s.Name, s.Labels, rest = line[:i], line[i+1:j], line[j+1:]
		} else {
			name, after, ok := strings.Cut(line, " ")
			if !ok {
				return nil, fmt.Errorf("malformed metric line %q", line)
			}
			s.Name, rest = name, after
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("metric line %q has no value", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", line, err)
		}
		s.Value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

// Sum adds the samples of a metric whose labels contain every given
// `key="value"` pair.
func (m Metrics) Sum(name string, labels ...string) float64 {
	var t float64
	for _, s := range m {
		if s.Name == name && hasLabels(s.Labels, labels) {
			t += s.Value
		}
	}
	return t
}

// Count is the number of samples of name with a non-zero value whose labels
// pass keep (every sample if keep is nil).
func (m Metrics) Count(name string, keep func(labels string) bool) int {
	n := 0
	for _, s := range m {
		if s.Name == name && s.Value != 0 && (keep == nil || keep(s.Labels)) {
			n++
		}
	}
	return n
}

func hasLabels(labels string, want []string) bool {
	for _, w := range want {
		if !strings.Contains(labels, w) {
			return false
		}
	}
	return true
}
