// Package manifest checks metallb.io manifests offline, for `herald
// validate`: it decodes YAML or JSON files as kubectl would read them, feeds
// every object to internal/config as one set, and reports each problem with
// the file and line of the object it is about.
package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Source is one input file.
type Source struct {
	// Name is how findings refer to the file: its path, or "<stdin>".
	Name string
	Data []byte
}

// ReadSources reads the named files; "-" reads stdin (once), and a
// directory stands for its *.yaml, *.yml and *.json files, sorted by name.
func ReadSources(paths []string, stdin func() ([]byte, error)) ([]Source, error) {
	var out []Source
	for _, p := range paths {
		if p == "-" {
			data, err := stdin()
			if err != nil {
				return nil, fmt.Errorf("read stdin: %w", err)
			}
			out = append(out, Source{Name: "<stdin>", Data: data})
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			out = append(out, Source{Name: p, Data: data})
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, e := range entries {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".yaml", ".yml", ".json":
				if !e.IsDir() {
					names = append(names, e.Name())
				}
			}
		}
		slices.Sort(names)
		if len(names) == 0 {
			return nil, fmt.Errorf("%s: no .yaml, .yml or .json files", p)
		}
		for _, n := range names {
			fp := filepath.Join(p, n)
			data, err := os.ReadFile(fp)
			if err != nil {
				return nil, err
			}
			out = append(out, Source{Name: fp, Data: data})
		}
	}
	return out, nil
}

// document is one YAML document of a file.
type document struct {
	file  int    // index of the source
	index int    // 0-based position among the file's non-empty documents
	line  int    // 1-based line where its content starts
	data  []byte // the document's text
}

// splitDocuments splits a YAML stream at "---" lines (and "..." document
// ends), keeping the line each document's content starts on. Documents
// holding only comments and blank lines are dropped and not counted.
func splitDocuments(file int, data []byte) []document {
	var (
		out   []document
		cur   bytes.Buffer
		start int // first content line of cur, 0 while none
		index int
	)
	flush := func() {
		if start != 0 {
			out = append(out, document{file: file, index: index, line: start, data: slices.Clone(cur.Bytes())})
			index++
		}
		cur.Reset()
		start = 0
	}
	// Lines are cut by hand rather than with a bufio.Scanner: a line past a
	// Scanner's buffer would end the file there, and no valid document can
	// be refused for the length of a line.
	n := 0
	for rest := data; len(rest) > 0; {
		raw := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			raw, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		n++
		line := string(bytes.TrimSuffix(raw, []byte("\r")))
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if rest, ok := strings.CutPrefix(line, "---"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			// A separator may carry the start of the next document.
			flush()
			rest = strings.TrimSpace(rest)
			if rest == "" || strings.HasPrefix(rest, "#") {
				continue
			}
			line = rest
		}
		if strings.TrimRight(line, " \t") == "..." {
			flush()
			continue
		}
		if start == 0 {
			t := strings.TrimSpace(line)
			if t != "" && !strings.HasPrefix(t, "#") {
				start = n
			}
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return out
}

// typeMeta is what every object starts with.
type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	// Items is set for a v1 List, as `kubectl get -o yaml` writes.
	Items []json.RawMessage `json:"items"`
}

// cleanDecodeError strips the layers of decoder prefixes from a YAML or
// JSON error, which say nothing to an operator.
func cleanDecodeError(err error) string {
	msg := err.Error()
	for _, p := range []string{"error converting YAML to JSON: ", "error unmarshaling JSON: ", "while decoding JSON: ", "json: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	if strings.Contains(msg, "unknown field") {
		msg += "; check the spelling and indentation (kubectl apply refuses unknown fields too)"
	}
	return msg
}
