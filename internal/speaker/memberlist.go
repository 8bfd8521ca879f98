package speaker

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/herald-lb/herald/internal/membership"
)

// The memberlist Secret, MetalLB's name and key: the controller creates it,
// and an existing one (from MetalLB) is reused.
const (
	memberlistSecret    = "memberlist"
	memberlistSecretKey = "secretkey"
)

// Retries of the memberlist Secret while the speaker has no key: often at
// first (the controller creates the Secret while the speakers start), then
// no more than a few reads a minute per speaker.
const (
	keyRetryFirst = 500 * time.Millisecond
	keyRetryMax   = 10 * time.Second
)

// gossip is the speaker's way into the memberlist. Only the sync loop's
// goroutine touches it, and speaker.ml.
type gossip struct {
	cfg     membership.Config // validated; SecretKey is set on joining
	runCtx  context.Context
	next    time.Time     // no read of the Secret before this
	backoff time.Duration // the wait after the next failed read
	lastErr string        // the last reason reported, reported once
}

// prepareMembership checks the memberlist settings; the speaker joins from
// its sync loop (joinMembership), once it has the key. Errors here are the
// operator's to fix and stop the speaker.
func (s *speaker) prepareMembership(ctx, runCtx context.Context, log *slog.Logger) error {
	bind := s.opts.MLBindAddr
	if bind == "" {
		var node corev1.Node
		if err := s.client.Get(ctx, types.NamespacedName{Name: s.opts.NodeName}, &node); err != nil {
			return fmt.Errorf("node %q: %w (or give --ml-bind-addr)", s.opts.NodeName, err)
		}
		bind = nodeAddress(&node, "")
		if bind == "" {
			return fmt.Errorf("node %q has no InternalIP to bind memberlist to; give --ml-bind-addr", s.opts.NodeName)
		}
	}
	cfg := membership.Config{
		NodeName: s.opts.NodeName, BindAddr: bind, BindPort: s.opts.MLBindPort,
		Profile: s.opts.MLProfile, Logger: log.With("component", "memberlist"),
		Peers: func() []string { return s.peers(runCtx, bind) },
	}
	// New only validates; nothing listens before Start.
	if _, err := membership.New(cfg); err != nil {
		return fmt.Errorf("memberlist: %w", err)
	}
	s.gossip = &gossip{cfg: cfg, runCtx: runCtx, backoff: keyRetryFirst}
	if s.opts.MLUnencrypted {
		s.log.Info("memberlist gossip is NOT encrypted (--ml-unencrypted): anyone who reaches the memberlist port can join and count as a live speaker")
	}
	s.keyGauge.Set(0)
	return nil
}

// joinMembership joins the memberlist once the key can be read, encrypted
// with it (or without encryption under --ml-unencrypted). Until then the
// speaker is no member: the others do not elect it, and it announces
// nothing over Layer 2 (ready is false), for alone it would elect itself
// for every address beside their owners. It keeps trying, and says why it
// cannot.
func (s *speaker) joinMembership(ctx context.Context) {
	g := s.gossip
	if g == nil || s.ml != nil || time.Now().Before(g.next) {
		return
	}
	cfg := g.cfg
	if !s.opts.MLUnencrypted {
		var sec corev1.Secret
		err := s.reader.Get(ctx, types.NamespacedName{Namespace: s.opts.Namespace, Name: memberlistSecret}, &sec)
		key, err := keyFromSecret(&sec, err, s.opts.Namespace+"/"+memberlistSecret)
		if err != nil {
			s.keyUnavailable(ctx, err)
			return
		}
		cfg.SecretKey = key
	}
	ml, err := membership.New(cfg)
	if err == nil {
		err = ml.Start(g.runCtx)
	}
	if err != nil {
		s.keyUnavailable(ctx, fmt.Errorf("memberlist: %w", err))
		return
	}
	s.ml = ml
	s.keyGauge.Set(0)
	if g.lastErr != "" {
		s.log.Info("joined the memberlist; announcing over Layer 2 again")
	}
	g.lastErr = ""
}

// keyUnavailable reports why the speaker has not joined, once per reason
// (log, Event on its Node, metric), and schedules the next attempt.
func (s *speaker) keyUnavailable(ctx context.Context, why error) {
	g := s.gossip
	g.next = time.Now().Add(g.backoff)
	time.AfterFunc(g.backoff, s.trigger)
	g.backoff = min(2*g.backoff, keyRetryMax)
	s.keyGauge.Set(1)
	if why.Error() == g.lastErr || ctx.Err() != nil {
		return
	}
	g.lastErr = why.Error()
	s.log.Error(why, "not joining the memberlist: this node announces nothing over Layer 2 until it does; retrying")
	var node corev1.Node
	if err := s.client.Get(ctx, types.NamespacedName{Name: s.opts.NodeName}, &node); err == nil {
		s.recorder.Eventf(&node, nil, corev1.EventTypeWarning, "MemberlistKeyUnavailable", "JoinMemberlist",
			"speaker on %s announces nothing over Layer 2: %s", s.opts.NodeName, why)
	}
}

// keyFromSecret derives the AES key from the memberlist Secret the way
// MetalLB's speaker does (the secret's bytes followed by SHA-256 of
// nothing, first 32 bytes), so the same Secret means the same key. readErr
// is the error reading the Secret, ref its namespace/name for messages.
func keyFromSecret(sec *corev1.Secret, readErr error, ref string) ([]byte, error) {
	switch {
	case apierrors.IsNotFound(readErr):
		return nil, fmt.Errorf("the memberlist Secret %s does not exist (yet); the controller creates it", ref)
	case apierrors.IsForbidden(readErr):
		return nil, fmt.Errorf("reading the memberlist Secret %s is forbidden: the speaker's ServiceAccount needs get on it (%w)", ref, readErr)
	case readErr != nil:
		return nil, fmt.Errorf("reading the memberlist Secret %s: %w", ref, readErr)
	case sec == nil:
		return nil, errors.New("no memberlist Secret given")
	}
	secret := sec.Data[memberlistSecretKey]
	if len(secret) == 0 {
		return nil, fmt.Errorf("the memberlist Secret %s has no key %q", ref, memberlistSecretKey)
	}
	sum := sha256.Sum256(nil)
	return append(append([]byte{}, secret...), sum[:]...)[:32], nil
}
