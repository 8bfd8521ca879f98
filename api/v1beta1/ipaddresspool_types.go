package v1beta1

import (
	"math"
	"math/big"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IPAddressPoolSpec is the set of addresses a pool hands out and the rules
// for handing them out.
type IPAddressPoolSpec struct {
	// addresses lists the ranges this pool owns. Each entry is either a CIDR
	// prefix ("192.0.2.0/24", "2001:db8::/120") or an inclusive range of two
	// addresses of the same family separated by a dash
	// ("192.0.2.10-192.0.2.20"; spaces around the dash are ignored). IPv4 and
	// IPv6 entries may be mixed in one pool. A pool must list at least one
	// range, and no range may overlap a range of any pool, this one included.
	Addresses []string `json:"addresses"`

	// autoAssign lets the controller pick this pool for Services that do not
	// ask for a specific pool or address. When false, the pool is used only
	// for Services that name it in the metallb.io/address-pool annotation or
	// request one of its addresses explicitly. Defaults to true.
	// +optional
	// +kubebuilder:default:=true
	AutoAssign *bool `json:"autoAssign,omitempty"`

	// avoidBuggyIPs skips every IPv4 address whose last octet is 0 or 255,
	// which some old client devices mistake for network or broadcast
	// addresses. It looks only at the last octet, not at the real network or
	// broadcast address of the range, and has no effect on IPv6. Defaults to
	// false.
	// +optional
	// +kubebuilder:default:=false
	AvoidBuggyIPs bool `json:"avoidBuggyIPs,omitempty"`

	// serviceAllocation reserves the pool for some namespaces
	// and/or Services and gives it a priority. A pool with a
	// serviceAllocation is never used for a Service that does not match it.
	// Among the matching pools, those with a priority are tried first, lowest
	// number first; pools without a priority are tried after them.
	// +optional
	AllocateTo *ServiceAllocation `json:"serviceAllocation,omitempty"`
}

// ServiceAllocation restricts which Services may take addresses from a pool
// and in what order pools are tried.
type ServiceAllocation struct {
	// priority orders the pools a Service matches: a lower number is tried
	// first. 0 (or unset) means no priority: such pools are tried after every
	// pool that has one.
	// +optional
	Priority int `json:"priority,omitempty"`

	// namespaces lists, by name, the namespaces whose Services may use the
	// pool. It is combined (union) with the namespaces that
	// namespaceSelectors select. Names must not repeat.
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`

	// namespaceSelectors select, by their labels, namespaces whose Services
	// may use the pool, in addition to those listed in namespaces. A change
	// of namespace labels takes effect without editing the pool.
	// +optional
	NamespaceSelectors []metav1.LabelSelector `json:"namespaceSelectors,omitempty"`

	// serviceSelectors select, by their labels, the Services that may use the
	// pool; a Service has to match at least one of them. When a namespace
	// restriction is also set, a Service must satisfy both. When
	// serviceAllocation is present but namespaces, namespaceSelectors and
	// serviceSelectors are all empty, every Service matches and the
	// allocation only sets the priority.
	// +optional
	ServiceSelectors []metav1.LabelSelector `json:"serviceSelectors,omitempty"`
}

// IPAddressPoolStatus reports how much of the pool is in use. The controller
// writes it; counts are of distinct addresses, so an address shared by
// several Services counts once.
//
// The four int64 counters are MetalLB's. An IPv6 pool can hold far more
// than an int64 can count (a single /64 has 2^64 addresses), so
// availableIPv6 saturates at 9223372036854775807 (math.MaxInt64) instead of
// wrapping to a negative number; availableIPv6Exact carries the exact value.
type IPAddressPoolStatus struct {
	// assignedIPv4 is the number of IPv4 addresses of the pool currently
	// assigned to Services.
	AssignedIPv4 int64 `json:"assignedIPv4"`

	// assignedIPv6 is the number of IPv6 addresses of the pool currently
	// assigned to Services.
	AssignedIPv6 int64 `json:"assignedIPv6"`

	// availableIPv4 is the number of IPv4 addresses of the pool still free
	// to assign (addresses skipped by avoidBuggyIPs are not counted).
	AvailableIPv4 int64 `json:"availableIPv4"`

	// availableIPv6 is the number of IPv6 addresses of the pool still free
	// to assign, saturated at 9223372036854775807 when the true number is
	// larger. See availableIPv6Exact.
	AvailableIPv6 int64 `json:"availableIPv6"`

	// availableIPv6Exact is the exact number of free IPv6 addresses as a
	// decimal string, for pools too large for availableIPv6 (a /64 pool
	// shows "18446744073709551616" when empty). Herald addition, not set by
	// MetalLB.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9]+$`
	// +kubebuilder:validation:MaxLength=40
	AvailableIPv6Exact string `json:"availableIPv6Exact,omitempty"`
}

// SetAvailableIPv6 records n free IPv6 addresses: exactly in
// AvailableIPv6Exact, and saturated to the int64 range in AvailableIPv6.
// A nil or negative n is recorded as 0.
func (s *IPAddressPoolStatus) SetAvailableIPv6(n *big.Int) {
	if n == nil || n.Sign() < 0 {
		n = new(big.Int)
	}
	s.AvailableIPv6Exact = n.String()
	if n.IsInt64() {
		s.AvailableIPv6 = n.Int64()
	} else {
		s.AvailableIPv6 = math.MaxInt64
	}
}

// IPAddressPool is a set of IP addresses that Herald assigns to Services of
// type LoadBalancer. Which nodes announce those addresses, and how, is set
// by L2Advertisements and BGPAdvertisements that select the pool.
//
// `kubectl get` shows MetalLB's columns followed by the IPv4 usage; the
// IPv6 usage columns appear with -o wide.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Auto Assign",type=boolean,JSONPath=`.spec.autoAssign`
// +kubebuilder:printcolumn:name="Avoid Buggy IPs",type=boolean,JSONPath=`.spec.avoidBuggyIPs`
// +kubebuilder:printcolumn:name="Addresses",type=string,JSONPath=`.spec.addresses`
// +kubebuilder:printcolumn:name="IPv4 In Use",type=integer,JSONPath=`.status.assignedIPv4`,description="IPv4 addresses assigned to Services"
// +kubebuilder:printcolumn:name="IPv4 Free",type=integer,JSONPath=`.status.availableIPv4`,description="IPv4 addresses still free"
// +kubebuilder:printcolumn:name="IPv6 In Use",type=integer,JSONPath=`.status.assignedIPv6`,priority=1,description="IPv6 addresses assigned to Services"
// +kubebuilder:printcolumn:name="IPv6 Free",type=string,JSONPath=`.status.availableIPv6Exact`,priority=1,description="IPv6 addresses still free, exact"
type IPAddressPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec holds the pool's addresses and allocation rules.
	Spec IPAddressPoolSpec `json:"spec"`
	// status reports the pool's usage; written by the controller.
	// +optional
	Status IPAddressPoolStatus `json:"status,omitempty"`
}

// IPAddressPoolList is a list of IPAddressPools.
//
// +kubebuilder:object:root=true
type IPAddressPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAddressPool `json:"items"`
}
