package cloud

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff spaces the attempts of one call that fails with retryable
// errors: exponential from Base to Max, with equal jitter (half the delay
// fixed, half random), so that the nodes retrying after the same API
// hiccup spread out instead of coming back together, and none retries
// sooner than half its step.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
	// Attempts caps the attempts, the first included: an API outage is
	// reported after them instead of being retried for ever.
	Attempts int
	// Rand returns a number in [0, 1); nil means math/rand/v2.
	Rand func() float64
}

// DefaultBackoff makes six attempts, with steps of 1, 2, 4, 8 and 16 s
// between them (half to all of each waited): 15 to 31 s, within which
// Hetzner's locks and short outages end, before an outage is reported.
func DefaultBackoff() Backoff {
	return Backoff{Base: time.Second, Max: time.Minute, Attempts: 6}
}

// Delay is the wait before retry number retry (0 for the first retry).
func (b Backoff) Delay(retry int) time.Duration {
	d := b.Max
	if retry < 30 && b.Base<<retry > 0 && b.Base<<retry < b.Max {
		d = b.Base << retry
	}
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	half := d / 2
	return half + time.Duration(r()*float64(d-half))
}

// retry runs op until it succeeds, fails with a permanent error, ctx ends
// or the attempts are used up, and returns the attempts made. After
// rate_limit_exceeded it waits at least the time the budget takes to earn
// one request back.
func (b Backoff) retry(ctx context.Context, budget *Budget, op func(context.Context) error) (int, error) {
	attempts := max(b.Attempts, 1)
	var err error
	for n := range attempts {
		if err = op(ctx); err == nil {
			return n + 1, nil
		}
		if Classify(err) == Permanent || ctx.Err() != nil || n == attempts-1 {
			return n + 1, err
		}
		wait := b.Delay(n)
		if ErrorCode(err) == CodeRateLimited {
			wait = max(wait, budget.RefillPeriod())
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return n + 1, fmt.Errorf("%w (while backing off: %v)", err, ctx.Err())
		case <-t.C:
		}
	}
	return attempts, err
}
