package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Speaker is an embedded BGP speaker. Its methods are safe for concurrent
// use.
type Speaker struct {
	cfg    Config
	log    *slog.Logger
	errs   *sessionErrors
	events chan struct{}

	kick chan struct{} // wakes sessionLoop
	done chan struct{} // closed by Stop

	mu      sync.Mutex // serialises reconciles and guards the fields below
	srv     *server.BgpServer
	stopped bool
	peers   map[string]Peer
	// bfdOn holds the peers whose GoBGP configuration has BFD enabled now;
	// see syncSessions for why that is only while the session is up.
	bfdOn map[string]bool
	// asnOK holds the DynamicExternal peers whose established session
	// was checked to be eBGP; only those are sent routes.
	asnOK map[string]bool
	// asnRefused holds the DynamicExternal peers shut down for presenting
	// our own AS, with the problem and when.
	asnRefused map[string]asnRefusal
	// pending holds the unnumbered peers whose link has no neighbour yet.
	pending map[string]pendingPeer
	ads     []Advertisement
	paths   map[netip.Prefix]bool // prefixes present in GoBGP's RIB
	plan    plan                  // what the installed export policy sends
}

// New validates cfg and returns a speaker that is not yet running.
func New(cfg Config) (*Speaker, error) {
	if !cfg.RouterID.Unmap().Is4() {
		return nil, fmt.Errorf("router ID %v: must be an IPv4 address", cfg.RouterID)
	}
	cfg.RouterID = cfg.RouterID.Unmap()
	if cfg.ASN == 0 {
		return nil, errors.New("missing local ASN")
	}
	if cfg.ListenPort == 0 {
		cfg.ListenPort = -1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Speaker{
		cfg:    cfg,
		log:    cfg.Logger,
		errs:   newSessionErrors(),
		events: make(chan struct{}, 1),
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		peers:  make(map[string]Peer),
		bfdOn:  make(map[string]bool),
		asnOK:  make(map[string]bool),

		asnRefused: make(map[string]asnRefusal),
		pending:    make(map[string]pendingPeer),
		paths:      make(map[netip.Prefix]bool),
		plan:       make(plan),
	}, nil
}

// Start runs the BGP server. ctx bounds only the start-up calls; the server
// runs until Stop.
func (s *Speaker) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("bgp speaker already started")
	}
	// GoBGP reports dial failures only in debug logs; the capturing handler
	// turns them into PeerState.LastError while forwarding to our logger
	// only what it would have printed anyway.
	logger := slog.New(&captureHandler{next: s.log.Handler(), errs: s.errs})
	srv := server.NewBgpServer(server.LoggerOption(logger, nil))
	go srv.Serve()

	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        s.cfg.ASN,
		RouterId:   s.cfg.RouterID.String(),
		ListenPort: s.cfg.ListenPort,
	}})
	if err != nil {
		srv.Stop()
		return fmt.Errorf("start bgp: %w", err)
	}
	s.srv = srv
	if err := s.installPolicy(ctx, nil, s.plan); err != nil {
		return err
	}
	for _, a := range []*api.PolicyAssignment{
		{
			Direction:     api.PolicyDirection_POLICY_DIRECTION_EXPORT,
			Policies:      []*api.Policy{{Name: exportPolicyName}},
			DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
		},
		// Received routes are never used: reject them all so they do not
		// even enter the RIB. GoBGP runs locally originated paths through
		// the global import policy too, hence importPolicy's exception.
		{
			Direction:     api.PolicyDirection_POLICY_DIRECTION_IMPORT,
			Policies:      []*api.Policy{{Name: importPolicyName}},
			DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
		},
	} {
		if err := srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: a}); err != nil {
			return fmt.Errorf("assign %s policy: %w", a.Direction, err)
		}
	}

	// The watch lives as long as the server; StopBgp ends it.
	err = srv.WatchEvent(context.Background(), server.WatchEventMessageCallbacks{
		OnPeerUpdate: s.onPeerEvent,
	}, server.WatchPeer())
	if err != nil {
		return fmt.Errorf("watch peer events: %w", err)
	}
	go s.sessionLoop()
	return nil
}

