// Package bgp is Herald's embedded BGP speaker. It wraps GoBGP v4 and exposes
// a small reconcile-style API: the caller states the full set of peers and
// advertisements it wants, and the package adds, updates and withdraws only
// what differs.
//
// Incoming routes are never used: the global import policy rejects every
// path, and GoBGP is never connected to zebra, so nothing reaches the
// kernel FIB.
//
// BFD: GoBGP v4 ships a partial RFC 5880/5881 implementation (single-hop,
// asynchronous mode, UDP 3784). Herald wires ReceiveInterval,
// TransmitInterval and DetectMultiplier into it. EchoMode, PassiveMode and
// MinimumTTL have no GoBGP equivalent; they are accepted and ignored, and
// Speaker logs a warning when they are set.
package bgp

import (
	"log/slog"
	"net/netip"
	"time"
)

// Config is the speaker-wide configuration.
type Config struct {
	// RouterID must be an IPv4 address (GoBGP requires one even for
	// IPv6-only speakers).
	RouterID netip.Addr
	ASN      uint32
	// ListenPort is the TCP port to accept sessions on. -1 (and 0, the zero
	// value) means do not listen: Herald only dials out, like MetalLB's
	// native speaker.
	ListenPort int32
	Logger     *slog.Logger
}

// Peer is one BGP session. Peers are identified by Name; Address must be
// unique across peers because GoBGP keys sessions by neighbour address.
type Peer struct {
	Name string
	// Address is the peer's address. For an unnumbered session it is left
	// unset and learned on Interface (see unnumbered.go).
	Address   netip.Addr
	Interface string
	Port      uint16 // 0 means 179
	// ASN is the peer's AS number; 0 when Dynamic says how to take it.
	ASN      uint32
	Dynamic  DynamicASN
	LocalASN uint32 // 0 means Config.ASN

	SourceAddress netip.Addr
	// HoldTime 0 means GoBGP's default (90 s; config never passes 0). KeepaliveTime 0 means
	// HoldTime/3. ConnectTime 0 means DefaultConnectTime.
	HoldTime, KeepaliveTime, ConnectTime time.Duration

	Password        string // TCP-MD5 (RFC 2385), Linux only
	EBGPMultiHop    bool
	GracefulRestart bool
	// DisableMP is accepted for compatibility with MetalLB, where it is
	// deprecated and has no effect; it has none here either.
	DisableMP bool
	// DualStack negotiates both IPv4 and IPv6 unicast on the session, so
	// prefixes of the other family are carried too, with OtherNextHop as
	// their next hop (this node's address of that family). Without one
	// they are not sent: GoBGP would send an IPv4-mapped IPv6 next hop,
	// which routers accept and cannot forward to. An unnumbered session
	// needs none: IPv4 goes with the link-local next hop (RFC 5549).
	DualStack    bool
	OtherNextHop netip.Addr

	BFD *BFDProfile // nil means no BFD
}

// DynamicASN takes the peer's AS number from its OPEN message.
type DynamicASN string

const (
	// DynamicInternal accepts only a peer in our own AS (iBGP).
	DynamicInternal DynamicASN = "internal"
	// DynamicExternal accepts a peer in any AS but ours (eBGP). The check
	// happens once the session is up, before any route is sent to it.
	DynamicExternal DynamicASN = "external"
)

// DefaultConnectTime is the connect-retry interval used when
// Peer.ConnectTime is zero. GoBGP's own default (120 s) makes recovery after
// a router restart needlessly slow.
const DefaultConnectTime = 5 * time.Second

// BFDProfile configures BFD for a session. See the package comment for the
// fields GoBGP cannot honour.
type BFDProfile struct {
	ReceiveInterval, TransmitInterval time.Duration
	DetectMultiplier                  uint32
	EchoMode, PassiveMode             bool
	MinimumTTL                        uint32
}

// Advertisement is one prefix to announce.
type Advertisement struct {
	Prefix netip.Prefix
	// LocalPref is sent on iBGP sessions only; 0 means not set, in which
	// case GoBGP sends the RFC 4271 customary default of 100 on iBGP.
	LocalPref        uint32
	Communities      []uint32 // standard communities, hi<<16|lo
	LargeCommunities [][3]uint32
	Peers            []string // peer names; empty means all peers
}

// PeerState is the observed state of one session.
type PeerState struct {
	Name string
	// Address is invalid for an unnumbered peer not found yet.
	Address   netip.Addr
	Interface string
	// State is one of idle, connect, active, opensent, openconfirm,
	// established.
	State      string
	Up         bool
	LastError  string
	Advertised int
	// Sent and Received count the session's messages by type.
	Sent, Received MessageCounts
	// BFDState is "" without BFD, otherwise up, down, init or admin-down.
	BFDState string
	// BFD control packets received and sent, and the times the BFD
	// session went down, since BFD last started on the session.
	BFDPacketsIn, BFDPacketsOut, BFDDownEvents uint64
}

// MessageCounts counts BGP messages by type.
type MessageCounts struct {
	Open, Update, Notification, Keepalive, Refresh, Total uint64
}

// Target names the session's other end for people: the interface of an
// unnumbered session, else the peer's address.
func (st PeerState) Target() string {
	if st.Interface != "" {
		return st.Interface
	}
	return st.Address.String()
}
