package config

import (
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/api/v1beta2"
)

// BGP defaults.
const (
	DefaultPeerPort = 179
	DefaultHoldTime = 90 * time.Second
	// MaxPeerPort is the CRD's limit (MetalLB's, inherited as is).
	MaxPeerPort = 16384
	// minHoldTime is RFC 4271's smallest non-zero hold time.
	minHoldTime = 3 * time.Second
	// maxHoldTime is the largest hold time the OPEN message's 16-bit field
	// carries; a longer one would be sent truncated (65536s as 0, no hold
	// timer at all).
	maxHoldTime = 65535 * time.Second
)

// Peer is a validated BGPPeer with its timers resolved.
type Peer struct {
	Name  string
	MyASN uint32
	// ASN is the peer's AS number; 0 when DynamicASN is set.
	ASN uint32
	// DynamicASN is "internal", "external" or "".
	DynamicASN string
	// LocalASN, when not 0, is presented to the peer instead of MyASN.
	LocalASN uint32
	// Address is the peer's address; not valid when Interface is set.
	Address netip.Addr
	// Interface is the interface of an unnumbered session, or "".
	Interface string
	// SourceAddress is the local address to use; not valid when unset.
	SourceAddress netip.Addr
	Port          uint16
	// HoldTime and KeepaliveTime are whole seconds, never 0: a holdTime
	// of 0 is warned about and applies as if unset.
	HoldTime      time.Duration
	KeepaliveTime time.Duration
	// ConnectTime is the wait between connection attempts; 0 means the BGP
	// implementation's default.
	ConnectTime time.Duration
	// RouterID is the BGP identifier; not valid when unset.
	RouterID      netip.Addr
	NodeSelectors []labels.Selector
	// Password is the TCP MD5 password, from spec.password or read from the
	// Secret named by spec.passwordSecret.
	Password string
	// PasswordSecret is the name of the Secret the password came from, or "".
	PasswordSecret         string
	BFDProfile             string
	EnableGracefulRestart  bool
	EBGPMultiHop           bool
	DisableMP              bool
	DualStackAddressFamily bool
}

// MatchesNode reports whether a node with these labels opens the session.
func (p *Peer) MatchesNode(nodeLabels map[string]string) bool {
	return matchesAll(p.NodeSelectors, nodeLabels)
}

// IBGP reports whether the session is internal BGP (the peer is in the same
// AS).
func (p *Peer) IBGP() bool {
	if p.DynamicASN != "" {
		return p.DynamicASN == string(v1beta2.InternalASNMode)
	}
	return p.ASN == p.MyASN
}

// target is what the session connects to, for messages and duplicates.
func (p *Peer) target() string {
	if p.Interface != "" {
		return "interface " + p.Interface
	}
	return netip.AddrPortFrom(p.Address, p.Port).String()
}

func (b *builder) buildPeers(bfds []*BFDProfile) []*Peer {
	var out []*Peer
	for _, o := range objects(b, KindBGPPeer, b.r.BGPPeers, func(p *v1beta2.BGPPeer) *metav1.ObjectMeta { return &p.ObjectMeta }) {
		if p := b.buildPeer(o.ref, &o.obj.Spec, bfds); p != nil {
			out = append(out, p)
		}
	}
	b.checkPeerSets(out)
	return out
}

