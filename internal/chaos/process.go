package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/bench/procstat"
	"github.com/herald-lb/herald/internal/lab"
)

// Starve holds the owner's speaker to share of one core for o.For: no
// move, or one clean move and no flapping back and forth.
func Starve(ctx context.Context, l *lab.Lab, t Target, share float64, o Options) (r Result, err error) {
	o = o.withDefaults()
	r.Scenario = fmt.Sprintf("owner's speaker held to %g%% of a core", share*100)
	w, err := startWatch(ctx, l, t, o, &r)
	if err != nil {
		return r, err
	}
	owner := w.owner
	from := time.Now()
	pid, err := l.SpeakerPID(owner)
	if err != nil {
		w.finish(ctx, &r, from, from)
		return r, err
	}
	cpu0, _ := procstat.CPUSeconds(pid)
	var to time.Time
	limit, err := l.LimitSpeakerCPU(owner, share)
	if err != nil {
		w.finish(ctx, &r, from, from)
		return r, err
	}
	defer func() {
		if to.IsZero() {
			to = time.Now()
		}
		periods, micros, terr := limit.Throttled()
		err = errors.Join(err, terr, limit.Release())
		r.figure("throttled periods", float64(periods))
		r.figure("throttled s", float64(micros)/1e6)
		if cpu1, cerr := procstat.CPUSeconds(pid); cerr == nil {
			r.figure("speaker cpu % of a core", 100*(cpu1-cpu0)/to.Sub(from).Seconds())
		}
		w.finish(context.WithoutCancel(ctx), &r, from, to)
	}()
	o.Log.Info("speaker starved", "node", owner, "share", share, "for", o.For)
	if o.Strict {
		// One clean move is allowed; a second is flapping.
		end := time.Now().Add(o.For)
		for time.Now().Before(end) {
			if err := lab.Sleep(ctx, 200*time.Millisecond); err != nil {
				return r, err
			}
			own := lab.Owned(between(w.answers.Rounds(), from, time.Now()))
			if own.Moves > 1 || own.Double > 0 {
				return r, fmt.Errorf("starved owner %s: the address moved %d times (owners %v), %d rounds answered twice", owner, own.Moves, own.Owners, own.Double)
			}
		}
	} else if err := lab.Sleep(ctx, o.For); err != nil {
		return r, err
	}
	to = time.Now()
	return r, nil
}

// APIDown stops the API server for o.For. Halfway through, the owner
// fails hard: the address must still move (memberlist needs no API).
// When the API is back, nothing may move for settle, and every Service
// must keep its address.
func APIDown(ctx context.Context, l *lab.Lab, t Target, settle time.Duration, o Options) (r Result, err error) {
	o = o.withDefaults()
	r.Scenario = fmt.Sprintf("API server down for %s, the owner killed halfway", o.For)
	before, err := serviceAddresses(ctx, l)
	if err != nil {
		return r, err
	}
	w, err := startWatch(ctx, l, t, o, &r)
	if err != nil {
		return r, err
	}
	owner := w.owner
	from := time.Now()
	var stopped *lab.StoppedAPIServer
	var back, quiet time.Time // the API server's return, the end of the quiet after it
	defer func() {
		if stopped != nil && back.IsZero() {
			err = errors.Join(err, stopped.Start(context.WithoutCancel(ctx)))
		}
		if quiet.IsZero() {
			quiet = time.Now()
		}
		if !back.IsZero() {
			from = back
		}
		w.finish(context.WithoutCancel(ctx), &r, from, quiet)
	}()
	// SIGTERM, then SIGKILL: kube-apiserver's graceful shutdown with
	// watches open took over 30 s in the lab.
	stopped, err = l.StopAPIServer(3 * time.Second)
	switch {
	case stopped == nil:
		return r, err
	case err != nil:
		r.note("%v", err)
	}
	down := time.Now()
	o.Log.Info("API server stopped", "for", o.For)
	if err := w.hold(ctx, o.For/2, w.ownerMAC); err != nil {
		return r, fmt.Errorf("with the API server down: %w", err)
	}
	if own := lab.Owned(between(w.answers.Rounds(), down, time.Now())); own.Moves > 0 {
		msg := fmt.Sprintf("the address moved %d times with the API server down and no failure", own.Moves)
		r.note("%s", msg)
		if o.Strict {
			return r, errors.New(msg)
		}
	}
	d, next, err := w.failover(ctx, owner)
	if err != nil {
		return r, fmt.Errorf("with the API server down: %w", err)
	}
	r.figure("failover with the API down ms", ms(d))
	o.Log.Info("hard failure with the API server down", "from", owner, "to", next, "took", d)
	if err := lab.Sleep(ctx, o.For-time.Since(down)); err != nil {
		return r, err
	}
	start := time.Now()
	if err := stopped.Start(ctx); err != nil {
		return r, err
	}
	back = time.Now()
	r.figure("API server restart s", back.Sub(start).Seconds())
	nextMAC, err := l.NodeMAC(next)
	if err != nil {
		return r, err
	}
	// The dead node stays dead: whatever moves now, the API's return moved.
	if err := w.hold(ctx, settle, nextMAC); err != nil {
		return r, fmt.Errorf("after the API server came back: %w", err)
	}
	quiet = time.Now()
	after, err := serviceAddresses(ctx, l)
	if err != nil {
		return r, err
	}
	changed := 0
	for k, v := range before {
		if after[k] != v {
			changed++
			r.note("Service %s: %s before, %s after the API server came back", k, v, after[k])
		}
	}
	r.figure("services", float64(len(before)))
	r.figure("addresses changed", float64(changed))
	if changed > 0 && o.Strict {
		return r, fmt.Errorf("%d Services changed address when the API server came back: %v", changed, r.Notes)
	}
	if err := l.RestoreLink(owner); err != nil {
		return r, err
	}
	if err := l.StartSpeaker(owner); err != nil {
		return r, err
	}
	_, err = w.settle(ctx, owner, time.Now(), time.Minute)
	return r, err
}

