package bgp

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// Peers reports the state of every configured peer, sorted by name.
func (s *Speaker) Peers() []PeerState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PeerState, 0, len(s.peers))
	if s.srv == nil {
		return out
	}
	byAddr := make(map[netip.Addr]*api.Peer, len(s.peers))
	if !s.stopped {
		// A failure here leaves every peer reported as idle, which is what
		// an unreachable server amounts to.
		_ = s.srv.ListPeer(context.Background(), &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
			if p.GetConf() == nil {
				return
			}
			if a, err := netip.ParseAddr(p.GetConf().GetNeighborAddress()); err == nil {
				byAddr[a.Unmap()] = p
			}
		})
	}
	for _, name := range slices.Sorted(maps.Keys(s.peers)) {
		cfg := s.peers[name]
		addr := cfg.Address.Unmap()
		st := PeerState{Name: name, Address: cfg.Address, Interface: cfg.Interface, State: "idle"}
		if p, ok := byAddr[addr]; ok {
			fillState(&st, p)
		}
		if cfg.BFD != nil && st.BFDState == "" {
			st.BFDState = "down" // BFD starts once the session is up
		}
		if !st.Up {
			st.LastError = s.errs.get(addr, cfg.Password != "")
		}
		if r, ok := s.asnRefused[name]; ok {
			st.Up, st.LastError = false, r.problem
		}
		out = append(out, st)
	}
	for _, name := range slices.Sorted(maps.Keys(s.pending)) {
		pp := s.pending[name]
		out = append(out, PeerState{Name: name, Interface: pp.peer.Interface, State: "idle", LastError: pp.err.Error()})
	}
	slices.SortFunc(out, func(a, b PeerState) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func fillState(st *PeerState, p *api.Peer) {
	ps := p.GetState()
	st.State = sessionStateName(ps.GetSessionState())
	st.Up = ps.GetSessionState() == api.PeerState_SESSION_STATE_ESTABLISHED
	st.Sent = messageCounts(ps.GetMessages().GetSent())
	st.Received = messageCounts(ps.GetMessages().GetReceived())
	for _, as := range p.GetAfiSafis() {
		st.Advertised += int(as.GetState().GetAdvertised())
	}
	if p.GetBfd().GetEnabled() {
		b := ps.GetBfdState()
		st.BFDState = bfdStateName(b.GetSessionState())
		st.BFDPacketsIn = b.GetBfdAsync().GetReceivedPackets()
		st.BFDPacketsOut = b.GetBfdAsync().GetTransmittedPackets()
		st.BFDDownEvents = b.GetFailureTransitions()
	}
}

func messageCounts(m *api.Message) MessageCounts {
	return MessageCounts{Open: m.GetOpen(), Update: m.GetUpdate(), Notification: m.GetNotification(),
		Keepalive: m.GetKeepalive(), Refresh: m.GetRefresh(), Total: m.GetTotal()}
}

func sessionStateName(s api.PeerState_SessionState) string {
	switch s {
	case api.PeerState_SESSION_STATE_CONNECT:
		return "connect"
	case api.PeerState_SESSION_STATE_ACTIVE:
		return "active"
	case api.PeerState_SESSION_STATE_OPENSENT:
		return "opensent"
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return "openconfirm"
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return "established"
	default:
		return "idle"
	}
}

func fsmStateName(s bgp.FSMState) string {
	switch s {
	case bgp.BGP_FSM_CONNECT:
		return "connect"
	case bgp.BGP_FSM_ACTIVE:
		return "active"
	case bgp.BGP_FSM_OPENSENT:
		return "opensent"
	case bgp.BGP_FSM_OPENCONFIRM:
		return "openconfirm"
	case bgp.BGP_FSM_ESTABLISHED:
		return "established"
	default:
		return "idle"
	}
}

func bfdStateName(s api.BfdSessionState) string {
	switch s {
	case api.BfdSessionState_BFD_SESSION_STATE_UP:
		return "up"
	case api.BfdSessionState_BFD_SESSION_STATE_INIT:
		return "init"
	case api.BfdSessionState_BFD_SESSION_STATE_ADMIN_DOWN:
		return "admin-down"
	default:
		return "down"
	}
}

// disconnectError describes why an established or opening session went
// down, in the words operators search for.
func disconnectError(r api.PeerState_DisconnectReason, msg string) string {
	var what string
	switch r {
	// The idle hold timer expiring is the FSM moving on to its next
	// connection attempt, not a disconnect: reporting it would overwrite
	// the dial error (refused, TCP-MD5 timeout) that explains the failure.
	case api.PeerState_DISCONNECT_REASON_UNSPECIFIED, api.PeerState_DISCONNECT_REASON_DECONFIGURED,
		api.PeerState_DISCONNECT_REASON_IDLE_TIMER_EXPIRED:
		return ""
	case api.PeerState_DISCONNECT_REASON_BAD_PEER_AS:
		what = "ASN mismatch (bad peer AS)"
	case api.PeerState_DISCONNECT_REASON_HOLD_TIMER_EXPIRED:
		what = "hold timer expired"
	case api.PeerState_DISCONNECT_REASON_NOTIFICATION_RECEIVED:
		what = "notification received"
		if strings.Contains(strings.ToLower(msg), "bad peer as") {
			what = "ASN mismatch (bad peer AS)"
		}
	case api.PeerState_DISCONNECT_REASON_NOTIFICATION_SENT:
		what = "notification sent"
	case api.PeerState_DISCONNECT_REASON_READ_FAILED, api.PeerState_DISCONNECT_REASON_WRITE_FAILED:
		what = "connection lost"
	case api.PeerState_DISCONNECT_REASON_INVALID_MSG:
		// GoBGP reports a NOTIFICATION received in OPENCONFIRM this way,
		// which is how a router refuses the AS this node presents.
		what = "invalid message, or a NOTIFICATION during the OPEN exchange (as from a router that expects another AS from this node: check myASN or localASN)"
		if msg == "invalid-msg" {
			msg = ""
		}
	case api.PeerState_DISCONNECT_REASON_ADMIN_DOWN:
		what = "administratively down"
	default:
		what = strings.ToLower(strings.TrimPrefix(r.String(), "DISCONNECT_REASON_"))
	}
	if msg == "" {
		return what
	}
	return what + ": " + msg
}

func (s *Speaker) onPeerEvent(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	addr := ev.Peer.State.NeighborAddress.Unmap()
	if ev.Peer.State.SessionState == bgp.BGP_FSM_ESTABLISHED {
		s.errs.clear(addr)
	} else if e := disconnectError(ev.Peer.State.DisconnectReason, ev.Peer.State.DisconnectMessage); e != "" {
		s.errs.set(addr, e)
	}
	s.log.Debug("bgp session state", "peer", addr, "state", fsmStateName(ev.Peer.State.SessionState))
	s.kickSessions()
	s.notify()
}

// sessionErrors holds the last error seen per neighbour address.
type sessionErrors struct {
	mu   sync.Mutex
	last map[netip.Addr]error
}

func newSessionErrors() *sessionErrors {
	return &sessionErrors{last: make(map[netip.Addr]error)}
}

func (e *sessionErrors) set(addr netip.Addr, msg string) { e.setErr(addr, errors.New(msg)) }

func (e *sessionErrors) setErr(addr netip.Addr, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.last[addr] = err
}

func (e *sessionErrors) clear(addr netip.Addr) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.last, addr)
}

