package v1beta1

import (
	"fmt"
	"maps"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/conversion"

	"github.com/herald-lb/herald/api/v1beta2"
)

// ConvertTo converts this v1beta1 BGPPeer to the v1beta2 hub.
//
// A zero holdTime or keepaliveTime becomes nil rather than an explicit "0s".
// v1beta1 stores these durations by value, so an omitted hold time reads as
// 0; copying that literally (as MetalLB does) turns "use the default 90s"
// into "hold time 0: no keepalives and no hold timer". The price is that an
// explicit "0s" written through v1beta1 also means the default; a zero hold
// time must be requested through v1beta2. For the same reason the two fields
// are tagged omitzero, so that Go clients do not send "0s" for an unset
// duration in the first place.
func (src *BGPPeer) ConvertTo(dstRaw conversion.Hub) error {
	dst, ok := dstRaw.(*v1beta2.BGPPeer)
	if !ok {
		return fmt.Errorf("convert BGPPeer %s/%s to v1beta2: unexpected hub type %T", src.Namespace, src.Name, dstRaw)
	}
	dst.ObjectMeta = *src.ObjectMeta.DeepCopy()
	s := &src.Spec
	dst.Spec = v1beta2.BGPPeerSpec{
		MyASN:         s.MyASN,
		ASN:           s.ASN,
		Address:       s.Address,
		SrcAddress:    s.SrcAddress,
		Port:          s.Port,
		HoldTime:      durationPtr(s.HoldTime),
		KeepaliveTime: durationPtr(s.KeepaliveTime),
		RouterID:      s.RouterID,
		NodeSelectors: labelSelectors(s.NodeSelectors),
		Password:      s.Password,
		BFDProfile:    s.BFDProfile,
		EBGPMultiHop:  s.EBGPMultiHop,
	}
	return nil
}

// ConvertFrom converts the v1beta2 hub to this v1beta1 BGPPeer. Fields that
// v1beta1 lacks (dynamicASN, localASN, interface, connectTime,
// passwordSecret, enableGracefulRestart, vrf, disableMP,
// dualStackAddressFamily) are dropped, as in MetalLB.
func (dst *BGPPeer) ConvertFrom(srcRaw conversion.Hub) error {
	src, ok := srcRaw.(*v1beta2.BGPPeer)
	if !ok {
		return fmt.Errorf("convert BGPPeer to v1beta1: unexpected hub type %T", srcRaw)
	}
	dst.ObjectMeta = *src.ObjectMeta.DeepCopy()
	s := &src.Spec
	dst.Spec = BGPPeerSpec{
		MyASN:         s.MyASN,
		ASN:           s.ASN,
		Address:       s.Address,
		SrcAddress:    s.SrcAddress,
		Port:          s.Port,
		HoldTime:      durationValue(s.HoldTime),
		KeepaliveTime: durationValue(s.KeepaliveTime),
		RouterID:      s.RouterID,
		NodeSelectors: legacyNodeSelectors(s.NodeSelectors),
		Password:      s.Password,
		BFDProfile:    s.BFDProfile,
		EBGPMultiHop:  s.EBGPMultiHop,
	}
	return nil
}

// durationPtr maps v1beta1's "zero means unset" to v1beta2's nil.
func durationPtr(d metav1.Duration) *metav1.Duration {
	if d.Duration == 0 {
		return nil
	}
	return &metav1.Duration{Duration: d.Duration}
}

func durationValue(d *metav1.Duration) metav1.Duration {
	if d == nil {
		return metav1.Duration{}
	}
	return *d
}

func labelSelectors(in []NodeSelector) []metav1.LabelSelector {
	if in == nil {
		return nil
	}
	out := make([]metav1.LabelSelector, len(in))
	for i, ns := range in {
		out[i].MatchLabels = maps.Clone(ns.MatchLabels)
		if ns.MatchExpressions != nil {
			out[i].MatchExpressions = make([]metav1.LabelSelectorRequirement, len(ns.MatchExpressions))
			for j, e := range ns.MatchExpressions {
				out[i].MatchExpressions[j] = metav1.LabelSelectorRequirement{
					Key:      e.Key,
					Operator: metav1.LabelSelectorOperator(e.Operator),
					Values:   slices.Clone(e.Values),
				}
			}
		}
	}
	return out
}

func legacyNodeSelectors(in []metav1.LabelSelector) []NodeSelector {
	if in == nil {
		return nil
	}
	out := make([]NodeSelector, len(in))
	for i, ls := range in {
		out[i].MatchLabels = maps.Clone(ls.MatchLabels)
		if ls.MatchExpressions != nil {
			out[i].MatchExpressions = make([]MatchExpression, len(ls.MatchExpressions))
			for j, e := range ls.MatchExpressions {
				out[i].MatchExpressions[j] = MatchExpression{
					Key:      e.Key,
					Operator: string(e.Operator),
					Values:   slices.Clone(e.Values),
				}
			}
		}
	}
	return out
}
