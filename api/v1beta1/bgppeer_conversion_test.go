package v1beta1

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/conversion"

	"github.com/herald-lb/herald/api/v1beta2"
)

// The conversion webhook relies on these interface assertions.
var (
	_ conversion.Convertible = &BGPPeer{}
	_ conversion.Hub         = &v1beta2.BGPPeer{}
)

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func TestBGPPeerConvertTo(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "peer", Namespace: "metallb-system", Labels: map[string]string{"a": "b"}}
	tests := []struct {
		name string
		in   BGPPeerSpec
		want v1beta2.BGPPeerSpec
	}{
		{
			name: "minimal peer, no timers: hold and keepalive stay unset",
			in:   BGPPeerSpec{MyASN: 64500, ASN: 64501, Address: "192.0.2.1"},
			want: v1beta2.BGPPeerSpec{MyASN: 64500, ASN: 64501, Address: "192.0.2.1"},
		},
		{
			name: "explicit timers are kept",
			in: BGPPeerSpec{
				MyASN: 64500, ASN: 64501, Address: "192.0.2.1",
				HoldTime:      metav1.Duration{Duration: 9 * time.Second},
				KeepaliveTime: metav1.Duration{Duration: 3 * time.Second},
			},
			want: v1beta2.BGPPeerSpec{
				MyASN: 64500, ASN: 64501, Address: "192.0.2.1",
				HoldTime: dur(9 * time.Second), KeepaliveTime: dur(3 * time.Second),
			},
		},
		{
			name: "every v1beta1 field",
			in: BGPPeerSpec{
				MyASN: 4200000000, ASN: 4200000001, Address: "2001:db8::1",
				SrcAddress: "2001:db8::2", Port: 1790,
				HoldTime: metav1.Duration{Duration: 3 * time.Minute},
				RouterID: "192.0.2.10", Password: "secret", BFDProfile: "fast", EBGPMultiHop: true,
				NodeSelectors: []NodeSelector{
					{MatchLabels: map[string]string{"kubernetes.io/hostname": "node-a"}},
					{MatchExpressions: []MatchExpression{
						{Key: "rack", Operator: "In", Values: []string{"r1", "r2"}},
						{Key: "zone", Operator: "NotIn", Values: []string{"z9"}},
					}},
				},
			},
			want: v1beta2.BGPPeerSpec{
				MyASN: 4200000000, ASN: 4200000001, Address: "2001:db8::1",
				SrcAddress: "2001:db8::2", Port: 1790,
				HoldTime: dur(3 * time.Minute),
				RouterID: "192.0.2.10", Password: "secret", BFDProfile: "fast", EBGPMultiHop: true,
				NodeSelectors: []metav1.LabelSelector{
					{MatchLabels: map[string]string{"kubernetes.io/hostname": "node-a"}},
					{MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "rack", Operator: metav1.LabelSelectorOpIn, Values: []string{"r1", "r2"}},
						{Key: "zone", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"z9"}},
					}},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &BGPPeer{ObjectMeta: meta, Spec: tt.in}
			var dst v1beta2.BGPPeer
			if err := src.ConvertTo(&dst); err != nil {
				t.Fatalf("ConvertTo: %v", err)
			}
			if !reflect.DeepEqual(dst.Spec, tt.want) {
				t.Errorf("spec:\n got %+v\nwant %+v", dst.Spec, tt.want)
			}
			if !reflect.DeepEqual(dst.ObjectMeta, meta) {
				t.Errorf("metadata: got %+v, want %+v", dst.ObjectMeta, meta)
			}
			// The conversion must not alias the source: editing the result
			// would otherwise edit the object it came from.
			if len(dst.Spec.NodeSelectors) > 0 && dst.Spec.NodeSelectors[0].MatchLabels != nil {
				dst.Spec.NodeSelectors[0].MatchLabels["changed"] = "yes"
				if _, ok := src.Spec.NodeSelectors[0].MatchLabels["changed"]; ok {
					t.Error("converted matchLabels share a map with the source")
				}
			}
		})
	}
}