func (e *sessionErrors) get(addr netip.Addr, md5 bool) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.last[addr]
	if err == nil {
		return ""
	}
	return describeDialError(err.Error(), md5)
}

// describeDialError names the usual causes. A TCP-MD5 mismatch is silent
// on the wire (the peer's kernel drops our SYNs), so with a password set a
// connect timeout most likely means authentication failed.
func describeDialError(msg string, md5 bool) string {
	switch {
	case strings.Contains(msg, syscall.ECONNREFUSED.Error()):
		return "connection refused: " + msg
	case md5 && (strings.Contains(msg, "i/o timeout") || strings.Contains(msg, os.ErrDeadlineExceeded.Error())):
		return "connect timeout, TCP-MD5 authentication likely failed: " + msg
	default:
		return msg
	}
}

// captureHandler forwards GoBGP's log records to next and records the dial
// errors that GoBGP logs, at debug level only, per neighbour address.
type captureHandler struct {
	next slog.Handler
	errs *sessionErrors
	peer netip.Addr // from the logger's "Key" attribute, set per neighbour
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.peer.IsValid() {
		return h.forward(ctx, r)
	}
	switch r.Message {
	case "failed to connect":
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "Error" {
				h.errs.set(h.peer, a.Value.String())
				return false
			}
			return true
		})
	case "sent notification", "received notification":
		// An OPEN refused by either side changes no state GoBGP reports:
		// the session goes from connecting back to connecting.
		var code, sub int64
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "Code":
				code = a.Value.Int64()
			case "Subcode":
				sub = a.Value.Int64()
			}
			return true
		})
		if e := openError(code, sub, r.Message == "sent notification"); e != "" {
			h.errs.set(h.peer, e)
		}
	}
	return h.forward(ctx, r)
}

// openError describes an OPEN message error NOTIFICATION (RFC 4271 §6.2)
// in an operator's words, or returns "" for other notifications.
func openError(code, sub int64, sent bool) string {
	if code != bgp.BGP_ERROR_OPEN_MESSAGE_ERROR {
		return ""
	}
	if sub == bgp.BGP_ERROR_SUB_BAD_PEER_AS {
		if sent {
			return "ASN mismatch (bad peer AS): the peer's OPEN carries another AS than peerASN"
		}
		return "ASN mismatch (bad peer AS): the peer expects another AS from this node (myASN, or localASN)"
	}
	what := bgp.NewNotificationErrorCode(uint8(code), uint8(sub)).String()
	if sent {
		return "OPEN refused: " + what
	}
	return "OPEN refused by the peer: " + what
}

func (h *captureHandler) forward(ctx context.Context, r slog.Record) error {
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *captureHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	for _, a := range attrs {
		if a.Key == "Key" {
			if addr, err := netip.ParseAddr(a.Value.String()); err == nil {
				c.peer = addr.Unmap()
			}
		}
	}
	return &c
}

func (h *captureHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}