func (b *builder) buildPeer(r ref, s *v1beta2.BGPPeerSpec, bfds []*BFDProfile) *Peer {
	spec := field.NewPath("spec")
	p := &Peer{
		Name:                   r.name,
		MyASN:                  s.MyASN,
		ASN:                    s.ASN,
		DynamicASN:             string(s.DynamicASN),
		LocalASN:               s.LocalASN,
		Interface:              s.Interface,
		Password:               s.Password,
		BFDProfile:             s.BFDProfile,
		EnableGracefulRestart:  s.EnableGracefulRestart,
		EBGPMultiHop:           s.EBGPMultiHop,
		DisableMP:              s.DisableMP,
		DualStackAddressFamily: s.DualStackAddressFamily,
	}

	if s.MyASN == 0 {
		b.fail(r, spec.Child("myASN"), "missing local ASN: set myASN to the AS number of this cluster's side of the session (1 to 4294967295)")
	}
	switch {
	case s.ASN != 0 && s.DynamicASN != "":
		b.fail(r, spec.Child("dynamicASN"), "peerASN and dynamicASN are both set; set exactly one of them")
	case s.ASN == 0 && s.DynamicASN == "":
		b.fail(r, spec.Child("peerASN"), "missing peer ASN: set peerASN to the peer's AS number, or dynamicASN to internal or external")
	case s.DynamicASN != "" && s.DynamicASN != v1beta2.InternalASNMode && s.DynamicASN != v1beta2.ExternalASNMode:
		b.fail(r, spec.Child("dynamicASN"), fmt.Sprintf("dynamicASN %q is not valid; use internal or external", s.DynamicASN))
	}
	if s.LocalASN != 0 && s.LocalASN == s.MyASN {
		b.fail(r, spec.Child("localASN"), fmt.Sprintf("localASN %d equals myASN, so it would change nothing; remove localASN", s.LocalASN))
	}

	switch {
	case s.Address != "" && s.Interface != "":
		b.fail(r, spec.Child("interface"), "peerAddress and interface are both set; set exactly one: peerAddress for a numbered session, interface for an unnumbered one")
	case s.Address == "" && s.Interface == "":
		b.fail(r, spec.Child("peerAddress"), "missing peer address: set peerAddress to the peer's IP address, or interface for an unnumbered session")
	case s.Address != "":
		p.Address = b.peerIP(r, spec.Child("peerAddress"), s.Address, "peerAddress")
		b.checkEndpoint(r, spec.Child("peerAddress"), "peerAddress", p.Address)
		if p.Address.Is6() && p.Address.IsLinkLocalUnicast() {
			b.fail(r, spec.Child("peerAddress"), fmt.Sprintf(
				"peerAddress %s is link-local, which only means something on one link; set interface instead to peer over that link", p.Address))
		}
	case interfaceNameProblem(s.Interface) != "":
		b.fail(r, spec.Child("interface"), interfaceNameProblem(s.Interface))
	}
	if s.SrcAddress != "" {
		p.SourceAddress = b.peerIP(r, spec.Child("sourceAddress"), s.SrcAddress, "sourceAddress")
		b.checkEndpoint(r, spec.Child("sourceAddress"), "sourceAddress", p.SourceAddress)
		if p.SourceAddress.IsValid() && p.Address.IsValid() && p.SourceAddress.Is4() != p.Address.Is4() {
			b.fail(r, spec.Child("sourceAddress"), fmt.Sprintf(
				"sourceAddress %s and peerAddress %s are of different families; a session runs over one family", p.SourceAddress, p.Address))
		}
	}
	if s.RouterID != "" {
		id := b.peerIP(r, spec.Child("routerID"), s.RouterID, "routerID")
		if id.IsValid() && !id.Is4() {
			b.fail(r, spec.Child("routerID"), fmt.Sprintf("routerID %q must be written as an IPv4 address, even for IPv6 sessions", s.RouterID))
		}
		p.RouterID = id
	}

	p.Port = s.Port
	switch {
	case s.Port == 0:
		p.Port = DefaultPeerPort
	case s.Port > MaxPeerPort:
		b.fail(r, spec.Child("peerPort"), fmt.Sprintf("peerPort %d is above %d, the largest port the BGPPeer API accepts", s.Port, MaxPeerPort))
	}

	p.HoldTime, p.KeepaliveTime = b.timers(r, s.HoldTime, s.KeepaliveTime)
	if s.ConnectTime != nil {
		d := s.ConnectTime.Duration
		switch {
		case d%time.Second != 0:
			b.fail(r, spec.Child("connectTime"), fmt.Sprintf("connectTime %s is not a whole number of seconds", d))
		case d < time.Second || d > 65535*time.Second:
			b.fail(r, spec.Child("connectTime"), fmt.Sprintf("connectTime %s must be from 1s to 65535s", d))
		}
		p.ConnectTime = d
	}

	p.NodeSelectors, _ = b.selectors(r, spec.Child("nodeSelectors"), s.NodeSelectors, useNodes)
	b.peerPassword(r, s, p)

	if s.BFDProfile != "" && findByName(bfds, s.BFDProfile, func(x *BFDProfile) string { return x.Name }) == nil {
		b.wait(r, spec.Child("bfdProfile"), fmt.Sprintf(
			"BFDProfile %q does not exist (yet); the peer is configured once it is created, or remove bfdProfile", s.BFDProfile))
	}
	if s.EBGPMultiHop && (s.ASN != 0 || s.DynamicASN != "") && p.IBGP() {
		b.fail(r, spec.Child("ebgpMultiHop"), "ebgpMultiHop applies only to eBGP, but this peer is iBGP (same AS as myASN); remove ebgpMultiHop")
	}
	if s.VRFName != "" {
		b.fail(r, spec.Child("vrf"), fmt.Sprintf(
			"vrf is not supported yet: Herald peers only from the default VRF; remove vrf %q (or peer from the default VRF)", s.VRFName))
	}
	if s.DisableMP {
		b.warn(r, spec.Child("disableMP"), "disableMP is deprecated and has no effect; use dualStackAddressFamily")
	}
	return p
}

