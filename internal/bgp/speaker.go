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
	clear(s.pending) // tried again below, with the new settings

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
