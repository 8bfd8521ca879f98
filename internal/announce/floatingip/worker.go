package floatingip

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	heraldv1alpha1 "github.com/herald-lb/herald/api/v1alpha1"
	"github.com/herald-lb/herald/internal/announce"
	"github.com/herald-lb/herald/internal/cloud"
)

// workerKey is one floating IP owned by this node's server. lease is its
// election key, which names its Lease (leaseArbiter).
type workerKey struct {
	account           accountKey
	id, server, lease string
}

// leaseArbiter is the Arbiter as one worker sees it. A floating IP's lease
// is named by the IP's election key (its address, or its IPv6 /64), which
// every speaker knows, so the election can read who holds it and leave it
// there (Options.Holder); the cloud's ID of the IP is known only to the
// nodes that have looked it up.
type leaseArbiter struct {
	arbiter cloud.Arbiter
	key     string
}

func (l leaseArbiter) Acquire(ctx context.Context, _, node string) (bool, error) {
	return l.arbiter.Acquire(ctx, l.key, node)
}

func (l leaseArbiter) Release(ctx context.Context, _, node string) error {
	return l.arbiter.Release(ctx, l.key, node)
}

// arbiter is the Arbiter of the worker's floating IP, its lease named by
// the election key.
func (w *worker) arbiter() leaseArbiter { return leaseArbiter{w.a.opts.Arbiter, w.key.lease} }

// worker keeps one owned floating IP on this node's server: a check (read,
// assign when elsewhere) at once and then at the budget's interval, the
// lease renewed in between.
type worker struct {
	a      *Announcer
	key    workerKey
	acct   *account
	cancel context.CancelFunc
	done   chan struct{}
	// rotated passes a new token's account to run; given is the last one
	// passed (the Announcer's lock held).
	rotated chan *account
	given   *account

	mu       sync.Mutex
	services []announce.Announcement
	placed   bool // the last check found or put the IP on this server
	confirm  bool // read it again soon: it has just come here (run's goroutine)
	since    time.Time
	move     *heraldv1alpha1.FloatingIPMove // the assignment this worker made
	lastErr  string                         // the last failure reported, once per reason
	owner    *cloud.Owner
}

// startWorker starts the worker of k; the caller holds a.mu.
func (a *Announcer) startWorker(k workerKey, acct *account) *worker {
	ctx, cancel := context.WithCancel(a.ctx)
	w := &worker{a: a, key: k, acct: acct, cancel: cancel, done: make(chan struct{}), rotated: make(chan *account, 1), given: acct}
	go w.run(ctx)
	return w
}

func (w *worker) setServices(s []announce.Announcement) {
	w.mu.Lock()
	w.services = s
	w.mu.Unlock()
}

func (w *worker) inPlace() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.placed
}

// placement is where the IP is, when the last check found or put it on
// this node's server.
func (w *worker) placement() (placement, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return placement{since: w.since, move: w.move}, w.placed
}

// stop ends the worker; with release it also gives up the lease, so the
// next owner need not wait for it to expire.
func (w *worker) stop(release bool) {
	w.cancel()
	<-w.done
	w.a.metrics.owned.DeleteLabelValues(w.key.id, w.key.server)
	if !release || w.owner == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.a.ctx), 3*time.Second)
	defer cancel()
	if err := w.owner.Release(ctx, w.key.id); err != nil {
		w.a.opts.Log.Error(err, "release floating IP lease", "floatingIP", w.key.id)
	}
}

// retryMax caps the wait before retrying a failed check, after the check's
// own attempts (cloud.Backoff) have failed. The waits start at two leases
// (the time scale of a failover) and double, so that a long API outage
// costs a few requests an hour while the IP stays where it is.
const retryMax = 5 * time.Minute