// Stop closes every session with a Cease NOTIFICATION (all at once, not
// one by one) and stops the server. Graceful restart is not invoked: the
// peers withdraw our routes immediately.
func (s *Speaker) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil || s.stopped {
		return nil
	}
	s.stopped = true
	close(s.done)
	done := make(chan struct{})
	go func() {
		s.srv.Stop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop bgp: %w", ctx.Err())
	}
}

// Events delivers a value after peer state changes. Notifications
// coalesce: a reader that falls behind sees one, then calls Peers.
func (s *Speaker) Events() <-chan struct{} { return s.events }

func (s *Speaker) notify() {
	select {
	case s.events <- struct{}{}:
	default:
	}
}

func (s *Speaker) running() error {
	if s.srv == nil {
		return errors.New("bgp speaker not started")
	}
	if s.stopped {
		return errors.New("bgp speaker stopped")
	}
	return nil
}

// SetPeers reconciles sessions with peers: new peers are added, peers that
// are gone are deleted, and peers whose session configuration changed are
// re-created. An unchanged peer's session is not touched.
func (s *Speaker) SetPeers(ctx context.Context, peers []Peer) error {
	if err := validatePeers(peers); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.running(); err != nil {
		return err
	}
	want := make(map[string]Peer, len(peers))
	for _, p := range peers {
		// An unnumbered peer keeps the address already learned on its link.
		if old, ok := s.peers[p.Name]; ok && p.Interface != "" && old.Interface == p.Interface {
			p.Address = old.Address
		}
		want[p.Name] = p
	}
	for name := range s.pending {
		delete(s.pending, name) // tried again below, with the new settings
	}

	// Deletions go first so that an address moving from one peer name to
	// another is free again when it is added.
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(s.peers)) {
		old := s.peers[name]
		if p, ok := want[name]; ok && sessionEqual(old, p) {
			// A BFD profile change reaches GoBGP without resetting the
			// session (GoBGP updates its BFD peer in place).
			if !bfdEqual(old.BFD, p.BFD) {
				s.peers[name] = p
				if err := s.applyBFD(ctx, p, s.bfdOn[name] && p.BFD != nil); err != nil {
					errs = append(errs, err)
				}
			}
			continue
		}
		if err := s.deletePeer(ctx, old); err != nil {
			errs = append(errs, err)
		}
	}

	var added []Peer
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if _, ok := s.peers[name]; !ok {
			added = append(added, want[name])
		}
	}
	if err := s.addPeers(ctx, added); err != nil {
		errs = append(errs, err)
	}
	s.notify()
	return errors.Join(errs...)
}

// deletePeer removes p's session. s.mu is held.
func (s *Speaker) deletePeer(ctx context.Context, p Peer) error {
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: p.Address.Unmap().String()}); err != nil {
		return fmt.Errorf("delete peer %q: %w", p.Name, err)
	}
	s.errs.clear(p.Address.Unmap())
	delete(s.peers, p.Name)
	delete(s.plan, p.Name)
	delete(s.bfdOn, p.Name)
	delete(s.asnOK, p.Name)
	delete(s.asnRefused, p.Name)
	return nil
}

// addPeers starts sessions with peers. An unnumbered peer whose address
// is not known yet waits in s.pending; syncSessions tries it again. s.mu
// is held.
func (s *Speaker) addPeers(ctx context.Context, peers []Peer) error {
	var errs []error
	var added []Peer
	for _, p := range peers {
		if p.Interface != "" && !p.Address.IsValid() {
			addr, err := linkLocalNeighbour(p.Interface)
			if err != nil {
				s.pending[p.Name] = pendingPeer{peer: p, err: err}
				if err := announceOnLink(p.Interface); err != nil {
					s.log.Warn("unnumbered peer", "peer", p.Name, "error", err)
				}
				// The answers to the announcement take a round trip;
				// look again soon rather than at the next tick.
				time.AfterFunc(200*time.Millisecond, s.kickSessions)
				continue
			}
			p.Address = addr
		}
		added = append(added, p)
	}
	// The export policy must cover a peer before its session can come up,
	// or the first UPDATEs would be computed without it.
	next := make(map[string]Peer, len(s.peers)+len(added))
	maps.Copy(next, s.peers)
	for _, p := range added {
		next[p.Name] = p
	}
	if err := s.syncPolicy(ctx, next); err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, p := range added {
		if p.BFD != nil && (p.BFD.EchoMode || p.BFD.PassiveMode || p.BFD.MinimumTTL != 0) {
			s.log.Warn("BFD echo mode, passive mode and minimum TTL are not supported by GoBGP; ignoring them", "peer", p.Name)
		}
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.cfg.apiPeer(p, false)}); err != nil {
			errs = append(errs, fmt.Errorf("add peer %q: %w", p.Name, err))
			continue
		}
		s.peers[p.Name] = p
		if p.Interface != "" {
			s.log.Info("unnumbered peer found", "peer", p.Name, "interface", p.Interface, "address", p.Address)
		}
	}
	return errors.Join(errs...)
}

