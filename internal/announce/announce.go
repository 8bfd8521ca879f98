// Package announce is the speaker's announcement loop and the seam its modes
// plug into. A mode (Layer 2, BGP, a cloud provider's floating IPs) is an
// Announcer: on each sync the loop hands it the whole desired state of the
// node, and it makes the network match. For single-owner modes the loop
// first elects, per address, the one node that announces it. What every
// mode shares (metallb_speaker_announced, the Events when a node starts or
// stops announcing a Service, the ready gate) is done here, once.
//
// Nothing here knows Kubernetes: the speaker translates objects into Inputs.
package announce

import (
	"context"
	"net/netip"

	"github.com/herald-lb/herald/internal/config"
)

// Node is what the modes need to know about a node.
type Node struct {
	Name   string
	Labels map[string]string
	// NetworkUnavailable is the NetworkUnavailable=True condition.
	NetworkUnavailable bool
	// InternalIPv4 is the node's first IPv4 InternalIP, if any.
	InternalIPv4 netip.Addr
	// ProviderID is spec.providerID ("hcloud://123").
	ProviderID string
}

// LabelExcludeLB keeps a node out of every announcement.
const LabelExcludeLB = "node.kubernetes.io/exclude-from-external-load-balancers"

// Excluded reports whether the node carries LabelExcludeLB.
func (n Node) Excluded() bool {
	_, ok := n.Labels[LabelExcludeLB]
	return ok
}

// Service is a LoadBalancer Service with addresses.
type Service struct {
	Key    string // namespace/name
	Labels map[string]string
	Addrs  []netip.Addr // status.loadBalancer.ingress, first is the election key
	Pool   string       // the pool holding the addresses
	// Local is externalTrafficPolicy: Local.
	Local bool
	// EndpointNodes are the nodes with a ready or serving endpoint.
	EndpointNodes map[string]bool
}

// Inputs is everything a sync decides from, read once per sync.
type Inputs struct {
	Config   *config.Config // the configuration in force; nil before any is valid
	Nodes    map[string]Node
	Live     map[string]bool // members alive (memberlist), or Ready nodes without it
	Services []Service
}

// Desired is what the loop hands a mode on each sync.
type Desired struct {
	Inputs Inputs
	// Node is this node's name.
	Node string
	// Ifaces are this node's interfaces, read once per sync.
	Ifaces []Iface
	// Owned are, for a single-owner mode, the announcements this node won
	// in the election; empty until the node may announce (the ready gate).
	Owned []Announcement
}

// Announced is what a mode announces after a sync: Service key to its
// addresses announced from this node.
type Announced map[string][]netip.Addr

// Announcer is one mode of announcement.
type Announcer interface {
	// Protocol names the mode in metrics and Events ("layer2", "bgp").
	Protocol() string
	// Announce makes this node announce exactly what d asks of the mode,
	// and returns what it announces now. An error is logged by the loop;
	// what the mode did announce is still reported.
	Announce(ctx context.Context, d Desired) (Announced, error)
	// Shutdown stops the mode as it must when the speaker stops. The loop
	// calls every mode's Shutdown at once, after the node has left the
	// membership, so that the next owners are already taking over.
	Shutdown(ctx context.Context)
}

// SingleOwner is a mode in which one elected node announces each address:
// Layer 2 (one node answers ARP/NDP) and cloud floating IPs (assigned to one
// server). The loop elects; the mode says who may be elected.
type SingleOwner interface {
	Announcer
	Elector
}

// Elector says who may be elected in a single-owner mode.
type Elector interface {
	// ElectionKey groups Services that must share an owner: those on one
	// address, or one floating /64.
	ElectionKey(s Service) string
	// Candidates are the nodes that may announce every Service of group,
	// with their preference weights; Why says why none may.
	Candidates(in Inputs, group []Service) Candidates
}

// Candidates are the nodes eligible for an election key.
type Candidates struct {
	Nodes []string
	// Weights rank nodes before the hash (preferredNodeSelectors); nil is
	// the plain election.
	Weights map[string]int
	// Why says why no node may announce, when Nodes is empty.
	Why string
	// Incumbent is the node that holds the key now, for modes where a move
	// costs something (a cloud API call, the connections through the old
	// node). While it is among Nodes it keeps the key, whatever the hash
	// or the weights say, so a node that joins or comes back moves
	// nothing. Empty: the plain election.
	Incumbent string
}

// Announcement is one Service's election result in a single-owner mode.
type Announcement struct {
	Service string
	Addrs   []netip.Addr
	Key     string // the election key
	// Owner is the elected node; empty when no node may announce.
	Owner string
	// Reason says why no node announces, when Owner is empty.
	Reason string
}