// peerIP parses an address field of a BGPPeer.
func (b *builder) peerIP(r ref, p *field.Path, s, name string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		b.fail(r, p, fmt.Sprintf("%s %q is not an IP address; write a plain address such as 192.0.2.1 or 2001:db8::1", name, s))
		return netip.Addr{}
	}
	if a.Zone() != "" {
		b.fail(r, p, fmt.Sprintf("%s %q has an IPv6 zone; to peer over a link-local address use interface instead", name, s))
		return netip.Addr{}
	}
	if a.Is4In6() {
		// MetalLB reads it as the IPv4 address, and so does Herald; only
		// the spelling is odd, and the IPv4 form compares as the same peer.
		b.warn(r, p, fmt.Sprintf("%s %q is an IPv4-mapped IPv6 address, taken as %s; write it that way", name, s, a.Unmap()))
		a = a.Unmap()
	}
	return a
}

// checkEndpoint refuses an address a session can never use at either end.
func (b *builder) checkEndpoint(r ref, p *field.Path, name string, a netip.Addr) {
	if !a.IsValid() {
		return
	}
	if msg := endpointProblem(name, a); msg != "" {
		b.fail(r, p, msg)
	}
}

// timers validates holdTime and keepaliveTime and fills in the missing one:
// hold only gives keepalive = hold/3; keepalive only gives hold =
// 3*keepalive; neither gives 90s and 30s. Both are counted in whole seconds
// (truncated), as BGP sends them.
func (b *builder) timers(r ref, hold, keep *metav1.Duration) (time.Duration, time.Duration) {
	spec := field.NewPath("spec")
	sec := func(name string, d *metav1.Duration) (time.Duration, bool) {
		if d == nil {
			return 0, false
		}
		if d.Duration < 0 {
			b.fail(r, spec.Child(name), fmt.Sprintf("%s %s is negative", name, d.Duration))
			return 0, true
		}
		return d.Duration.Truncate(time.Second), true
	}
	h, hasHold := sec("holdTime", hold)
	k, hasKeep := sec("keepaliveTime", keep)
	if hasHold && hold.Duration == 0 {
		// GoBGP fills a zero hold time with its default: Herald cannot run
		// a session without a hold timer, as FRR can. Say so, and do what
		// GoBGP will do.
		b.warn(r, spec.Child("holdTime"), "holdTime 0 asks for no hold timer, which Herald's BGP cannot run: it applies as if unset (90s, or 3 × keepaliveTime); set 3s-65535s to choose")
		hasHold = false
	}
	switch {
	case hasHold && hold.Duration > 0 && h < minHoldTime:
		b.fail(r, spec.Child("holdTime"), fmt.Sprintf(
			"holdTime %s must be at least 3s (it is counted in whole seconds)", hold.Duration))
	case hasHold && h > maxHoldTime:
		b.fail(r, spec.Child("holdTime"), fmt.Sprintf(
			"holdTime %s must be at most 65535s: BGP sends it in 16 bits, so a longer one would arrive cut short (65536s as 0, no hold timer)", hold.Duration))
	case !hasHold && 3*k > maxHoldTime:
		b.fail(r, spec.Child("keepaliveTime"), fmt.Sprintf(
			"keepaliveTime %ds alone sets holdTime to 3 × %ds, above the 65535s BGP can send; use at most %ds, or set holdTime as well",
			k/time.Second, k/time.Second, maxHoldTime/3/time.Second))
	}
	if hasKeep && keep.Duration > 0 && k == 0 {
		b.fail(r, spec.Child("keepaliveTime"), fmt.Sprintf(
			"keepaliveTime %s is under 1s; BGP counts it in whole seconds", keep.Duration))
	}
	switch {
	case !hasHold && !hasKeep:
		return DefaultHoldTime, DefaultHoldTime / 3
	case hasHold && !hasKeep:
		return h, (h / 3).Truncate(time.Second)
	case !hasHold && hasKeep:
		return 3 * k, k
	}
	if k > h {
		b.fail(r, spec.Child("keepaliveTime"), fmt.Sprintf("keepaliveTime %s exceeds holdTime %s; it must not be longer (a third of the hold time is usual)", k, h))
	}
	return h, k
}

