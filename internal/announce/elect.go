package announce

import (
	"cmp"
	"slices"

	"github.com/herald-lb/herald/internal/election"
)

// Elect decides, for every Service, which node announces it in a
// single-owner mode. Every speaker computes the same result from the same
// inputs. Services with one election key are decided together, among the
// nodes eligible for every one of them that has an endpoint, so one
// address always has one owner (MetalLB #558, #968).
func Elect(in Inputs, e Elector) []Announcement {
	groups := map[string][]Service{}
	for _, s := range in.Services {
		if len(s.Addrs) == 0 {
			continue
		}
		k := e.ElectionKey(s)
		groups[k] = append(groups[k], s)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []Announcement
	for _, k := range keys {
		svcs := groups[k]
		slices.SortFunc(svcs, func(a, b Service) int { return cmp.Compare(a.Key, b.Key) })
		// A Service with no endpoint is announced by nobody and has no say
		// in who announces the others on its key: a new Deployment's
		// Service, whose Pods are not ready yet, must not take a shared
		// address or a floating /64 away from the Services it already
		// serves. Only when none has an endpoint does the mode say why.
		serving := slices.DeleteFunc(slices.Clone(svcs), func(s Service) bool { return len(s.EndpointNodes) == 0 })
		if len(serving) == 0 {
			serving = svcs
		}
		c := e.Candidates(in, serving)
		owner, ok := c.Incumbent, c.Incumbent != "" && slices.Contains(c.Nodes, c.Incumbent)
		if !ok {
			owner, ok = election.OwnerWeighted(k, c.Nodes, c.Weights)
		}
		reason := ""
		if !ok {
			reason = cmp.Or(c.Why, "no eligible node")
		}
		for _, s := range svcs {
			a := Announcement{Service: s.Key, Addrs: s.Addrs, Key: k, Owner: owner, Reason: reason}
			if len(s.EndpointNodes) == 0 {
				a.Owner, a.Reason = "", ReasonNoEndpoints
			}
			out = append(out, a)
		}
	}
	return out
}

// ReasonNoEndpoints is why a Service with no ready or serving endpoint is
// announced by no node.
const ReasonNoEndpoints = "the Service has no ready or serving endpoint"

// Owned keeps the announcements node owns.
func Owned(all []Announcement, node string) []Announcement {
	var out []Announcement
	for _, a := range all {
		if a.Owner == node {
			out = append(out, a)
		}
	}
	return out
}

// EligibleForAll is the nodes eligible for every Service of group, sorted,
// and the first reason a Service gave for having none: Services that share
// an owner are announced from where all of them may be.
func EligibleForAll(group []Service, eligible func(Service) (map[string]bool, string)) ([]string, string) {
	var (
		cands map[string]bool
		why   string
	)
	for _, s := range group {
		c, w := eligible(s)
		if cands == nil {
			cands = c
		} else {
			for n := range cands {
				if !c[n] {
					delete(cands, n)
				}
			}
		}
		if why == "" {
			why = w
		}
	}
	nodes := make([]string, 0, len(cands))
	for n := range cands {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	return nodes, why
}
