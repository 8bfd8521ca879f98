// Package cloudlease is the production cloud.Arbiter: one
// coordination.k8s.io/v1 Lease per floating IP, in Herald's namespace.
//
// During a network partition two speakers that each see the other dead
// both elect themselves for an IP, and if both still reach the cloud's API
// they would assign it back and forth. What both sides of such a partition
// still share is the API server, so the right to assign an IP is a Lease
// there, written with the API server's optimistic concurrency
// (resourceVersion): of two nodes updating the same version, one wins and
// the other gets a conflict, reads the winner's lease, and is refused.
//
// The rules are cloud.MemoryArbiter's, carried by the Lease's fields:
//
//   - spec.holderIdentity is the node holding the lease, or empty;
//   - a lease lasts Duration after spec.renewTime, its last renewal;
//   - once the lease changes hands (spec.acquireTime) it stays with its new
//     holder for at least HoldDown, renewed or not, which bounds how often
//     an IP can move whatever the nodes believe;
//   - Release empties spec.holderIdentity: the next node takes the lease at
//     once, hold-down included, since leaving is not flapping.
//
// Expiry and hold-down compare the times one node wrote with another
// node's clock, as Kubernetes node leases do: nodes' clocks must agree to
// well within Duration (NTP does). spec.leaseDurationSeconds is written
// for operators and tools (rounded up to a second); the rules use the
// arbiter's own Duration, which every speaker of a release shares.
package cloudlease

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/herald-lb/herald/internal/cloud"
)

var _ cloud.Arbiter = (*Arbiter)(nil)

// Defaults for Options.
const (
	// DefaultDuration is a lease's life after its last renewal: failover
	// waits at most this long for a dead holder's lease. The holder must
	// renew (call Acquire) more often.
	DefaultDuration = 15 * time.Second
	// DefaultHoldDown is how long a lease stays with a new holder.
	DefaultHoldDown = 30 * time.Second
)

// Names, labels and annotations of the Leases.
const (
	// NamePrefix starts every Lease's name.
	NamePrefix = "herald-fip-"
	// LabelComponent marks the Leases, for kubectl get -l.
	LabelComponent = "app.kubernetes.io/component"
	// ComponentValue is LabelComponent's value on them.
	ComponentValue = "cloud-arbiter"
	// AnnotationFloatingIP holds the floating IP the Lease is for, as the
	// caller named it, since the name may have had to be changed.
	AnnotationFloatingIP = "herald-lb.io/floating-ip"
)

// attempts bounds the reads and writes of one Acquire or Release: each
// retry follows a conflict, that is another writer, and a lease that keeps
// changing under a node is not that node's.
const attempts = 3

