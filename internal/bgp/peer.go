package bgp

import (
	"fmt"
	"time"

	api "github.com/osrg/gobgp/v4/api"
)

// gracefulRestartTime is the restart time advertised in the graceful
// restart capability (RFC 4724); 120 s is FRR's and GoBGP's customary value.
const gracefulRestartTime = 120

// validatePeers checks what GoBGP would otherwise reject later, or worse,
// accept ambiguously.
func validatePeers(peers []Peer) error {
	names := make(map[string]bool, len(peers))
	targets := make(map[string]string, len(peers))
	for _, p := range peers {
		if p.Name == "" {
			return fmt.Errorf("peer %s: empty name", p.Address)
		}
		if names[p.Name] {
			return fmt.Errorf("peer %q: duplicate name", p.Name)
		}
		names[p.Name] = true
		// One session per address, or per interface when unnumbered.
		target := "address " + p.Address.Unmap().String()
		switch {
		case p.Interface != "" && p.Address.IsValid():
			return fmt.Errorf("peer %q: both an address and an interface", p.Name)
		case p.Interface != "":
			target = "interface " + p.Interface
		case !p.Address.IsValid():
			return fmt.Errorf("peer %q: invalid address", p.Name)
		}
		if other, ok := targets[target]; ok {
			return fmt.Errorf("peer %q: %s already used by peer %q", p.Name, target, other)
		}
		targets[target] = p.Name
		switch {
		case p.ASN == 0 && p.Dynamic == "":
			return fmt.Errorf("peer %q: missing peer ASN", p.Name)
		case p.ASN != 0 && p.Dynamic != "":
			return fmt.Errorf("peer %q: both a peer ASN and dynamic ASN %q", p.Name, p.Dynamic)
		case p.Dynamic != "" && p.Dynamic != DynamicInternal && p.Dynamic != DynamicExternal:
			return fmt.Errorf("peer %q: dynamic ASN %q is neither internal nor external", p.Name, p.Dynamic)
		}
		if p.OtherNextHop.IsValid() && p.OtherNextHop.Unmap().Is4() == p.Address.Unmap().Is4() {
			return fmt.Errorf("peer %q: next hop %s for the other family is of the session's family", p.Name, p.OtherNextHop)
		}
		if p.SourceAddress.IsValid() && p.SourceAddress.Unmap().Is4() != p.Address.Unmap().Is4() {
			return fmt.Errorf("peer %q: source address %s and peer address %s are of different families", p.Name, p.SourceAddress, p.Address)
		}
		if p.HoldTime != 0 && p.HoldTime < 3*time.Second {
			return fmt.Errorf("peer %q: hold time %s is below 3s", p.Name, p.HoldTime)
		}
		if p.KeepaliveTime > 0 && p.HoldTime > 0 && p.KeepaliveTime > p.HoldTime {
			return fmt.Errorf("peer %q: keepalive time %s exceeds hold time %s", p.Name, p.KeepaliveTime, p.HoldTime)
		}
		if b := p.BFD; b != nil && b.DetectMultiplier > 255 {
			return fmt.Errorf("peer %q: BFD detect multiplier %d exceeds 255", p.Name, b.DetectMultiplier)
		}
	}
	return nil
}

// sessionEqual reports whether two configurations of the same named peer
// produce the same session, so that the session can be left alone. Every
// field that reaches GoBGP's session counts; DisableMP has no effect and
// does not, and BFD is changed in place (see SetPeers).
func sessionEqual(a, b Peer) bool {
	a.DisableMP, b.DisableMP = false, false
	a.BFD, b.BFD = nil, nil
	return a == b
}

// bfdEqual reports whether two BFD settings are the same.
func bfdEqual(ab, bb *BFDProfile) bool {
	switch {
	case ab == nil && bb == nil:
		return true
	case ab == nil || bb == nil:
		return false
	default:
		return *ab == *bb
	}
}

