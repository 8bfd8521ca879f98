package cloud

import (
	"sync"
	"time"
)

// The request budget. Hetzner allows 3,600 requests per hour per project,
// refilled at one request per second, and its cloud controller manager
// spends from the same budget; every answer carries RateLimit-Limit,
// RateLimit-Remaining and RateLimit-Reset (when the budget is full again).
const (
	// DefaultLimit is the hourly limit assumed until an answer says
	// otherwise.
	DefaultLimit = 3600
	// RequestsPerCheck is what one periodic check of one IP costs: a read.
	RequestsPerCheck = 1
	// PerIPShare is the share of the hourly budget one floating IP's
	// periodic checks may use.
	PerIPShare = 0.01
	// TotalShare is the share all periodic checks together may use, so many
	// floating IPs leave the rest to failovers and the controller manager.
	TotalShare = 0.05
	// LowWater is the share of the limit below which checks slow down, in
	// proportion to how little is left, up to MaxSlowdown times.
	LowWater    = 0.25
	MaxSlowdown = 10
)

// RateLimit is what an answer's rate-limit headers said.
type RateLimit struct {
	Limit     int
	Remaining int
	Reset     time.Time
}

// Budget keeps the latest rate-limit headers a provider saw. A nil *Budget
// is valid and knows nothing: it assumes DefaultLimit, all of it left.
type Budget struct {
	mu   sync.Mutex
	last RateLimit
	seen bool
}

// Observe records an answer's headers; answers without them (Limit 0) are
// ignored.
func (b *Budget) Observe(rl RateLimit) {
	if b == nil || rl.Limit <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last, b.seen = rl, true
}

// Last returns the latest headers, and false when none were seen.
func (b *Budget) Last() (RateLimit, bool) {
	if b == nil {
		return RateLimit{}, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last, b.seen
}

func (b *Budget) limit() int {
	if rl, ok := b.Last(); ok {
		return rl.Limit
	}
	return DefaultLimit
}

// RefillPeriod is the time the budget takes to earn one request back: the
// shortest sensible wait after rate_limit_exceeded.
func (b *Budget) RefillPeriod() time.Duration {
	return time.Hour / time.Duration(b.limit())
}

// CheckInterval is the time between two periodic checks of one floating IP
// when Herald checks ips floating IPs in the project. With L the hourly
// limit and R = RequestsPerCheck,
//
//	interval = R · (1 h / L) · max(1/PerIPShare, ips/TotalShare)
//
// so one IP costs at most PerIPShare of the budget and all of them together
// at most TotalShare. For Hetzner's 3,600/h that is 100 s for up to 5 IPs
// (36 requests/h each, 1%), and 200 s for 10 (180 requests/h in all, 5%).
// When fewer than LowWater·L requests remain, the interval grows by
// LowWater·L / remaining, at most MaxSlowdown times: the controller
// manager, or a failover, needs the rest more than a check does.
func (b *Budget) CheckInterval(ips int) time.Duration {
	limit := b.limit()
	per := time.Hour / time.Duration(limit) * RequestsPerCheck
	interval := time.Duration(float64(per) * max(1/PerIPShare, float64(ips)/TotalShare))
	rl, ok := b.Last()
	low := LowWater * float64(limit)
	if ok && float64(rl.Remaining) < low {
		interval = time.Duration(float64(interval) * min(MaxSlowdown, low/float64(max(rl.Remaining, 1))))
	}
	return interval
}