// peerPassword checks password and passwordSecret and reads the secret. A
// missing Secret is transient: the peer waits for it.
func (b *builder) peerPassword(r ref, s *v1beta2.BGPPeerSpec, p *Peer) {
	ps := field.NewPath("spec", "passwordSecret")
	sr := s.PasswordSecret
	if sr.Name == "" {
		if sr.Namespace != "" {
			b.fail(r, ps.Child("name"), "passwordSecret has a namespace but no name; set the Secret's name")
		}
		return
	}
	if s.Password != "" {
		b.fail(r, ps, "password and passwordSecret are both set; set only one (passwordSecret keeps the password out of the object)")
		return
	}
	if sr.Namespace != "" && sr.Namespace != b.r.Namespace {
		b.fail(r, ps.Child("namespace"), fmt.Sprintf(
			"the Secret must be in namespace %q, where Herald runs, not in %q", b.r.Namespace, sr.Namespace))
		return
	}
	var sec *corev1.Secret
	for i := range b.r.Secrets {
		c := &b.r.Secrets[i]
		if c.Name == sr.Name && (c.Namespace == "" || c.Namespace == b.r.Namespace) {
			sec = c
			break
		}
	}
	if why, ok := b.r.SecretErrors[sr.Name]; sec == nil && ok {
		b.wait(r, ps.Child("name"), fmt.Sprintf(
			"Secret %s/%s cannot be read (%s); Herald reads only the Secrets its RBAC names: add it to the chart's rbac.bgpPasswordSecrets", b.r.Namespace, sr.Name, why))
		return
	}
	if sec == nil {
		b.wait(r, ps.Child("name"), fmt.Sprintf(
			"Secret %s/%s does not exist (yet); the peer is configured once it is created", b.r.Namespace, sr.Name))
		return
	}
	if sec.Type != corev1.SecretTypeBasicAuth {
		t := sec.Type
		if t == "" {
			t = corev1.SecretTypeOpaque
		}
		b.fail(r, ps.Child("name"), fmt.Sprintf(
			"Secret %q has type %q; it must have type %s with the password under the key %q", sr.Name, t, corev1.SecretTypeBasicAuth, corev1.BasicAuthPasswordKey))
		return
	}
	pw, ok := sec.Data[corev1.BasicAuthPasswordKey]
	if !ok {
		if v, sok := sec.StringData[corev1.BasicAuthPasswordKey]; sok {
			pw, ok = []byte(v), true
		}
	}
	if !ok {
		b.fail(r, ps.Child("name"), fmt.Sprintf("Secret %q has no key %q; put the password there", sr.Name, corev1.BasicAuthPasswordKey))
		return
	}
	p.Password = string(pw)
	p.PasswordSecret = sr.Name
}

// checkPeerSets applies the rules between peers that can run on the same
// node: one session per peer address and port, and one router ID and one
// local AS per node (the node runs one BGP speaker).
func (b *builder) checkPeerSets(peers []*Peer) {
	spec := field.NewPath("spec")
	covers := make([]nodeCover, len(peers))
	for i, p := range peers {
		covers[i] = b.nodeCover(p.NodeSelectors)
	}
	for j, q := range peers {
		r := ref{kind: KindBGPPeer, namespace: b.r.Namespace, name: q.Name}
		for i, p := range peers[:j] {
			if !covers[i].overlaps(covers[j]) {
				continue
			}
			sameTarget := (p.Interface != "" && p.Interface == q.Interface) ||
				(p.Address.IsValid() && p.Address == q.Address && p.Port == q.Port)
			if sameTarget {
				b.fail(r, spec.Child("peerAddress"), fmt.Sprintf(
					"BGPPeer %q already opens a session to %s from the same nodes; remove one, or give them nodeSelectors that do not overlap", p.Name, q.target()))
			}
			if p.RouterID.IsValid() && q.RouterID.IsValid() && p.RouterID != q.RouterID {
				b.fail(r, spec.Child("routerID"), fmt.Sprintf(
					"routerID %s differs from BGPPeer %q's %s, and both can run on the same node, which has one router ID; use the same routerID", q.RouterID, p.Name, p.RouterID))
			}
			if p.MyASN != 0 && q.MyASN != 0 && p.MyASN != q.MyASN {
				b.fail(r, spec.Child("myASN"), fmt.Sprintf(
					"myASN %d differs from BGPPeer %q's %d, and both can run on the same node, which has one local AS; use the same myASN (localASN can present another AS to one peer)", q.MyASN, p.Name, p.MyASN))
			}
		}
	}
}
