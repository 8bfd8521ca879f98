package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want Class
	}{
		{"unauthorized", &APIError{Code: CodeUnauthorized, Status: 401}, Permanent},
		{"forbidden", &APIError{Code: CodeForbidden, Status: 403}, Permanent},
		{"token_readonly", &APIError{Code: CodeTokenReadonly, Status: 403}, Permanent},
		{"not_found", &APIError{Code: CodeNotFound, Status: 404}, Permanent},
		{"wrapped not_found", fmt.Errorf("floating IP 1: %w", &APIError{Code: CodeNotFound}), Permanent},
		{"not eligible", fmt.Errorf("node a: %w", ErrNotEligible), Permanent},
		{"unknown 4xx", &APIError{Code: "http_418", Status: 418}, Permanent},
		{"rate limited", &APIError{Code: CodeRateLimited, Status: 429}, Retryable},
		{"locked", &APIError{Code: CodeLocked, Status: 423}, Retryable},
		{"conflict", &APIError{Code: CodeConflict, Status: 409}, Retryable},
		{"server_error", &APIError{Code: "server_error", Status: 500}, Retryable},
		{"bare 503", &APIError{Code: "http_503", Status: http.StatusServiceUnavailable}, Retryable},
		{"network", &APIError{Code: CodeNetwork}, Retryable},
		{"failed action", errors.New("action failed"), Retryable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second, Attempts: 10}
	for _, tc := range []struct {
		retry    int
		rand     float64
		want     time.Duration
		describe string
	}{
		{0, 0, 50 * time.Millisecond, "least jitter: half the step"},
		{0, 0.999999, 100 * time.Millisecond, "most jitter: the whole step"},
		{1, 0, 100 * time.Millisecond, "doubles"},
		{3, 0.5, 600 * time.Millisecond, "800 ms step, half jittered"},
		{4, 0, 500 * time.Millisecond, "capped at Max"},
		{62, 1, time.Second, "no overflow"},
	} {
		t.Run(tc.describe, func(t *testing.T) {
			b := b
			b.Rand = func() float64 { return tc.rand }
			got := b.Delay(tc.retry)
			if d := got - tc.want; d < -time.Microsecond || d > time.Microsecond {
				t.Errorf("Delay(%d) with rand %v = %v, want %v", tc.retry, tc.rand, got, tc.want)
			}
		})
	}
}

func TestRetry(t *testing.T) {
	b := Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond, Attempts: 4}
	for _, tc := range []struct {
		name         string
		errs         []error // one per call; nil succeeds
		wantAttempts int
		wantErr      string
	}{
		{"first try", []error{nil}, 1, ""},
		{"locked then success", []error{&APIError{Code: CodeLocked}, nil}, 2, ""},
		{"permanent stops at once", []error{&APIError{Code: CodeForbidden}, nil}, 1, CodeForbidden},
		{"capped", []error{&APIError{Code: "server_error"}, &APIError{Code: "server_error"},
			&APIError{Code: "server_error"}, &APIError{Code: "server_error"}, nil}, 4, "server_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			n, err := b.retry(context.Background(), nil, func(context.Context) error {
				calls++
				return tc.errs[calls-1]
			})
			if n != tc.wantAttempts || calls != tc.wantAttempts {
				t.Errorf("attempts %d, calls %d, want %d", n, calls, tc.wantAttempts)
			}
			if got := ErrorCode(err); got != tc.wantErr {
				t.Errorf("error %v, want code %q", err, tc.wantErr)
			}
		})
	}
}

