// Package ipam is Herald's address allocator: parsing pool entries, checking
// pools for overlaps, and handing addresses to services under MetalLB's
// rules. It knows nothing of Kubernetes; the controller translates Services
// and IPAddressPools into the plain types here.
//
// Rules, in brief (each is documented where it is implemented):
//
//   - A pool entry is a CIDR or an inclusive range "a-b" (ParseRange). A CIDR
//     with host bits set is masked, as MetalLB does. Ranges may not overlap,
//     within a pool or across pools (ValidatePools).
//   - Automatic allocation (Allocator.Allocate) tries the caller's candidate
//     pools in a fixed order: pinned pools by priority (set, ascending, then
//     unset) and name, then unpinned pools by name, skipping autoAssign=false.
//     The same inputs always give the same addresses; MetalLB, by contrast,
//     walks a Go map.
//   - Within a pool the lowest free address wins, except that a service with
//     a sharing key first joins the lowest address already shared under the
//     same sharing and backend keys whose holders leave its ports free.
//   - Sharing (MetalLB's exact rules): every holder of an address has the same
//     non-empty sharing key and the same backend key, and no (protocol, port)
//     pair is used twice. The sole holder may change its own key.
//   - Nothing moves without cause: allocating again for a service that holds
//     suitable addresses returns the same ones, and SetPools only releases
//     services whose addresses left every pool.
//
// Cost: each pool keeps, per family, an ordered set of used address intervals
// (a B-tree), so allocating and releasing take O(log n) in the number of
// allocations, whatever the pool's size, and memory grows with allocations
// only. A 10.0.0.0/8 or a 2001:db8::/64 pool costs the same as a /29.
// Counts use math/big where 64 bits are not enough.
package ipam
