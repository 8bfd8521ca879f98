package announce

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// EventFunc raises an Event on the Service with key svc (namespace/name).
type EventFunc func(svc, typ, reason, msg string)

// Event types, as Kubernetes spells them.
const (
	EventNormal  = "Normal"
	EventWarning = "Warning"
)

// Loop runs one sync of every mode and does what all modes share: the
// ready gate of single-owner modes, metallb_speaker_announced, and the
// Events when this node starts or stops announcing a Service. Only the
// speaker's sync loop calls Sync; Shutdown comes after the last Sync.
type Loop struct {
	node   string
	modes  []Announcer
	series *announcedSeries
	event  EventFunc
}

// NewLoop returns a loop over modes for node. gauge is
// metallb_speaker_announced{service,protocol,node,ip}.
func NewLoop(node string, modes []Announcer, gauge *prometheus.GaugeVec, event EventFunc) *Loop {
	return &Loop{node: node, modes: modes, series: newAnnouncedSeries(gauge, node), event: event}
}

// NewAnnouncedGauge is metallb_speaker_announced, MetalLB's name and labels.
func NewAnnouncedGauge() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "metallb_speaker_announced",
		Help: "1 for each address this node announces."}, []string{"service", "protocol", "node", "ip"})
}

// Sync hands every mode its desired state. ready is the gate of
// single-owner modes: until the node has joined the membership (and the
// others know it), it owns nothing, or it would answer beside the current
// owners. Modes where every eligible node announces (BGP) are not gated.
func (l *Loop) Sync(ctx context.Context, in Inputs, ifaces []Iface, ready bool) error {
	var errs []error
	for _, m := range l.modes {
		d := Desired{Inputs: in, Node: l.node, Ifaces: ifaces}
		if so, ok := m.(SingleOwner); ok && ready {
			d.Owned = Owned(Elect(in, so), l.node)
		}
		got, err := m.Announce(ctx, d)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.Protocol(), err))
		}
		l.report(m.Protocol(), got)
	}
	return errors.Join(errs...)
}

// report brings the metric and the Events in line with what a mode
// announces: an Event when the node starts announcing a Service and when it
// stops, once per change.
func (l *Loop) report(protocol string, got Announced) {
	ch := l.series.update(protocol, got)
	for _, key := range ch.Started {
		l.event(key, EventNormal, "nodeAssigned", fmt.Sprintf("announcing from node %q with protocol %q", l.node, protocol))
	}
	for _, key := range ch.Stopped {
		l.event(key, EventNormal, "nodeUnassigned", fmt.Sprintf("no longer announcing from node %q with protocol %q", l.node, protocol))
	}
}

// Shutdown stops every mode at once, each its own way, so the slowest
// alone sets how long a stop takes. leave takes the node out of the
// membership. A mode where every node announces (BGP) stops without waiting
// for it: its Cease goes out at once. A single-owner mode (Layer 2) stops
// once the node has left, so that its handover delay runs while the next
// owners, who saw it leave, take over. The metric is cleared, with no
// Events: the speaker is going away.
func (l *Loop) Shutdown(ctx context.Context, leave func()) {
	left := make(chan struct{})
	go func() {
		defer close(left)
		leave()
	}()
	var wg sync.WaitGroup
	for _, m := range l.modes {
		wg.Go(func() {
			if _, single := m.(SingleOwner); single {
				<-left
			}
			m.Shutdown(ctx)
		})
	}
	wg.Wait()
	<-left
	for _, m := range l.modes {
		l.series.update(m.Protocol(), nil)
	}
}
