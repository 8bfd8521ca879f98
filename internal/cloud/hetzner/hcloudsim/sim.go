// Package hcloudsim is a stateful stand-in for the part of the Hetzner
// Cloud API that Herald uses, served on 127.0.0.1 for tests: servers,
// floating IPs, their assign and unassign actions, and action polling, with
// Hetzner's JSON shapes and error codes. The real hcloud-go client talks to
// it through hcloud.WithEndpoint(sim.Endpoint()).
//
// It behaves like the real API where Herald depends on it: an assign is an
// action that runs for Options.ActionTime, locks the floating IP meanwhile
// (423 locked) and moves it when it ends, so a later read shows the new
// server; every token has an hourly request budget, refilled continuously,
// announced in RateLimit-* headers and enforced with 429
// rate_limit_exceeded; a wrong token gets 401 unauthorized. Faults (any
// status and code, or a delay) can be injected, and every request is
// logged so tests can count them. Test code only.
package hcloudsim

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a Sim.
type Options struct {
	// Tokens are the accepted API tokens; none means "test-token".
	Tokens []string
	// Limit is each token's hourly request budget; 0 means Hetzner's 3,600.
	Limit int
	// ActionTime is how long an assign or unassign action runs;
	// SetActionTime changes it.
	ActionTime time.Duration
	// OnAssigned, if set, runs when an action ends and before the floating
	// IP reads as moved and the action as done (server 0: unassigned); a
	// lab points its router's route here.
	OnAssigned func(floatingIP, server int64)
}

// Fault is an injected answer.
type Fault struct {
	// Method and Path select requests (Path without /v1 and query, e.g.
	// "/floating_ips/1/actions/assign"); empty matches any.
	Method string
	Path   string
	// Status and Code make the answer: a Hetzner error body when Code is
	// set, an empty body otherwise. Status 0 answers normally, after Delay.
	Status int
	Code   string
	// Delay holds the request before answering (a slow or hung API).
	Delay time.Duration
	// Times is how many requests the fault hits; 0 means every one.
	Times int
}

// Request is one logged request.
type Request struct {
	Time   time.Time // when it arrived
	Method string
	Path   string // without /v1 and query
	Query  string
	Token  string // the bearer token sent
	Status int    // 0 while unanswered
	Code   string // the error code answered, if any
}

// Sim is the stand-in API.
type Sim struct {
	opts Options
	srv  *httptest.Server

	mu         sync.Mutex
	servers    map[int64]string // ID -> name
	fips       map[int64]*floatingIP
	actions    map[int64]*action
	nextAction int64
	budgets    map[string]*bucket
	faults     []*Fault
	log        []Request
	timers     []*time.Timer
	closed     bool
}

// New starts a Sim on 127.0.0.1; Close stops it.
func New(opts Options) *Sim {
	if len(opts.Tokens) == 0 {
		opts.Tokens = []string{"test-token"}
	}
	if opts.Limit <= 0 {
		opts.Limit = 3600
	}
	s := &Sim{
		opts:       opts,
		servers:    map[int64]string{},
		fips:       map[int64]*floatingIP{},
		actions:    map[int64]*action{},
		nextAction: 1000,
		budgets:    map[string]*bucket{},
	}
	now := time.Now()
	for _, t := range opts.Tokens {
		s.budgets[t] = &bucket{remaining: float64(opts.Limit), at: now}
	}
	s.srv = httptest.NewServer(s.front(s.routes()))
	return s
}

// Endpoint is the API's base URL, for hcloud.WithEndpoint.
func (s *Sim) Endpoint() string { return s.srv.URL + "/v1" }

// Close stops the server and any running action.
func (s *Sim) Close() {
	s.mu.Lock()
	s.closed = true
	for _, t := range s.timers {
		t.Stop()
	}
	s.mu.Unlock()
	s.srv.Close()
}

// AddServer adds a server.
func (s *Sim) AddServer(id int64, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servers[id] = name
}

// AddFloatingIP adds a floating IP: an address, or an IPv6 /64 such as
// "2001:db8:1::/64"; server 0 leaves it unassigned.
func (s *Sim) AddFloatingIP(id int64, name, ip string, server int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	typ := "ipv4"
	if strings.Contains(ip, ":") {
		typ = "ipv6"
	}
	s.fips[id] = &floatingIP{id: id, name: name, ip: ip, typ: typ, server: server}
}

