package manifest

import (
	"fmt"

	yamlv3 "go.yaml.in/yaml/v3"
)

// Alias budget. A YAML alias repeats its anchor's whole value, so a small
// document can stand for an enormous one: 99 aliases of a 2 MB value are
// 200 MB to convert and decode, gigabytes of memory. The YAML library's own
// guard counts aliased nodes, not their size, and lets that through. So a
// document may grow through its aliases to at most twice its own size plus
// aliasAllowance; past that it is refused before it is decoded. Anchors as
// people use them (a shared selector list) stay far below.
const (
	aliasAllowance = 1 << 20
	// nodeOverhead is what each node costs beyond its text (punctuation
	// in JSON, bookkeeping in the decoder), so that many small aliased
	// nodes count too.
	nodeOverhead = 8
)

// aliasProblem explains why a document expands too far through its
// aliases, or returns "". kind and name are read from the document when it
// has them, for the message's place. A document the YAML parser refuses is
// left to the decoder, which says what is wrong with it.
func aliasProblem(data []byte) (msg, kind, name string) {
	var root yamlv3.Node
	if err := yamlv3.Unmarshal(data, &root); err != nil {
		return "", "", ""
	}
	limit := 2*int64(len(data)) + aliasAllowance
	s := sizer{limit: limit, anchored: map[*yamlv3.Node]int64{}}
	if size := s.size(&root); size <= limit {
		return "", "", ""
	}
	kind, name = topLevel(&root)
	return fmt.Sprintf("YAML aliases expand this %s document to more than %s (Herald reads at most twice a document's size plus %s, "+
		"so that a small file cannot cost gigabytes to decode); write the repeated values out, or repeat less",
		mib(int64(len(data))), mib(limit), mib(aliasAllowance)), kind, name
}

// sizer measures a node tree with its aliases expanded, stopping once past
// limit. Each anchored node is measured once.
type sizer struct {
	limit    int64
	anchored map[*yamlv3.Node]int64
}

func (s *sizer) size(n *yamlv3.Node) int64 {
	if n == nil {
		return 0
	}
	if n.Anchor != "" {
		if v, ok := s.anchored[n]; ok {
			return v
		}
		// Until it is measured, a node that contains itself through an
		// alias counts as too large.
		s.anchored[n] = s.limit + 1
	}
	total := int64(nodeOverhead)
	if n.Kind == yamlv3.AliasNode {
		total += s.size(n.Alias)
	} else {
		total += int64(len(n.Value))
		for _, c := range n.Content {
			if total > s.limit {
				break
			}
			total += s.size(c)
		}
	}
	total = min(total, s.limit+1)
	if n.Anchor != "" {
		s.anchored[n] = total
	}
	return total
}

// topLevel reads kind and metadata.name from a document without expanding
// anything.
func topLevel(root *yamlv3.Node) (kind, name string) {
	doc := root
	if doc.Kind == yamlv3.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	value := func(m *yamlv3.Node, key string) *yamlv3.Node {
		if m == nil || m.Kind != yamlv3.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i+1]
			}
		}
		return nil
	}
	scalar := func(n *yamlv3.Node) string {
		if n == nil || n.Kind != yamlv3.ScalarNode {
			return ""
		}
		return n.Value
	}
	return scalar(value(doc, "kind")), scalar(value(value(doc, "metadata"), "name"))
}

func mib(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