// TestBGPPeerRoundTrip converts v1beta1 -> v1beta2 -> v1beta1 and
// v1beta2 -> v1beta1 -> v1beta2 and expects the v1beta1-expressible part
// unchanged.
func TestBGPPeerRoundTrip(t *testing.T) {
	hubs := []struct {
		name string
		spec v1beta2.BGPPeerSpec
		// want is what survives the trip through v1beta1.
		want v1beta2.BGPPeerSpec
	}{
		{
			name: "unset hold time stays unset",
			spec: v1beta2.BGPPeerSpec{MyASN: 64500, ASN: 64501, Address: "192.0.2.1", Port: 179},
			want: v1beta2.BGPPeerSpec{MyASN: 64500, ASN: 64501, Address: "192.0.2.1", Port: 179},
		},
		{
			name: "timers and selectors survive",
			spec: v1beta2.BGPPeerSpec{
				MyASN: 64500, ASN: 64500, Address: "198.51.100.7", Port: 179,
				HoldTime: dur(30 * time.Second), KeepaliveTime: dur(10 * time.Second),
				NodeSelectors: []metav1.LabelSelector{{
					MatchLabels: map[string]string{"bgp": "yes"},
					MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "role", Operator: metav1.LabelSelectorOpIn, Values: []string{"edge"}},
					},
				}},
			},
			want: v1beta2.BGPPeerSpec{
				MyASN: 64500, ASN: 64500, Address: "198.51.100.7", Port: 179,
				HoldTime: dur(30 * time.Second), KeepaliveTime: dur(10 * time.Second),
				NodeSelectors: []metav1.LabelSelector{{
					MatchLabels: map[string]string{"bgp": "yes"},
					MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "role", Operator: metav1.LabelSelectorOpIn, Values: []string{"edge"}},
					},
				}},
			},
		},
		{
			// v1beta1 cannot hold these fields; as in MetalLB, they are lost.
			name: "v1beta2-only fields are dropped",
			spec: v1beta2.BGPPeerSpec{
				MyASN: 64500, DynamicASN: v1beta2.ExternalASNMode, LocalASN: 64999,
				Interface: "eth1", ConnectTime: dur(5 * time.Second),
				PasswordSecret:        corev1.SecretReference{Name: "bgp-pass"},
				EnableGracefulRestart: true, VRFName: "red", DisableMP: true, DualStackAddressFamily: true,
			},
			want: v1beta2.BGPPeerSpec{MyASN: 64500},
		},
		{
			// A zero hold time has no v1beta1 spelling distinct from unset.
			name: "explicit zero hold time reads back as unset",
			spec: v1beta2.BGPPeerSpec{MyASN: 64500, ASN: 64501, Address: "192.0.2.1", HoldTime: dur(0)},
			want: v1beta2.BGPPeerSpec{MyASN: 64500, ASN: 64501, Address: "192.0.2.1"},
		},
	}
	for _, tt := range hubs {
		t.Run("hub/"+tt.name, func(t *testing.T) {
			hub := &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: tt.spec}
			var spoke BGPPeer
			if err := spoke.ConvertFrom(hub); err != nil {
				t.Fatalf("ConvertFrom: %v", err)
			}
			var back v1beta2.BGPPeer
			if err := spoke.ConvertTo(&back); err != nil {
				t.Fatalf("ConvertTo: %v", err)
			}
			if !reflect.DeepEqual(back.Spec, tt.want) {
				t.Errorf("after round trip:\n got %+v\nwant %+v", back.Spec, tt.want)
			}
			if back.Name != "p" {
				t.Errorf("name: got %q, want %q", back.Name, "p")
			}
		})
	}

	spokes := []struct {
		name string
		spec BGPPeerSpec
	}{
		{name: "no timers", spec: BGPPeerSpec{MyASN: 64500, ASN: 64501, Address: "192.0.2.1"}},
		{name: "port unset", spec: BGPPeerSpec{MyASN: 64500, ASN: 64501, Address: "192.0.2.1", Port: 0}},
		{
			name: "legacy selector with labels and expressions",
			spec: BGPPeerSpec{
				MyASN: 64500, ASN: 64501, Address: "192.0.2.1",
				HoldTime: metav1.Duration{Duration: 90 * time.Second}, KeepaliveTime: metav1.Duration{Duration: 30 * time.Second},
				NodeSelectors: []NodeSelector{{
					MatchLabels:      map[string]string{"a": "b"},
					MatchExpressions: []MatchExpression{{Key: "k", Operator: "In", Values: []string{"v"}}},
				}},
				RouterID: "192.0.2.254", Password: "pw", BFDProfile: "bfd", EBGPMultiHop: true, SrcAddress: "192.0.2.2",
			},
		},
	}
	for _, tt := range spokes {
		t.Run("spoke/"+tt.name, func(t *testing.T) {
			spoke := &BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: tt.spec}
			var hub v1beta2.BGPPeer
			if err := spoke.ConvertTo(&hub); err != nil {
				t.Fatalf("ConvertTo: %v", err)
			}
			var back BGPPeer
			if err := back.ConvertFrom(&hub); err != nil {
				t.Fatalf("ConvertFrom: %v", err)
			}
			if !reflect.DeepEqual(back.Spec, tt.spec) {
				t.Errorf("after round trip:\n got %+v\nwant %+v", back.Spec, tt.spec)
			}
		})
	}
}

// otherHub is a Hub that is not a v1beta2 BGPPeer.
type otherHub struct{ v1beta2.BGPPeerList }

func (*otherHub) Hub() {}

func TestBGPPeerConvertWrongHub(t *testing.T) {
	p := &BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
	if err := p.ConvertTo(&otherHub{}); err == nil {
		t.Error("ConvertTo accepted a hub that is not a v1beta2 BGPPeer")
	}
	if err := p.ConvertFrom(&otherHub{}); err == nil {
		t.Error("ConvertFrom accepted a hub that is not a v1beta2 BGPPeer")
	}
}

// TestBGPPeerUnsetTimersNotSent checks that a Go client writing a v1beta1
// peer without timers sends no holdTime or keepaliveTime at all, rather than
// "0s", which the API server would store without our conversion.
func TestBGPPeerUnsetTimersNotSent(t *testing.T) {
	tests := []struct {
		name    string
		spec    BGPPeerSpec
		want    []string
		notWant []string
	}{
		{
			name:    "unset",
			spec:    BGPPeerSpec{MyASN: 64500, ASN: 64501, Address: "192.0.2.1"},
			notWant: []string{"holdTime", "keepaliveTime"},
		},
		{
			name: "set",
			spec: BGPPeerSpec{MyASN: 64500, ASN: 64501, Address: "192.0.2.1",
				HoldTime: metav1.Duration{Duration: 90 * time.Second}, KeepaliveTime: metav1.Duration{Duration: 30 * time.Second}},
			want: []string{`"holdTime":"1m30s"`, `"keepaliveTime":"30s"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s lacks %s", b, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(string(b), w) {
					t.Errorf("%s contains %s", b, w)
				}
			}
		})
	}
}