// Options configure an Arbiter; zero durations get the defaults.
type Options struct {
	Duration time.Duration
	HoldDown time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Arbiter implements cloud.Arbiter on Leases.
type Arbiter struct {
	leases    coordinationv1client.LeaseInterface
	namespace string
	opts      Options
}

// New returns an Arbiter that keeps its Leases in namespace, through c (a
// kubernetes.Interface's CoordinationV1()). It reads and writes the API
// server directly, never a cache: the rules need the latest version.
func New(c coordinationv1client.LeasesGetter, namespace string, opts Options) (*Arbiter, error) {
	if c == nil || namespace == "" {
		return nil, errors.New("cloud lease arbiter: a client and a namespace are required")
	}
	if opts.Duration <= 0 {
		opts.Duration = DefaultDuration
	}
	if opts.HoldDown < 0 {
		return nil, fmt.Errorf("cloud lease arbiter: hold-down %v is negative", opts.HoldDown)
	}
	if opts.HoldDown == 0 {
		opts.HoldDown = DefaultHoldDown
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Arbiter{leases: c.Leases(namespace), namespace: namespace, opts: opts}, nil
}

// Acquire implements cloud.Arbiter: it takes or renews the lease on ip for
// node, and returns false, with no error, when another node holds it.
func (a *Arbiter) Acquire(ctx context.Context, ip, node string) (bool, error) {
	if node == "" {
		return false, errors.New("cloud lease arbiter: empty node name")
	}
	name := LeaseName(ip)
	for range attempts {
		l, err := a.leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = a.leases.Create(ctx, a.take(a.newLease(name, ip), node), metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue // created meanwhile: read it
			}
			if err != nil {
				return false, fmt.Errorf("create lease %s/%s for %s: %w", a.namespace, name, ip, err)
			}
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("read lease %s/%s for %s: %w", a.namespace, name, ip, err)
		}
		next, ok := a.decide(l, node)
		if !ok {
			return false, nil
		}
		_, err = a.leases.Update(ctx, next, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue // written meanwhile: decide again on what was written
		}
		if err != nil {
			return false, fmt.Errorf("write lease %s/%s for %s: %w", a.namespace, name, ip, err)
		}
		return true, nil
	}
	return false, nil
}

// decide returns the lease as node would write it, and whether node may:
// renewing its own, taking a free one, or taking one that expired and is
// out of its hold-down.
func (a *Arbiter) decide(l *coordinationv1.Lease, node string) (*coordinationv1.Lease, bool) {
	now := a.opts.Now()
	l = l.DeepCopy()
	switch holder := Holder(l); {
	case holder == node:
		renew := metav1.NewMicroTime(now)
		l.Spec.RenewTime = &renew
		l.Spec.LeaseDurationSeconds = a.durationSeconds()
		return l, true
	case holder == "":
		return a.take(l, node), true
	}
	expired := l.Spec.RenewTime == nil || now.Sub(l.Spec.RenewTime.Time) >= a.opts.Duration
	heldDown := l.Spec.AcquireTime != nil && now.Sub(l.Spec.AcquireTime.Time) < a.opts.HoldDown
	if !expired || heldDown {
		return nil, false
	}
	return a.take(l, node), true
}

// take hands l to node now: a change of hands, which starts the hold-down.
func (a *Arbiter) take(l *coordinationv1.Lease, node string) *coordinationv1.Lease {
	now := metav1.NewMicroTime(a.opts.Now())
	l.Spec.HolderIdentity = &node
	l.Spec.AcquireTime = &now
	renew := now
	l.Spec.RenewTime = &renew
	l.Spec.LeaseDurationSeconds = a.durationSeconds()
	var n int32
	if l.Spec.LeaseTransitions != nil {
		n = *l.Spec.LeaseTransitions + 1
	}
	l.Spec.LeaseTransitions = &n
	return l
}

func (a *Arbiter) newLease(name, ip string) *coordinationv1.Lease {
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: a.namespace,
		Labels:      Labels(),
		Annotations: map[string]string{AnnotationFloatingIP: ip},
	}}
}

func (a *Arbiter) durationSeconds() *int32 {
	s := int32(min(math.Ceil(a.opts.Duration.Seconds()), math.MaxInt32))
	return &s
}

// Release implements cloud.Arbiter: if node holds ip's lease, the lease is
// freed at once, hold-down included. Another holder's lease, or none, is
// left alone.
func (a *Arbiter) Release(ctx context.Context, ip, node string) error {
	name := LeaseName(ip)
	for range attempts {
		l, err := a.leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read lease %s/%s for %s: %w", a.namespace, name, ip, err)
		}
		if Holder(l) != node {
			return nil
		}
		l.Spec.HolderIdentity = nil
		_, err = a.leases.Update(ctx, l, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue // renewed or taken meanwhile: look again
		}
		if err != nil {
			return fmt.Errorf("release lease %s/%s for %s: %w", a.namespace, name, ip, err)
		}
		return nil
	}
	return fmt.Errorf("release lease %s/%s for %s: it kept changing", a.namespace, name, ip)
}

// Labels are the labels of every Lease of the arbiter, which select them.
func Labels() map[string]string { return map[string]string{LabelComponent: ComponentValue} }

// Holder is the node holding l, or "" when none does.
func Holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// LeaseName is the name of ip's Lease: NamePrefix and ip itself when that
// is a valid object name (an IPv4 address, a numeric ID); otherwise ip
// with every character a name cannot hold replaced by "-", shortened, and
// followed by a hash of ip, so that two IPs never share a Lease
// (2001:db8::1 is herald-fip-2001-db8--1-<hash>).
func LeaseName(ip string) string {
	if name := NamePrefix + ip; len(validation.IsDNS1123Subdomain(name)) == 0 {
		return name
	}
	var b strings.Builder
	for _, r := range strings.ToLower(ip) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	readable := b.String()
	if len(readable) > 40 {
		readable = readable[:40]
	}
	sum := sha256.Sum256([]byte(ip))
	if readable = strings.Trim(readable, "-"); readable != "" {
		readable += "-"
	}
	return NamePrefix + readable + hex.EncodeToString(sum[:5])
}