// Assignment returns the server floating IP id is assigned to (0: none).
func (s *Sim) Assignment(id int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.fips[id]; f != nil {
		return f.server
	}
	return 0
}

// SetActionTime sets how long the actions started from now on run, so one
// Sim (and the lab around it) can serve several action times in turn.
func (s *Sim) SetActionTime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.ActionTime = d
}

// SetRemaining sets what is left of token's budget.
func (s *Sim) SetRemaining(token string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.budgets[token]; b != nil {
		b.remaining, b.at = float64(n), time.Now()
	}
}

// Inject adds a fault; the earliest matching fault answers.
func (s *Sim) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every injected fault: the API is well again.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Requests returns the request log.
func (s *Sim) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// Count counts the logged requests with method (any if empty) whose path
// starts with prefix.
func (s *Sim) Count(method, prefix string) int {
	n := 0
	for _, r := range s.Requests() {
		if (method == "" || r.Method == method) && strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

// bucket is one token's budget, refilled at Limit per hour, as Hetzner
// does (one request per second for 3,600/h).
type bucket struct {
	remaining float64
	at        time.Time
}

// take refills b up to now and spends one request; false when empty.
func (b *bucket) take(now time.Time, limit int) bool {
	perSec := float64(limit) / 3600
	b.remaining = min(float64(limit), b.remaining+now.Sub(b.at).Seconds()*perSec)
	b.at = now
	if b.remaining < 1 {
		return false
	}
	b.remaining--
	return true
}

func (s *Sim) rateHeaders(h http.Header, b *bucket, now time.Time) {
	limit := float64(s.opts.Limit)
	toFull := time.Duration((limit - b.remaining) / limit * float64(time.Hour))
	h.Set("RateLimit-Limit", strconv.Itoa(s.opts.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(int(b.remaining)))
	h.Set("RateLimit-Reset", strconv.FormatInt(now.Add(toFull).Unix(), 10))
}

// recorder keeps the status and error code of an answer for the log.
type recorder struct {
	http.ResponseWriter
	status int
	code   string
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// front logs every request, checks its token, spends its budget and
// applies the faults before the API proper sees it.
func (s *Sim) front(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		path := strings.TrimPrefix(r.URL.Path, "/v1")
		// Logged on arrival, so a request still held by a Delay counts;
		// its answer is filled in when it is sent.
		s.mu.Lock()
		i := len(s.log)
		token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.log = append(s.log, Request{Time: time.Now(), Method: r.Method, Path: path, Query: r.URL.RawQuery, Token: token})
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.log[i].Status, s.log[i].Code = rec.status, rec.code
			s.mu.Unlock()
		}()
		now := time.Now()
		s.mu.Lock()
		b := s.budgets[token]
		if b == nil {
			s.mu.Unlock()
			writeError(rec, http.StatusUnauthorized, "unauthorized", "unable to authenticate")
			return
		}
		ok := b.take(now, s.opts.Limit)
		s.rateHeaders(rec.Header(), b, now)
		f := s.fault(r.Method, path)
		s.mu.Unlock()
		if !ok {
			writeError(rec, http.StatusTooManyRequests, "rate_limit_exceeded", "limit of requests per hour reached")
			return
		}
		if f != nil {
			if !sleep(r.Context(), f.Delay) {
				return
			}
			if f.Status != 0 {
				if f.Code == "" {
					rec.WriteHeader(f.Status)
					return
				}
				writeError(rec, f.Status, f.Code, "injected fault")
				return
			}
		}
		api.ServeHTTP(rec, r)
	})
}

// fault returns the first fault matching a request, using up one of its
// times; s.mu is held.
func (s *Sim) fault(method, path string) *Fault {
	for i, f := range s.faults {
		if (f.Method != "" && f.Method != method) || (f.Path != "" && f.Path != path) {
			continue
		}
		hit := *f
		if f.Times > 0 {
			if f.Times--; f.Times == 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
		}
		return &hit
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func notFound(kind string, id int64) string {
	return fmt.Sprintf("%s with ID %d not found", kind, id)
}