func TestCheckInterval(t *testing.T) {
	for _, tc := range []struct {
		name     string
		seen     *RateLimit
		ips      int
		want     time.Duration
		maxShare float64 // of the hourly limit, for all ips together
	}{
		{"one IP, nothing seen", nil, 1, 100 * time.Second, 0.01},
		{"5 IPs: 1% each", nil, 5, 100 * time.Second, 0.05},
		{"10 IPs: 5% in all", nil, 10, 200 * time.Second, 0.05},
		{"100 IPs: 5% in all", nil, 100, 2000 * time.Second, 0.05},
		{"plenty left", &RateLimit{Limit: 3600, Remaining: 2000}, 10, 200 * time.Second, 0.05},
		{"a quarter left: unchanged", &RateLimit{Limit: 3600, Remaining: 900}, 10, 200 * time.Second, 0.05},
		{"an eighth left: twice as slow", &RateLimit{Limit: 3600, Remaining: 450}, 10, 400 * time.Second, 0.025},
		{"nothing left: MaxSlowdown", &RateLimit{Limit: 3600, Remaining: 0}, 10, 2000 * time.Second, 0.005},
		{"a smaller limit", &RateLimit{Limit: 360, Remaining: 360}, 1, 1000 * time.Second, 0.01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b Budget
			if tc.seen != nil {
				b.Observe(*tc.seen)
			}
			got := b.CheckInterval(tc.ips)
			if got != tc.want {
				t.Errorf("CheckInterval(%d) = %v, want %v", tc.ips, got, tc.want)
			}
			limit := DefaultLimit
			if tc.seen != nil {
				limit = tc.seen.Limit
			}
			perHour := float64(tc.ips*RequestsPerCheck) * float64(time.Hour) / float64(got)
			if perHour > tc.maxShare*float64(limit)+1e-9 {
				t.Errorf("%d IPs: %.1f requests/h, more than %.1f%% of %d", tc.ips, perHour, 100*tc.maxShare, limit)
			}
		})
	}
	var none *Budget
	if got := none.RefillPeriod(); got != time.Second {
		t.Errorf("nil budget: refill period %v, want 1s (3,600/h)", got)
	}
}

func TestMemoryArbiter(t *testing.T) {
	now := time.Unix(0, 0)
	a := &MemoryArbiter{Duration: 10 * time.Second, HoldDown: 30 * time.Second, Now: func() time.Time { return now }}
	ctx := context.Background()
	for _, step := range []struct {
		at   time.Duration
		node string
		want bool
		why  string
	}{
		{0, "a", true, "free: a takes it"},
		{time.Second, "b", false, "a's lease runs"},
		{5 * time.Second, "a", true, "a renews"},
		{14 * time.Second, "b", false, "renewed at 5 s: runs to 15 s"},
		{20 * time.Second, "b", false, "expired, but within a's hold-down (to 30 s)"},
		{30 * time.Second, "b", true, "expired and past the hold-down: b takes it"},
		{41 * time.Second, "a", false, "b's hold-down runs to 60 s though its lease expired at 40 s"},
		{50 * time.Second, "b", true, "b renews"},
		{59 * time.Second, "a", false, "b renewed at 50 s: runs to 60 s"},
		{61 * time.Second, "a", true, "b stopped renewing: a takes it back"},
	} {
		now = time.Unix(0, 0).Add(step.at)
		got, err := a.Acquire(ctx, "ip-1", step.node)
		if err != nil || got != step.want {
			t.Fatalf("at %v, %s: Acquire = %v, %v; want %v (%s)", step.at, step.node, got, err, step.want, step.why)
		}
	}
	if h := a.Holder("ip-1"); h != "a" {
		t.Errorf("holder %q, want a", h)
	}
	// A release by another node changes nothing; by the holder, it frees
	// the lease at once, within the hold-down too.
	for _, step := range []struct {
		release, acquire string
		want             bool
	}{
		{"b", "b", false},
		{"a", "b", true},
	} {
		if err := a.Release(ctx, "ip-1", step.release); err != nil {
			t.Fatal(err)
		}
		if got, err := a.Acquire(ctx, "ip-1", step.acquire); err != nil || got != step.want {
			t.Errorf("after %s released: Acquire by %s = %v, %v; want %v", step.release, step.acquire, got, err, step.want)
		}
	}
}