// pendingPeer is an unnumbered peer waiting for its address.
type pendingPeer struct {
	peer Peer
	err  error
}

// SetAdvertisements reconciles the advertised routes with ads: prefixes no
// longer listed are withdrawn, new ones announced, and peers whose set of
// routes or attributes changed are re-sent their routes.
func (s *Speaker) SetAdvertisements(ctx context.Context, ads []Advertisement) error {
	ads, err := normalizeAds(ads)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.running(); err != nil {
		return err
	}
	want := make(map[netip.Prefix]bool, len(ads))
	for _, ad := range ads {
		want[ad.Prefix] = true
	}

	// Withdraw first, then change the policy, then announce: at no point is
	// a route sent with attributes or to peers it should not have.
	var gone []*apiutil.Path
	var gonePfx []netip.Prefix
	for pfx := range s.paths {
		if want[pfx] {
			continue
		}
		p, err := localPath(pfx)
		if err != nil {
			return err
		}
		gone = append(gone, p)
		gonePfx = append(gonePfx, pfx)
	}
	if len(gone) > 0 {
		if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: gone}); err != nil {
			return fmt.Errorf("withdraw %d routes: %w", len(gone), err)
		}
		for _, pfx := range gonePfx {
			delete(s.paths, pfx)
		}
	}

	s.ads = ads
	if err := s.syncPolicy(ctx, s.peers); err != nil {
		return err
	}

	var fresh []*apiutil.Path
	var freshPfx []netip.Prefix
	for _, pfx := range slices.SortedFunc(maps.Keys(want), netip.Prefix.Compare) {
		if s.paths[pfx] {
			continue
		}
		p, err := localPath(pfx)
		if err != nil {
			return err
		}
		fresh = append(fresh, p)
		freshPfx = append(freshPfx, pfx)
	}
	if len(fresh) > 0 {
		if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: fresh}); err != nil {
			return fmt.Errorf("announce %d routes: %w", len(fresh), err)
		}
		for _, pfx := range freshPfx {
			s.paths[pfx] = true
		}
	}
	return nil
}

// syncPolicy installs the export policy for peers and the current
// advertisements, and re-sends routes to established peers whose routes
// changed.
func (s *Speaker) syncPolicy(ctx context.Context, peers map[string]Peer) error {
	next := buildPlan(s.cfg, s.exportable(peers), s.ads)
	changed := changedPeers(s.plan, next)
	if len(changed) == 0 && len(next) == len(s.plan) {
		return nil
	}
	if err := s.installPolicy(ctx, peers, next); err != nil {
		return err
	}
	s.plan = next
	for _, name := range changed {
		p, ok := s.peers[name]
		if !ok {
			continue // not yet added; its session starts with the new policy
		}
		err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{
			Address:   p.Address.Unmap().String(),
			Soft:      true,
			Direction: api.ResetPeerRequest_DIRECTION_OUT,
		})
		if err != nil {
			return fmt.Errorf("peer %q: re-send routes: %w", name, err)
		}
	}
	return nil
}

func (s *Speaker) installPolicy(ctx context.Context, peers map[string]Peer, pl plan) error {
	sets, pol := exportPolicy(peers, pl)
	err := s.srv.SetPolicies(ctx, &api.SetPoliciesRequest{DefinedSets: sets, Policies: []*api.Policy{importPolicy(), pol}})
	if err != nil {
		return fmt.Errorf("install export policy: %w", err)
	}
	return nil
}

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
		delete(s.pending, name)
	}
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
		p.Address = netip.Addr{}
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