// serviceAddresses maps namespace/name of every Service to its ingress
// addresses.
func serviceAddresses(ctx context.Context, l *lab.Lab) (map[string]string, error) {
	list, err := l.Client().CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list Services: %w", err)
	}
	out := map[string]string{}
	for _, s := range list.Items {
		var ips []string
		for _, in := range s.Status.LoadBalancer.Ingress {
			ips = append(ips, in.IP)
		}
		if len(ips) > 0 {
			out[s.Namespace+"/"+s.Name] = strings.Join(ips, ",")
		}
	}
	return out, nil
}

// Rolling restarts every speaker in turn as a DaemonSet update does:
// SIGTERM, start again, wait until it has rejoined, then the next. A client
// request fails only if it was in flight at a move.
func Rolling(ctx context.Context, l *lab.Lab, t Target, o Options) (r Result, err error) {
	o = o.withDefaults()
	r.Scenario = "rolling restart of every speaker (SIGTERM, start, rejoin)"
	w, err := startWatch(ctx, l, t, o, &r)
	if err != nil {
		return r, err
	}
	from := time.Now()
	defer func() { w.finish(context.WithoutCancel(ctx), &r, from, from) }()
	var worst time.Duration
	for _, n := range l.Nodes() {
		ready := strings.Count(readLog(l, "speaker-"+n.Name), "membership ready")
		t0 := time.Now()
		if err := l.StopSpeaker(n.Name, 10*time.Second); err != nil {
			return r, err
		}
		if err := l.StartSpeaker(n.Name); err != nil {
			return r, err
		}
		for strings.Count(readLog(l, "speaker-"+n.Name), "membership ready") <= ready {
			if err := lab.Sleep(ctx, 50*time.Millisecond); err != nil {
				return r, err
			}
			if time.Since(t0) > time.Minute {
				return r, fmt.Errorf("speaker of %s not ready a minute after its restart", n.Name)
			}
		}
		worst = max(worst, time.Since(t0))
		o.Log.Info("speaker restarted", "node", n.Name, "ready after", time.Since(t0))
		// Its claim delay, then a breath, as a DaemonSet's minReadySeconds.
		if err := lab.Sleep(ctx, 2*time.Second); err != nil {
			return r, err
		}
		if o.Strict {
			if s, _, bad := lab.FailedBeyondMoves(w.probe.Samples(), lab.Owned(w.answers.Rounds()).Moves); bad {
				return r, fmt.Errorf("request at %s failed during the rolling restart (restarting %s): %v", s.Start.Format("15:04:05.000"), n.Name, s.Err)
			}
		}
	}
	r.figure("slowest restart to ready ms", ms(worst))
	samples := w.probe.Samples()
	_, reset, bad := lab.FailedBeyondMoves(samples, lab.Owned(w.answers.Rounds()).Moves)
	r.figure("resets in flight at a move", float64(len(reset)))
	if bad {
		r.note("a request failed beyond the one in flight at each move")
	}
	return r, nil
}

func readLog(l *lab.Lab, name string) string {
	b, _ := os.ReadFile(l.LogPath(name))
	return string(b)
}
