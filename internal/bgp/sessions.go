package bgp

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	api "github.com/osrg/gobgp/v4/api"
)

// What depends on a session being up: BFD, the dynamicASN check, and
// finding unnumbered peers.

// exportable returns the peers that may be sent routes: all but the
// DynamicExternal peers whose session is not checked to be eBGP.
func (s *Speaker) exportable(peers map[string]Peer) map[string]Peer {
	out := make(map[string]Peer, len(peers))
	for name, p := range peers {
		if p.Dynamic != DynamicExternal || s.asnOK[name] {
			out[name] = p
		}
	}
	return out
}

// asnRefusal is a DynamicExternal peer shut down for presenting our AS.
type asnRefusal struct {
	problem string
	at      time.Time
}

// asnRetry is how long a refused DynamicExternal peer stays shut down
// before it is tried again, in case the router's configuration changed.
const asnRetry = 30 * time.Second

// sessionLoop runs syncSessions after peer events, and every few seconds
// for the retries, until Stop.
func (s *Speaker) sessionLoop() {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-s.kick:
		case <-t.C:
		}
		s.syncSessions(context.Background())
	}
}

func (s *Speaker) kickSessions() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// syncSessions does what depends on a session being established.
//
// BFD is enabled on a session only while it is established. Enabled with
// the session, FRR signalled BFD down about a second after BGP came up
// (most likely bgpd re-registering its BFD session with the local address),
// and GoBGP resets the BGP session on any signalled down, AdminDown
// included (RFC 5882 §3.2 says AdminDown must not): every fresh session
// was reset once. BFD detects the loss of an established session's path;
// before then there is nothing for it to protect.
//
// A DynamicExternal peer is configured in GoBGP with no peer AS, which
// accepts any; its AS is checked here once the session is up, and routes
// are sent to it only when the check passes. A peer in our own AS is shut
// down with a Cease that says why, and tried again after asnRetry.
func (s *Speaker) syncSessions(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running() != nil {
		return
	}
	remoteAS := make(map[netip.Addr]uint32) // established sessions only
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.GetState().GetSessionState() != api.PeerState_SESSION_STATE_ESTABLISHED {
			return
		}
		if a, err := netip.ParseAddr(p.GetConf().GetNeighborAddress()); err == nil {
			remoteAS[a.Unmap()] = p.GetState().GetPeerAsn()
		}
	})
	if err != nil {
		s.log.Warn("list peers", "error", err)
		return
	}
	s.retryUnnumbered(ctx, remoteAS)
	policy := false
	for _, name := range slices.Sorted(maps.Keys(s.peers)) {
		p := s.peers[name]
		as, up := remoteAS[p.Address.Unmap()]
		if on := p.BFD != nil && up; on != s.bfdOn[name] {
			if err := s.applyBFD(ctx, p, on); err != nil {
				s.log.Warn("BFD", "peer", name, "error", err)
			}
		}
		if p.Dynamic != DynamicExternal {
			continue
		}
		if r, ok := s.asnRefused[name]; ok {
			if time.Since(r.at) < asnRetry {
				continue
			}
			if err := s.srv.EnablePeer(ctx, &api.EnablePeerRequest{Address: p.Address.Unmap().String()}); err != nil {
				s.log.Warn("re-enable peer", "peer", name, "error", err)
				continue
			}
			delete(s.asnRefused, name)
		}
		ok := up && as != s.cfg.localASN(p)
		if up && !ok {
			problem := fmt.Sprintf("dynamicASN is external, but the peer presents AS %d, this node's own (iBGP); shut down, retried every %s", as, asnRetry)
			s.log.Warn("refusing peer", "peer", name, "problem", problem)
			if err := s.srv.DisablePeer(ctx, &api.DisablePeerRequest{Address: p.Address.Unmap().String(), Communication: problem}); err != nil {
				s.log.Warn("shut down peer", "peer", name, "error", err)
			}
			s.asnRefused[name] = asnRefusal{problem: problem, at: time.Now()}
		}
		if ok != s.asnOK[name] {
			if ok {
				s.asnOK[name] = true
			} else {
				delete(s.asnOK, name)
			}
			policy = true
		}
	}
	if policy {
		if err := s.syncPolicy(ctx, s.peers); err != nil {
			s.log.Warn("export policy", "error", err)
		}
	}
}

// retryUnnumbered looks again for the neighbour of the unnumbered peers
// that wait for one, and of those whose session is down: the router may
// have been replaced, with a new link-local address. up holds the
// established sessions. s.mu is held.
func (s *Speaker) retryUnnumbered(ctx context.Context, up map[netip.Addr]uint32) {
	var retry []Peer
	for _, name := range slices.Sorted(maps.Keys(s.pending)) {
		retry = append(retry, s.pending[name].peer)
	}
	clear(s.pending) // addPeers puts back those still without a neighbour
	for _, name := range slices.Sorted(maps.Keys(s.peers)) {
		p := s.peers[name]
		if _, ok := up[p.Address.Unmap()]; ok || p.Interface == "" {
			continue
		}
		addr, err := linkLocalNeighbour(p.Interface)
		if err != nil || addr == p.Address {
			if err := announceOnLink(p.Interface); err != nil {
				s.log.Warn("unnumbered peer", "peer", name, "error", err)
			}
			continue
		}
		s.log.Info("unnumbered peer moved", "peer", name, "interface", p.Interface, "from", p.Address, "to", addr)
		if err := s.deletePeer(ctx, p); err != nil {
			s.log.Warn("unnumbered peer", "peer", name, "error", err)
			continue
		}
		p.Address = addr // found already: addPeers need not look again
		retry = append(retry, p)
	}
	if len(retry) > 0 {
		if err := s.addPeers(ctx, retry); err != nil {
			s.log.Warn("unnumbered peers", "error", err)
		}
		s.notify()
	}
}

// applyBFD sets p's BFD in GoBGP to on, with p's profile. s.mu is held.
func (s *Speaker) applyBFD(ctx context.Context, p Peer, on bool) error {
	if !on && !s.bfdOn[p.Name] {
		return nil
	}
	if _, err := s.srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: s.cfg.apiPeer(p, on)}); err != nil {
		return fmt.Errorf("peer %q: set BFD %v: %w", p.Name, on, err)
	}
	if on {
		s.bfdOn[p.Name] = true
	} else {
		delete(s.bfdOn, p.Name)
	}
	s.log.Debug("bfd", "peer", p.Name, "enabled", on)
	return nil
}
