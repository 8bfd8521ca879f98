package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/api/v1beta2"
)

// BFD defaults, applied to unset BFDProfile fields (the values FRR uses,
// which MetalLB documents).
const (
	DefaultBFDReceiveInterval  = 300 * time.Millisecond
	DefaultBFDTransmitInterval = 300 * time.Millisecond
	DefaultBFDEchoInterval     = 50 * time.Millisecond
	DefaultBFDDetectMultiplier = 3
	DefaultBFDMinimumTTL       = 254
)

// BFDProfile is a validated BFDProfile with its defaults applied.
type BFDProfile struct {
	Name             string
	ReceiveInterval  time.Duration
	TransmitInterval time.Duration
	EchoInterval     time.Duration
	DetectMultiplier uint32
	EchoMode         bool
	PassiveMode      bool
	MinimumTTL       uint32
}

func (b *builder) buildBFDProfiles() []*BFDProfile {
	var out []*BFDProfile
	for _, o := range objects(b, KindBFDProfile, b.r.BFDProfiles, func(p *v1beta1.BFDProfile) *metav1.ObjectMeta { return &p.ObjectMeta }) {
		s := &o.obj.Spec
		spec := field.NewPath("spec")
		ms := func(name string, v *uint32, def time.Duration) time.Duration {
			if v == nil {
				return def
			}
			if *v < 10 || *v > 60000 {
				b.fail(o.ref, spec.Child(name), fmt.Sprintf("%s is %d ms; it must be from 10 to 60000 ms (unset means %d)", name, *v, def.Milliseconds()))
			}
			return time.Duration(*v) * time.Millisecond
		}
		num := func(name string, v *uint32, lo, hi, def uint32) uint32 {
			if v == nil {
				return def
			}
			if *v < lo || *v > hi {
				b.fail(o.ref, spec.Child(name), fmt.Sprintf("%s is %d; it must be from %d to %d (unset means %d)", name, *v, lo, hi, def))
			}
			return *v
		}
		p := &BFDProfile{
			Name:             o.ref.name,
			ReceiveInterval:  ms("receiveInterval", s.ReceiveInterval, DefaultBFDReceiveInterval),
			TransmitInterval: ms("transmitInterval", s.TransmitInterval, DefaultBFDTransmitInterval),
			EchoInterval:     ms("echoInterval", s.EchoInterval, DefaultBFDEchoInterval),
			DetectMultiplier: num("detectMultiplier", s.DetectMultiplier, 2, 255, DefaultBFDDetectMultiplier),
			MinimumTTL:       num("minimumTtl", s.MinimumTTL, 1, 254, DefaultBFDMinimumTTL),
			EchoMode:         s.EchoMode != nil && *s.EchoMode,
			PassiveMode:      s.PassiveMode != nil && *s.PassiveMode,
		}
		out = append(out, p)
	}
	return out
}

// checkEchoMode refuses echo mode on a profile used by a peer that is sent
// IPv6 addresses: BFD echo works only for IPv4.
func (b *builder) checkEchoMode(pools []*Pool, peers []*Peer, bfds []*BFDProfile, ads []*BGPAdvertisement) {
	for _, prof := range bfds {
		if !prof.EchoMode {
			continue
		}
		var uses []string
		for _, peer := range peers {
			if peer.BFDProfile != prof.Name {
				continue
			}
			for _, ad := range ads {
				if !ad.MatchesPeer(peer.Name) {
					continue
				}
				for _, name := range ad.Pools {
					if p := findPool(pools, name); p != nil && hasFamily(p, true) {
						uses = append(uses, fmt.Sprintf("BGPPeer %q gets pool %q through BGPAdvertisement %q", peer.Name, name, ad.Name))
					}
				}
			}
		}
		if len(uses) > 0 {
			r := ref{kind: KindBFDProfile, namespace: b.r.Namespace, name: prof.Name}
			b.fail(r, field.NewPath("spec", "echoMode"), fmt.Sprintf(
				"echo mode works only for IPv4, but IPv6 addresses are advertised to a peer using this profile (%s); "+
					"turn echoMode off, or use a profile without it for those peers", strings.Join(uses, "; ")))
		}
	}
}

// ValidateBFDProfileDeletion refuses to delete a BFDProfile that a BGPPeer
// still refers to; the webhook calls it on delete. peers are all the
// BGPPeers in Herald's namespace.
func ValidateBFDProfileDeletion(profile v1beta1.BFDProfile, peers []v1beta2.BGPPeer) Problems {
	var users []string
	for _, p := range peers {
		if p.Spec.BFDProfile == profile.Name && (p.Namespace == "" || profile.Namespace == "" || p.Namespace == profile.Namespace) {
			users = append(users, p.Name)
		}
	}
	if len(users) == 0 {
		return nil
	}
	slices.Sort(users)
	return Problems{{
		Kind: KindBFDProfile, Namespace: profile.Namespace, Name: profile.Name,
		Message: fmt.Sprintf("the profile is used by BGPPeer %s; remove spec.bfdProfile from %s first",
			strings.Join(users, ", "), pluralise(len(users), "that peer", "those peers")),
	}}
}

func pluralise(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