func (w *worker) run(ctx context.Context) {
	defer close(w.done)
	if err := w.newOwner(w.acct); err != nil {
		w.fail(err)
		return
	}
	next := time.Now()
	var retryAt time.Time // no check before, after a failed one
	failures := 0
	// The lease is renewed three times per lease between the cloud checks,
	// which are spaced for the API's budget; a lease costs the API server,
	// not the cloud.
	renew := time.NewTicker(w.a.opts.LeaseDuration / 3)
	defer renew.Stop()
	for {
		if !time.Now().Before(next) {
			err := w.check(ctx)
			next = time.Now().Add(w.interval())
			switch {
			case err == nil && w.confirm:
				// The IP has just come here: read it once more after two
				// leases, in case an action of a stopped owner, still
				// running at the cloud, moves it after this read.
				w.confirm = false
				failures, retryAt = 0, time.Time{}
				if c := time.Now().Add(2 * w.a.opts.LeaseDuration); c.Before(next) {
					next = c
				}
			case err == nil:
				failures, retryAt = 0, time.Time{}
			case cloud.Classify(err) == cloud.Permanent:
				// The operator must act (a token, a deleted IP): not
				// before the next regular check, or a new token.
				retryAt = next
			default:
				failures++
				retryAt = time.Now().Add(cloud.Backoff{Base: 2 * w.a.opts.LeaseDuration, Max: retryMax}.Delay(failures - 1))
				if retryAt.Before(next) {
					next = retryAt
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case acct := <-w.rotated:
			// The token changed: the next check uses it, now, so that a
			// wrong one is reported when it is put in, not hours later.
			if err := w.newOwner(acct); err != nil {
				w.fail(err)
				continue
			}
			failures, retryAt, next = 0, time.Time{}, time.Now()
		case <-renew.C:
			// Between checks only the lease. A change makes the next check
			// now: the lease lost (another node took it while this one was
			// cut off), or won while the IP is not here (the last owner's
			// lease has expired: this is the failover). After a failed
			// check, not before its retry is due.
			ok, err := w.arbiter().Acquire(ctx, w.key.id, w.a.opts.Node)
			if err == nil && ok != w.inPlace() && !time.Now().Before(retryAt) {
				next = time.Now()
			}
		case <-time.After(time.Until(next)):
		}
	}
}

// newOwner makes the worker's cloud.Owner for acct's client; run's
// goroutine only. Leases and their hold-down live in the Arbiter, so a new
// Owner forgets nothing that keeps nodes from fighting.
func (w *worker) newOwner(acct *account) error {
	owner, err := cloud.NewOwner(cloud.OwnerConfig{
		Provider: acct.provider, Arbiter: w.arbiter(), Budget: acct.budget,
		Node: w.a.opts.Node, Server: w.key.server, Logger: slogger(w.a.opts.Log), HoldDown: w.a.opts.HoldDown,
	})
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.owner, w.acct = owner, acct
	w.mu.Unlock()
	return nil
}

// rotate hands the worker its project's client for a new token.
func (w *worker) rotate(acct *account) {
	select {
	case <-w.rotated: // an older one not taken yet
	default:
	}
	w.rotated <- acct
}

// interval spaces the checks so that all of the cluster's floating IPs
// together, on whichever nodes, stay inside the project's budget
// (cloud.Budget.CheckInterval).
func (w *worker) interval() time.Duration {
	if w.a.opts.CheckEvery > 0 {
		return w.a.opts.CheckEvery
	}
	w.a.mu.Lock()
	n := max(len(w.a.workers), w.a.clusterIPs)
	w.a.mu.Unlock()
	return w.acct.budget.CheckInterval(max(n, 1))
}

// check is one Reconcile, reported; its error, if it failed.
func (w *worker) check(ctx context.Context) error {
	res, err := w.owner.Reconcile(ctx, w.key.id)
	if ctx.Err() != nil {
		return nil
	}
	m := w.a.metrics
	if rl, ok := w.acct.budget.Last(); ok {
		m.remaining.WithLabelValues(w.key.account.provider).Set(float64(rl.Remaining))
	}
	if err != nil {
		m.checks.WithLabelValues(w.key.account.provider, "Error", cloud.ErrorCode(err)).Inc()
		w.fail(err)
		return err
	}
	m.checks.WithLabelValues(w.key.account.provider, string(res.Outcome), "").Inc()
	if res.Previous != w.key.server && res.Outcome != cloud.HeldElsewhere {
		m.mismatch.WithLabelValues(w.key.id).Inc()
	}
	placed := res.Outcome == cloud.InPlace || res.Outcome == cloud.Assigned
	if placed {
		m.owned.WithLabelValues(w.key.id, w.key.server).Set(1)
	} else {
		m.owned.DeleteLabelValues(w.key.id, w.key.server)
	}
	w.mu.Lock()
	changed := placed != w.placed
	w.placed, w.lastErr = placed, ""
	if changed && placed {
		w.confirm = true
		// Whole seconds: the status object keeps no more, and an equal
		// value costs no write.
		w.since = time.Now().Truncate(time.Second)
	}
	if res.Outcome == cloud.Assigned {
		w.move = &heraldv1alpha1.FloatingIPMove{FromServer: res.Previous,
			Duration: res.Duration.Round(time.Millisecond).String(), Requests: res.Attempts}
	}
	services := w.services
	w.mu.Unlock()
	switch res.Outcome {
	case cloud.Assigned:
		m.duration.WithLabelValues(w.key.account.provider).Observe(res.Duration.Seconds())
		from := res.Previous
		if from == "" {
			from = "no server"
		} else {
			from = "server " + from
		}
		w.event(services, announce.EventNormal, "FloatingIPAssigned", fmt.Sprintf(
			"floating IP %s assigned to server %s (node %q) from %s in %s, %d request(s)",
			w.key.id, w.key.server, w.a.opts.Node, from, res.Duration.Round(time.Millisecond), res.Attempts))
	case cloud.HoldingDown:
		w.event(services, announce.EventWarning, "FloatingIPOwnerMismatch", fmt.Sprintf(
			"floating IP %s is on server %s, not on node %q's server %s, after this node moved it: left there for the hold-down, so that nodes do not fight over it",
			w.key.id, res.Previous, w.a.opts.Node, w.key.server))
	}
	if changed {
		w.a.opts.Resync()
	}
	return nil
}

// fail reports a failed check once per reason: permanent errors (the token,
// a missing IP) need the operator, and are not retried until the next
// check; retryable ones were already retried with backoff, and the IP stays
// where it is.
func (w *worker) fail(err error) {
	w.mu.Lock()
	same := w.lastErr == err.Error()
	w.lastErr = err.Error()
	services := w.services
	w.mu.Unlock()
	if same {
		return
	}
	class := cloud.Classify(err)
	w.a.opts.Log.Error(err, "floating IP check failed; it stays where it is", "floatingIP", w.key.id, "class", class.String())
	w.event(services, announce.EventWarning, "FloatingIPFailed", fmt.Sprintf(
		"floating IP %s for node %q: %s (%s, code %q); it stays where it is",
		w.key.id, w.a.opts.Node, err, strings.ToLower(class.String()), cloud.ErrorCode(err)))
}

func (w *worker) event(services []announce.Announcement, typ, reason, msg string) {
	for _, s := range services {
		w.a.opts.Event(s.Service, typ, reason, msg)
	}
}
