package cloud

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Defaults for OwnerConfig.
const (
	// DefaultActionTimeout bounds one assign, the wait for its action
	// included. Hetzner publishes no figure; its assign actions end in
	// seconds.
	DefaultActionTimeout = 30 * time.Second
	// DefaultHoldDown is how long an IP this node moved is not moved back
	// if something else takes it away.
	DefaultHoldDown = 30 * time.Second
)

// OwnerConfig configures an Owner.
type OwnerConfig struct {
	Provider Provider
	Arbiter  Arbiter
	// Budget receives the provider's rate-limit headers (the provider is
	// built with the same Budget); it sets the wait after a 429. May be nil.
	Budget *Budget
	// Node is this node's name, its identity for the Arbiter.
	Node string
	// Server is this node's server ID (Provider.ServerID).
	Server        string
	Backoff       Backoff
	ActionTimeout time.Duration
	HoldDown      time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
}

// Owner makes the cloud deliver the floating IPs this node owns to its
// server, and does nothing more: it reads before it writes, writes only
// when the IP is elsewhere, and never unassigns — an IP stays where it is,
// and keeps working there, until its next owner takes it.
type Owner struct {
	cfg OwnerConfig
	log *slog.Logger

	mu    sync.Mutex
	moved map[string]time.Time // IP ID -> when this node last assigned it
}

// NewOwner returns an Owner; zero durations, and a Backoff with no
// Attempts, get the defaults.
func NewOwner(cfg OwnerConfig) (*Owner, error) {
	if cfg.Provider == nil || cfg.Arbiter == nil || cfg.Node == "" || cfg.Server == "" {
		return nil, errors.New("cloud owner: provider, arbiter, node and server are required")
	}
	if cfg.Backoff.Attempts == 0 {
		cfg.Backoff = DefaultBackoff()
	}
	if cfg.ActionTimeout <= 0 {
		cfg.ActionTimeout = DefaultActionTimeout
	}
	if cfg.HoldDown <= 0 {
		cfg.HoldDown = DefaultHoldDown
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Owner{cfg: cfg, log: log.With("node", cfg.Node, "server", cfg.Server), moved: map[string]time.Time{}}, nil
}

// Outcome is what Reconcile did.
type Outcome string

const (
	// InPlace: the IP is on this node's server; one read, no write.
	InPlace Outcome = "InPlace"
	// Assigned: the IP was moved to this node's server and the cloud
	// reported the move done.
	Assigned Outcome = "Assigned"
	// HeldElsewhere: another node holds the IP's lease; nothing was sent to
	// the cloud.
	HeldElsewhere Outcome = "HeldElsewhere"
	// HoldingDown: this node moved the IP less than the hold-down ago and
	// something has moved it away since; it is left there for now, and the
	// mismatch reported.
	HoldingDown Outcome = "HoldingDown"
)

// Result is the report of one Reconcile.
type Result struct {
	Outcome Outcome
	// Previous is the server the IP was on when read ("" when
	// unassigned).
	Previous string
	// Attempts counts the assign requests sent.
	Attempts int
	// Duration runs from the first assign request to the cloud reporting
	// the move done.
	Duration time.Duration
}

// Reconcile is one check of floating IP id, owned by this node: take or
// renew its lease, read it, and assign it to this node's server if it is
// elsewhere. Retryable errors are retried with backoff up to
// Backoff.Attempts; a permanent error is returned at once, for the caller
// to report, and the IP is not asked about again until the next check.
// Errors name the floating IP and the server (the provider's operation).
func (o *Owner) Reconcile(ctx context.Context, id string) (Result, error) {
	if ok, err := o.cfg.Arbiter.Acquire(ctx, id, o.cfg.Node); err != nil {
		return Result{}, fmt.Errorf("floating IP %s: lease: %w", id, err)
	} else if !ok {
		return Result{Outcome: HeldElsewhere}, nil
	}
	var fip FloatingIP
	_, err := o.cfg.Backoff.retry(ctx, o.cfg.Budget, func(ctx context.Context) error {
		var err error
		fip, err = o.cfg.Provider.FloatingIP(ctx, id)
		return err
	})
	if err != nil {
		o.log.Error("cannot read floating IP", "floatingIP", id, "code", ErrorCode(err), "class", Classify(err), "err", err)
		return Result{}, err
	}
	res := Result{Outcome: InPlace, Previous: fip.Server}
	if fip.Server == o.cfg.Server {
		return res, nil
	}
	if last, ok := o.lastMove(id); ok && o.cfg.Now().Sub(last) < o.cfg.HoldDown {
		res.Outcome = HoldingDown
		o.log.Warn("floating IP moved away within the hold-down; not moving it back yet", "floatingIP", id, "to", fip.Server)
		return res, nil
	}
	return o.assign(ctx, id, res)
}

func (o *Owner) assign(ctx context.Context, id string, res Result) (Result, error) {
	start := o.cfg.Now()
	lost := false
	attempts, err := o.cfg.Backoff.retry(ctx, o.cfg.Budget, func(ctx context.Context) error {
		// Renewed before each attempt: a backoff may outlast the lease.
		if ok, err := o.cfg.Arbiter.Acquire(ctx, id, o.cfg.Node); err != nil || !ok {
			lost = !ok && err == nil
			return err
		}
		actx, cancel := context.WithTimeout(ctx, o.cfg.ActionTimeout)
		defer cancel()
		return o.cfg.Provider.Assign(actx, id, o.cfg.Server)
	})
	res.Attempts = attempts
	switch {
	case lost:
		res.Outcome = HeldElsewhere
		return res, nil
	case err != nil:
		o.log.Error("cannot assign floating IP", "floatingIP", id, "attempts", attempts, "code", ErrorCode(err), "class", Classify(err), "err", err)
		return res, err
	}
	now := o.cfg.Now()
	res.Outcome, res.Duration = Assigned, now.Sub(start)
	o.mu.Lock()
	o.moved[id] = now
	o.mu.Unlock()
	o.log.Info("floating IP assigned", "floatingIP", id, "from", res.Previous, "duration", res.Duration, "attempts", attempts)
	return res, nil
}

func (o *Owner) lastMove(id string) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.moved[id]
	return t, ok
}

// Release gives up this node's lease on floating IP id, when it stops
// owning it (a graceful shutdown, or the election chose another node), so
// the next owner can take it at once. The IP itself stays assigned: it
// keeps working until the next owner moves it.
func (o *Owner) Release(ctx context.Context, id string) error {
	if err := o.cfg.Arbiter.Release(ctx, id, o.cfg.Node); err != nil {
		return fmt.Errorf("floating IP %s: release lease: %w", id, err)
	}
	return nil
}
