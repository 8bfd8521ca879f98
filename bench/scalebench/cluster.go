package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/herald-lb/herald/internal/membership"
)

// cluster is n members of one profile in this process, member i on
// 127.<net>.<i/250>.<i%250+1>: its own loopback address, the same port for
// all, as a cluster of speakers has.
type cluster struct {
	members []*membership.Membership
	names   []string
	alive   []bool
}

// host returns member i's address in loopback network net (80 to 250).
func host(net, i int) string {
	return fmt.Sprintf("127.%d.%d.%d", net, i/250, i%250+1)
}

// startCluster starts n members, and waits until every member lists all
// n. Like speakers, which list every node of the cluster, each is given
// the addresses of all the others as peers: membership joins a few of
// them, and fits the fast profile's timers to their number (seedOnly:
// only member 0's address, as this benchmark did at first). Members start
// stagger apart. It fails,
// having stopped what it started, if a member cannot start or the cluster
// does not converge within limit.
func startCluster(ctx context.Context, profile string, n, net, port int, seedOnly bool, stagger, limit time.Duration, log *slog.Logger) (*cluster, error) {
	c := &cluster{alive: make([]bool, n)}
	addrs := make([]string, n)
	for i := range n {
		addrs[i] = host(net, i)
	}
	for i := range n {
		name := fmt.Sprintf("node-%03d", i)
		others := slices.Concat(addrs[:i], addrs[i+1:])
		if seedOnly {
			others = addrs[:min(i, 1)]
		}
		cfg := membership.Config{NodeName: name, BindAddr: addrs[i], BindPort: port, Profile: profile, JoinTimeout: time.Hour, Logger: log,
			Peers: func() []string { return others }}
		m, err := membership.New(cfg)
		if err == nil {
			err = m.Start(ctx)
		}
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("member %d of %d: %w", i+1, n, err)
		}
		c.members, c.names, c.alive[i] = append(c.members, m), append(c.names, name), true
		time.Sleep(stagger)
	}
	deadline := time.Now().Add(limit)
	for {
		behind := 0
		for _, m := range c.members {
			if len(m.Members()) != n {
				behind++
			}
		}
		if behind == 0 {
			return c, nil
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("%d of %d members still did not list all the others after %s", behind, n, limit)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// stop shuts every member down at once, without Leave.
func (c *cluster) stop() {
	var wg sync.WaitGroup
	for _, m := range c.members {
		wg.Go(func() { _ = m.Shutdown() })
	}
	wg.Wait()
}

// survivors returns the indexes of the members not killed.
func (c *cluster) survivors() []int {
	var s []int
	for i, a := range c.alive {
		if a {
			s = append(s, i)
		}
	}
	return s
}

// watch is what the survivors saw while watched: when each dropped the
// victim, and every (observer, member) pair where an observer dropped a
// live member from Members(): a false positive of the failure detector.
type watch struct {
	dropped  []time.Duration // per observer that dropped the victim
	spurious int
	missed   int // observers that never dropped the victim
}

// observe watches every survivor through Changes(), as the speaker does,
// until each has dropped victim (any name when victim is "": a quiet
// window, watched until ctx ends) or ctx ends. began is the kill's time.
func (c *cluster) observe(ctx context.Context, victim string, began time.Time) watch {
	var (
		mu sync.Mutex
		w  watch
		wg sync.WaitGroup
	)
	live := map[string]bool{}
	for _, i := range c.survivors() {
		live[c.names[i]] = true
	}
	delete(live, victim)
	for _, i := range c.survivors() {
		if c.names[i] == victim {
			continue
		}
		m := c.members[i]
		wg.Go(func() {
			seen := map[string]bool{}
			for {
				// A set, not slices.Contains per live member: at 500
				// members that was 250,000 comparisons per observer and
				// change, the watchers' CPU competing with the members'.
				got := map[string]bool{}
				for _, name := range m.Members() {
					got[name] = true
				}
				gone := victim != "" && !got[victim]
				mu.Lock()
				for name := range live {
					if !seen[name] && !got[name] {
						seen[name] = true
						w.spurious++
					}
				}
				if gone {
					w.dropped = append(w.dropped, time.Since(began))
				}
				mu.Unlock()
				if gone {
					return
				}
				select {
				case <-m.Changes():
				case <-ctx.Done():
					if victim != "" {
						mu.Lock()
						w.missed++
						mu.Unlock()
					}
					return
				}
			}
		})
	}
	wg.Wait()
	return w
}

// kill stops member i abruptly, without Leave, like a crashed node, and
// returns when.
func (c *cluster) kill(i int) (time.Time, error) {
	c.alive[i] = false
	began := time.Now()
	if err := c.members[i].Shutdown(); err != nil {
		return began, fmt.Errorf("kill %s: %w", c.names[i], err)
	}
	return began, nil
}
