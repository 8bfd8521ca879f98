package config

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/api/v1beta1"
)

// Community is a BGP community value: a standard community (RFC 1997,
// written A:B) or a large community (RFC 8092, written large:A:B:C).
type Community struct {
	// Large tells a large community from a standard one.
	Large bool
	// Standard is a standard community's 32 bits, A<<16 | B.
	Standard uint32
	// GlobalAdmin, LocalData1 and LocalData2 are a large community's three
	// parts.
	GlobalAdmin, LocalData1, LocalData2 uint32
}

// String writes the community the way it is configured.
func (c Community) String() string {
	if c.Large {
		return fmt.Sprintf("large:%d:%d:%d", c.GlobalAdmin, c.LocalData1, c.LocalData2)
	}
	return fmt.Sprintf("%d:%d", c.Standard>>16, c.Standard&0xffff)
}

// compareCommunities orders standard communities before large ones, then
// numerically.
func compareCommunities(a, b Community) int {
	if a.Large != b.Large {
		if a.Large {
			return 1
		}
		return -1
	}
	return cmp.Or(cmp.Compare(a.Standard, b.Standard), cmp.Compare(a.GlobalAdmin, b.GlobalAdmin),
		cmp.Compare(a.LocalData1, b.LocalData1), cmp.Compare(a.LocalData2, b.LocalData2))
}

// CommunityAlias is one name defined by a Community object.
type CommunityAlias struct {
	Name  string
	Value Community
	// Source is the name of the Community object that defines it.
	Source string
}

// communityExamples is the fix suggested by every community syntax error.
const communityExamples = `write "A:B" with two numbers from 0 to 65535 (e.g. "65535:65281" for no-export), ` +
	`"large:A:B:C" with three numbers from 0 to 4294967295, or the name of an alias defined in a Community object`

// isCommunityLiteral tells a community value from an alias name: aliases
// have no colon (MetalLB's rule too).
func isCommunityLiteral(s string) bool { return strings.Contains(s, ":") }

// ParseCommunity parses "A:B" or "large:A:B:C". Alias names are not
// resolved here.
func ParseCommunity(s string) (Community, error) {
	parts := strings.Split(s, ":")
	num := func(p string, bits int) (uint64, error) {
		if p == "" || strings.TrimSpace(p) != p || strings.HasPrefix(p, "+") {
			return 0, fmt.Errorf("%q is not a number", p)
		}
		v, err := strconv.ParseUint(p, 10, bits)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number from 0 to %d", p, uint64(1)<<bits-1)
		}
		return v, nil
	}
	switch {
	case len(parts) == 2:
		a, err := num(parts[0], 16)
		if err != nil {
			return Community{}, fmt.Errorf("community %q: %w; %s", s, err, communityExamples)
		}
		bv, err := num(parts[1], 16)
		if err != nil {
			return Community{}, fmt.Errorf("community %q: %w; %s", s, err, communityExamples)
		}
		return Community{Standard: uint32(a<<16 | bv)}, nil
	case len(parts) == 4 && strings.EqualFold(parts[0], "large"):
		var v [3]uint64
		for i := range v {
			n, err := num(parts[i+1], 32)
			if err != nil {
				return Community{}, fmt.Errorf("large community %q: %w; %s", s, err, communityExamples)
			}
			v[i] = n
		}
		return Community{Large: true, GlobalAdmin: uint32(v[0]), LocalData1: uint32(v[1]), LocalData2: uint32(v[2])}, nil
	}
	return Community{}, fmt.Errorf("%q is not a community: %s", s, communityExamples)
}

// communitySet is the aliases defined by all Community objects, with the
// names whose definition is broken (so references to them are not also
// reported as missing).
type communitySet struct {
	aliases []CommunityAlias
	byName  map[string]Community
	broken  map[string]bool
}

func (b *builder) buildCommunities() communitySet {
	cs := communitySet{byName: map[string]Community{}, broken: map[string]bool{}}
	defined := map[string]string{} // alias -> "object.spec.communities[i]"
	for _, o := range objects(b, KindCommunity, b.r.Communities, func(c *v1beta1.Community) *metav1.ObjectMeta { return &c.ObjectMeta }) {
		list := field.NewPath("spec", "communities")
		for i, a := range o.obj.Spec.Communities {
			p := list.Index(i)
			switch {
			case a.Name == "":
				b.fail(o.ref, p.Child("name"), "the alias has no name; give it one, without a colon")
				continue
			case isCommunityLiteral(a.Name):
				b.fail(o.ref, p.Child("name"), fmt.Sprintf(
					"alias name %q contains a colon, so advertisements would read it as a community value; choose a name without one", a.Name))
				cs.broken[a.Name] = true
				continue
			}
			if where, dup := defined[a.Name]; dup {
				b.fail(o.ref, p.Child("name"), fmt.Sprintf(
					"alias %q is already defined in %s; alias names must be unique across all Community objects", a.Name, where))
				continue
			}
			defined[a.Name] = fmt.Sprintf("Community %q spec.communities[%d]", o.ref.name, i)
			c, err := ParseCommunity(a.Value)
			if err != nil {
				b.fail(o.ref, p.Child("value"), err.Error())
				cs.broken[a.Name] = true
				continue
			}
			cs.byName[a.Name] = c
			cs.aliases = append(cs.aliases, CommunityAlias{Name: a.Name, Value: c, Source: o.ref.name})
		}
	}
	sortByName(cs.aliases, func(a CommunityAlias) string { return a.Name })
	return cs
}
