package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// selectorUse says what a list of selectors picks, for the messages: the
// field name, the objects selected, and what an empty list means.
type selectorUse struct {
	field string // "nodeSelectors"
	what  string // "node"
	empty string // "Omitting nodeSelectors selects every node"
}

var (
	useNodes      = selectorUse{"nodeSelectors", "node", "Omitting nodeSelectors selects every node"}
	useServices   = selectorUse{"serviceSelectors", "Service", "Omitting serviceSelectors selects every Service"}
	useNamespaces = selectorUse{"namespaceSelectors", "namespace", "Omitting namespaces and namespaceSelectors allows every namespace"}
	usePools      = selectorUse{"ipAddressPoolSelectors", "IPAddressPool", "Omitting both ipAddressPools and ipAddressPoolSelectors selects every pool"}
	usePreferred  = selectorUse{"preferredNodeSelectors", "node", "A preference with an empty selector matches every node"}
)

// selectors validates a list of label selectors at path and converts them.
// It reports every invalid key, value and operator, and repeated selectors
// or values. ok is false when any selector is unusable.
func (b *builder) selectors(r ref, path *field.Path, in []metav1.LabelSelector, use selectorUse) (out []labels.Selector, ok bool) {
	ok = true
	seen := make(map[string]int, len(in))
	for i := range in {
		p := path.Index(i)
		sel, good := b.selector(r, p, &in[i], use)
		if !good {
			ok = false
			continue
		}
		key := sel.String()
		if j, dup := seen[key]; dup {
			b.fail(r, p, fmt.Sprintf("this selector repeats %s[%d] (%s); remove one of them",
				use.field, j, describeSelector(key)))
			ok = false
			continue
		}
		seen[key] = i
		out = append(out, sel)
	}
	return out, ok
}

// selector validates one label selector and converts it.
func (b *builder) selector(r ref, p *field.Path, s *metav1.LabelSelector, use selectorUse) (labels.Selector, bool) {
	ok := true
	ml := p.Child("matchLabels")
	for _, k := range slices.Sorted(maps.Keys(s.MatchLabels)) {
		v := s.MatchLabels[k]
		kp := ml.Key(k)
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			b.fail(r, kp, fmt.Sprintf("label key %q is not valid: %s", k, strings.Join(msgs, "; ")))
			ok = false
		}
		if msg := labelValueProblem(k, v, use); msg != "" {
			b.fail(r, kp, msg)
			ok = false
		}
	}
	me := p.Child("matchExpressions")
	for i, e := range s.MatchExpressions {
		ep := me.Index(i)
		// Values are checked below, for the wildcard hint; the rest by
		// apimachinery.
		for _, fe := range metav1validation.ValidateLabelSelectorRequirement(e,
			metav1validation.LabelSelectorValidationOptions{AllowInvalidLabelValueInSelector: true}, ep) {
			b.fail(r, pathOf(fe.Field), fe.ErrorBody())
			ok = false
		}
		seen := make(map[string]int, len(e.Values))
		for j, v := range e.Values {
			vp := ep.Child("values").Index(j)
			if msg := labelValueProblem(e.Key, v, use); msg != "" {
				b.fail(r, vp, msg)
				ok = false
			}
			if k, dup := seen[v]; dup {
				b.fail(r, vp, fmt.Sprintf("value %q repeats values[%d]; remove one of them", v, k))
				ok = false
			}
			seen[v] = j
		}
	}
	if !ok {
		return nil, false
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		b.fail(r, p, fmt.Sprintf("invalid label selector: %v", err))
		return nil, false
	}
	return sel, true
}

// labelValueProblem explains what is wrong with a label value, or returns "".
func labelValueProblem(key, v string, use selectorUse) string {
	msgs := validation.IsValidLabelValue(v)
	if len(msgs) == 0 {
		return ""
	}
	if strings.Contains(v, "*") {
		return fmt.Sprintf("label value %q is not valid: label selectors have no wildcard, a value matches only itself. "+
			"%s; to select every %s that has the label %s with any value, use matchExpressions: [{key: %s, operator: Exists}]",
			v, use.empty, use.what, key, key)
	}
	return fmt.Sprintf("label value %q is not valid: %s", v, strings.Join(msgs, "; "))
}

// pathOf turns a field path string from apimachinery back into a Path.
// apimachinery's errors carry their own paths, built from ours, so the text
// is already right; only the type differs.
func pathOf(s string) *field.Path { return field.NewPath(s) }

// describeSelector renders a selector's canonical string for messages; the
// empty selector has no text of its own.
func describeSelector(s string) string {
	if s == "" {
		return "the empty selector, which matches everything"
	}
	return s
}

// matchesAny reports whether set matches at least one selector. An empty
// list matches nothing; callers decide what "no selectors" means.
func matchesAny(sels []labels.Selector, set map[string]string) bool {
	ls := labels.Set(set)
	for _, s := range sels {
		if s.Matches(ls) {
			return true
		}
	}
	return false
}

// matchesAll is the rule for optional selector lists: no selectors means
// everything, otherwise at least one must match.
func matchesAll(sels []labels.Selector, set map[string]string) bool {
	return len(sels) == 0 || matchesAny(sels, set)
}

// selectorKey is the canonical text of a selector list, order-insensitive,
// for comparing objects.
func selectorKey(sels []labels.Selector) string {
	keys := make([]string, len(sels))
	for i, s := range sels {
		keys[i] = "(" + s.String() + ")"
	}
	slices.Sort(keys)
	return strings.Join(keys, "|")
}
