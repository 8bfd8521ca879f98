package bgproutes

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"strings"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
)

// writeStatuses keeps one ServiceBGPStatus per advertised Service on this
// node (MetalLB's kind), and removes this node's others. svcPeers maps each
// Service to the peers it is sent to, nil for every peer.
func (a *Announcer) writeStatuses(ctx context.Context, svcPeers map[string][]string) {
	c := a.opts.Client
	var list metallbv1beta1.ServiceBGPStatusList
	if err := c.List(ctx, &list, client.InNamespace(a.opts.Namespace),
		client.MatchingLabels{metallbv1beta1.LabelStatusNode: a.opts.Node}); err != nil {
		return
	}
	have := map[string]*metallbv1beta1.ServiceBGPStatus{}
	for i := range list.Items {
		st := &list.Items[i]
		key := metallbv1beta1.StatusService(st.Labels)
		if _, keep := svcPeers[key]; !keep {
			if err := c.Delete(ctx, st); err != nil && !apierrors.IsNotFound(err) {
				a.opts.Log.Error(err, "delete ServiceBGPStatus", "name", st.Name)
			}
			continue
		}
		have[key] = st
	}
	for key, peers := range svcPeers {
		ns, name, _ := strings.Cut(key, "/")
		if peers == nil {
			peers = a.peerNames()
		}
		st := have[key]
		if st == nil {
			st = &metallbv1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{
				Name: metallbv1beta1.StatusName("bgp", a.opts.Node, ns, name), Namespace: a.opts.Namespace, Labels: metallbv1beta1.ServiceStatusLabels(a.opts.Node, ns, name),
			}}
			if err := c.Create(ctx, st); err != nil {
				if !apierrors.IsAlreadyExists(err) { // else created at an earlier sync, not in the cache yet
					a.opts.Log.Error(err, "create ServiceBGPStatus", "service", key)
				}
				continue
			}
		}
		want := metallbv1beta1.MetalLBServiceBGPStatus{Node: a.opts.Node, ServiceName: name, ServiceNamespace: ns, Peers: peers}
		if st.Status.Node == want.Node && st.Status.ServiceName == name && st.Status.ServiceNamespace == ns &&
			slices.Equal(st.Status.Peers, peers) {
			continue
		}
		st.Status = want
		if err := c.Status().Update(ctx, st); err != nil {
			a.opts.Log.Error(err, "write ServiceBGPStatus", "service", key)
		}
	}
}

// peerNames are the names of every peer of the node, sorted. The caller
// holds a.mu.
func (a *Announcer) peerNames() []string {
	if a.sp == nil {
		return nil
	}
	var out []string
	for _, p := range a.sp.Peers() {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

func slogger(l logr.Logger) *slog.Logger {
	return slog.New(logr.ToSlogHandler(l)).With("component", "bgp")
}
