package floatingip

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/herald-lb/herald/internal/announce"
	"github.com/herald-lb/herald/internal/cloud"
	"github.com/herald-lb/herald/internal/config"
)

// Defaults of the server-name lookup, for nodes without spec.providerID.
const (
	// DefaultNamesEvery bounds how often the project's servers are listed
	// to find a node that no server name matched: a node that joins
	// later is found within it.
	DefaultNamesEvery = 5 * time.Minute
	// DefaultNamesRefresh re-reads the names while some node relies on
	// one, so a server re-created under the same name (a new ID) is
	// followed: 2 requests per hour per speaker for up to 50 servers.
	DefaultNamesRefresh = 30 * time.Minute
)

// serverNames is what the project's server list said, by server name.
type serverNames struct {
	byName map[string]string
	listed time.Time
}

// serverOf is node n's server for ad: the ID in spec.providerID, or, when
// the node has none (no cloud controller manager), the ID of the server
// named like the node in ad's project, from the last list of its servers.
// Every speaker reads the same list, so they agree on the candidates once
// each has read it; until then the Lease keeps a speaker that disagrees from
// moving the IP.
func (a *Announcer) serverOf(ad *config.CloudAdvertisement, n announce.Node) (string, error) {
	if n.ProviderID != "" {
		return serverID(ad.Provider, n)
	}
	a.mu.Lock()
	names := a.names[keyOf(ad)]
	a.mu.Unlock()
	if names == nil {
		return "", fmt.Errorf("node %s has no spec.providerID, and the project's servers have not been listed yet: %w", n.Name, cloud.ErrNotEligible)
	}
	if id, ok := names.byName[n.Name]; ok {
		return id, nil
	}
	// No time in the message: the node's report changes only when the
	// verdict does.
	return "", fmt.Errorf("node %s has no spec.providerID and no %s server is named %q: %w",
		n.Name, ad.Provider, n.Name, cloud.ErrNotEligible)
}

// serverID is the node's server in the provider's cloud, from its
// spec.providerID ("hcloud://<id>" on Hetzner).
func serverID(provider string, n announce.Node) (string, error) {
	prefix := ""
	switch provider {
	case config.ProviderHetzner:
		prefix = "hcloud://"
	default:
		return "", fmt.Errorf("unknown provider %q", provider)
	}
	id, ok := strings.CutPrefix(n.ProviderID, prefix)
	if !ok || id == "" || strings.TrimLeft(id, "0123456789") != "" {
		return "", fmt.Errorf("node %s: spec.providerID %q is not a %s server (%sID): %w", n.Name, n.ProviderID, provider, prefix, cloud.ErrNotEligible)
	}
	return id, nil
}

// resolveNames lists the servers of each project whose CloudAdvertisement
// selects a node without spec.providerID, when no list is known yet, when
// such a node is not in the last list and that list is older than
// NamesEvery, or when the list is older than NamesRefresh. It returns
// whether a list changed the names, so that the candidates are elected
// again.
func (a *Announcer) resolveNames(ctx context.Context, in announce.Inputs) bool {
	if in.Config == nil {
		return false
	}
	changed := false
	for _, ad := range in.Config.CloudAdvertisements {
		k := keyOf(ad)
		a.mu.Lock()
		names := a.names[k]
		a.mu.Unlock()
		need := false
		for _, n := range in.Nodes {
			if n.ProviderID != "" || !ad.MatchesNode(n.Labels) {
				continue
			}
			switch {
			case names == nil, time.Since(names.listed) >= a.opts.NamesRefresh:
				need = true
			case names.byName[n.Name] == "" && time.Since(names.listed) >= a.opts.NamesEvery:
				need = true
			}
		}
		if !need {
			continue
		}
		acct, err := a.account(ctx, ad)
		if err != nil {
			continue // reported when a Service needs the account
		}
		servers, err := acct.provider.Servers(ctx)
		if err != nil {
			a.opts.Log.Error(err, "list the cloud's servers to find nodes without spec.providerID", "cloudAdvertisement", ad.Name)
			a.mu.Lock()
			if names != nil {
				names.listed = time.Now() // not again before NamesEvery
			} else {
				// Retry at the next sync's NamesEvery: record an empty list.
				a.names[k] = &serverNames{byName: map[string]string{}, listed: time.Now()}
			}
			a.mu.Unlock()
			continue
		}
		next := &serverNames{byName: map[string]string{}, listed: time.Now()}
		for _, s := range servers {
			next.byName[s.Name] = s.ID
		}
		a.mu.Lock()
		if names == nil || !sameNames(names.byName, next.byName) {
			changed = true
		}
		a.names[k] = next
		a.mu.Unlock()
	}
	return changed
}

func sameNames(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// reportNode tells the operator, once per change, whether this node can
// hold the floating IPs of the CloudAdvertisements that select it, and if
// not, why.
func (a *Announcer) reportNode(in announce.Inputs, node string) {
	if a.opts.NodeReport == nil || in.Config == nil {
		return
	}
	n, ok := in.Nodes[node]
	if !ok {
		return
	}
	var selected, why []string
	server := ""
	for _, ad := range in.Config.CloudAdvertisements {
		if !ad.MatchesNode(n.Labels) {
			continue
		}
		selected = append(selected, ad.Name)
		id, err := a.serverOf(ad, n)
		if err != nil {
			why = append(why, fmt.Sprintf("CloudAdvertisement %s: %v", ad.Name, err))
			continue
		}
		server = id
	}
	r := NodeReport{Selected: len(selected) > 0, Eligible: len(selected) > 0 && len(why) == 0}
	switch {
	case !r.Selected:
		r.Message = "no CloudAdvertisement selects this node"
	case r.Eligible:
		r.Message = fmt.Sprintf("server %s can hold the floating IPs of CloudAdvertisement %s", server, strings.Join(selected, ", "))
	default:
		r.Message = "this node cannot hold floating IPs: " + strings.Join(why, "; ")
	}
	a.mu.Lock()
	same := a.nodeReport == r
	a.nodeReport = r
	a.mu.Unlock()
	if !same {
		a.opts.NodeReport(r)
	}
}

// NodeReport is whether this node can hold floating IPs.
type NodeReport struct {
	// Selected: some CloudAdvertisement selects the node.
	Selected bool
	// Eligible: it has a cloud server for every one that does.
	Eligible bool
	Message  string
}
