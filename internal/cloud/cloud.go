// Package cloud is what Herald needs from a cloud's floating IPs, whatever
// the cloud: read which server an IP is assigned to, assign it to another
// server and wait for that to take effect, and find a node's server. On
// such clouds (Hetzner Cloud floating IPs; later DigitalOcean reserved IPs,
// Vultr reserved IPs, Scaleway flexible IPs) ARP, NDP and BGP reach no one:
// the provider's network delivers an address only to the server its API has
// it assigned to.
//
// Around a Provider the package puts the rules that keep Herald a good API
// citizen: errors sorted into permanent (reported, never retried in a loop)
// and retryable (backed off with jitter, a bounded number of times), a
// request budget read from the API's rate-limit headers, an Owner that acts
// only when needed and never unassigns, and an Arbiter so that two nodes
// that both believe they own an IP never assign it back and forth.
//
// Which node owns an IP is the speaker's election, not this package's. The
// package knows nothing of Kubernetes.
package cloud

import (
	"context"
	"net/netip"
)

// Provider is one cloud's floating-IP API. Implementations return errors
// as *APIError where the API answered with an error or could not be reached,
// so Classify can sort them.
type Provider interface {
	// FloatingIP reads the floating IP id: its address and the server it is
	// assigned to.
	FloatingIP(ctx context.Context, id string) (FloatingIP, error)
	// FloatingIPs lists the project's floating IPs, to find which one holds
	// a Service's address.
	FloatingIPs(ctx context.Context) ([]FloatingIP, error)
	// Assign assigns the floating IP id to server and returns once the
	// cloud reports the assignment done, or ctx ends.
	Assign(ctx context.Context, id, server string) error
	// Servers lists the project's servers, to find the server of a node
	// that has no spec.providerID by its name.
	Servers(ctx context.Context) ([]Server, error)
}

// FloatingIP is a provider's floating IP.
type FloatingIP struct {
	ID string
	// Prefix is the address (a /32) or, for IPv6, the whole network that
	// moves as one (a /64 on Hetzner).
	Prefix netip.Prefix
	// Server is the ID of the server the IP is assigned to; empty when
	// unassigned.
	Server string
}

// Server is one of the project's servers.
type Server struct {
	ID, Name string
}