// isIBGP reports whether the session with p is internal.
func (c Config) isIBGP(p Peer) bool {
	if p.Dynamic != "" {
		return p.Dynamic == DynamicInternal
	}
	return p.ASN == c.localASN(p)
}

// peerASN is the AS number GoBGP expects from p: 0 lets it accept any,
// which DynamicExternal then checks.
func (c Config) peerASN(p Peer) uint32 {
	if p.Dynamic == DynamicInternal {
		return c.localASN(p)
	}
	return p.ASN
}

func (c Config) localASN(p Peer) uint32 {
	if p.LocalASN != 0 {
		return p.LocalASN
	}
	return c.ASN
}

// families returns the address families negotiated with p.
func (p Peer) families() []*api.Family {
	v4 := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	v6 := &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	switch {
	case p.DualStack:
		return []*api.Family{v4, v6}
	case p.Address.Unmap().Is4():
		return []*api.Family{v4}
	default:
		return []*api.Family{v6}
	}
}

// carries reports whether prefixes of pfx's family go to p.
func (p Peer) carries(is4 bool) bool {
	if p.Address.Unmap().Is4() == is4 {
		return true
	}
	// An unnumbered session sends IPv4 with its IPv6 link-local next hop
	// (RFC 5549, negotiated by GoBGP's extended next hop capability).
	return p.DualStack && (p.OtherNextHop.IsValid() || p.Interface != "")
}

func seconds(d time.Duration) uint64 {
	return uint64(d.Round(time.Second) / time.Second)
}

// apiPeer converts p to GoBGP's neighbour configuration, with p's BFD
// profile when bfd is true.
func (c Config) apiPeer(p Peer, bfd bool) *api.Peer {
	addr := p.Address.Unmap()
	port := uint32(p.Port)
	if port == 0 {
		port = 179
	}
	connect := p.ConnectTime
	if connect == 0 {
		connect = DefaultConnectTime
	}
	// A reset session is retried after the connect time too, not after
	// GoBGP's default 30 s: a BFD session still coming up can reset a
	// fresh BGP session once, and the LAN should not wait half a minute.
	timers := &api.TimersConfig{ConnectRetry: seconds(connect), IdleHoldTimeAfterReset: max(seconds(connect), 1)}
	if p.HoldTime > 0 {
		timers.HoldTime = seconds(p.HoldTime)
		keepalive := p.KeepaliveTime
		if keepalive == 0 {
			keepalive = p.HoldTime / 3
		}
		timers.KeepaliveInterval = max(seconds(keepalive), 1)
	} else if p.KeepaliveTime > 0 {
		timers.KeepaliveInterval = seconds(p.KeepaliveTime)
		timers.HoldTime = 3 * timers.KeepaliveInterval
	}

	out := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: addr.String(),
			PeerAsn:         c.peerASN(p),
			LocalAsn:        c.localASN(p),
			AuthPassword:    p.Password,
			Description:     p.Name,
		},
		Timers: &api.Timers{Config: timers},
		Transport: &api.Transport{
			RemotePort: port,
			// Herald never accepts sessions (see Config.ListenPort), so the
			// neighbour is always dialled.
			PassiveMode: false,
		},
	}
	if p.SourceAddress.IsValid() {
		out.Transport.LocalAddress = p.SourceAddress.Unmap().String()
	}
	if p.EBGPMultiHop {
		out.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: 255}
	}
	if p.GracefulRestart {
		out.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: gracefulRestartTime}
	}
	for _, f := range p.families() {
		as := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}}
		if p.GracefulRestart {
			as.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
		out.AfiSafis = append(out.AfiSafis, as)
	}
	if b := p.BFD; b != nil && bfd {
		out.Bfd = &api.BfdPeerConfig{
			Enabled:                  true,
			DesiredMinimumTxInterval: uint32(b.TransmitInterval / time.Microsecond),
			RequiredMinimumReceive:   uint32(b.ReceiveInterval / time.Microsecond),
			DetectionMultiplier:      b.DetectMultiplier,
		}
	}
	return out
}
