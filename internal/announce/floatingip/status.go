package floatingip

import (
	"context"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/client"

	heraldv1alpha1 "github.com/herald-lb/herald/api/v1alpha1"
	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
)

// placement is when a floating IP came to this node's server, and the
// move that brought it, if this node made one.
type placement struct {
	since time.Time
	move  *heraldv1alpha1.FloatingIPMove
}

// writeStatuses keeps one ServiceCloudStatus per Service whose floating IP
// is on this node's server, and removes this node's others. When it
// creates one (the IP has just come here) it also removes the other nodes'
// for that Service: they no longer hold it, and a dead node cannot.
func (a *Announcer) writeStatuses(ctx context.Context, want map[string]heraldv1alpha1.ServiceCloudStatusStatus) {
	c := a.opts.Client
	if c == nil {
		return
	}
	var list heraldv1alpha1.ServiceCloudStatusList
	if err := c.List(ctx, &list, client.InNamespace(a.opts.Namespace),
		client.MatchingLabels{metallbv1beta1.LabelStatusNode: a.opts.Node}); err != nil {
		a.opts.Log.Error(err, "list ServiceCloudStatus")
		return
	}
	have := map[string]*heraldv1alpha1.ServiceCloudStatus{}
	for i := range list.Items {
		st := &list.Items[i]
		key := metallbv1beta1.StatusService(st.Labels)
		if _, keep := want[key]; !keep {
			if err := c.Delete(ctx, st); err != nil && !apierrors.IsNotFound(err) {
				a.opts.Log.Error(err, "delete ServiceCloudStatus", "name", st.Name)
			}
			continue
		}
		have[key] = st
	}
	for key, status := range want {
		ns, name, _ := strings.Cut(key, "/")
		st := have[key]
		if st == nil {
			st = &heraldv1alpha1.ServiceCloudStatus{ObjectMeta: metav1.ObjectMeta{
				Name: metallbv1beta1.StatusName("cloud", a.opts.Node, ns, name), Namespace: a.opts.Namespace, Labels: metallbv1beta1.ServiceStatusLabels(a.opts.Node, ns, name),
			}}
			if err := c.Create(ctx, st); err != nil {
				if !apierrors.IsAlreadyExists(err) { // else created at an earlier sync, not in the cache yet
					a.opts.Log.Error(err, "create ServiceCloudStatus", "service", key)
				}
				continue
			}
			a.deleteOthers(ctx, ns, name)
		}
		if statusEqual(st.Status, status) {
			continue
		}
		st.Status = status
		if err := c.Status().Update(ctx, st); err != nil {
			a.opts.Log.Error(err, "write ServiceCloudStatus", "service", key)
		}
	}
}

// deleteOthers removes the other nodes' ServiceCloudStatus of a Service.
func (a *Announcer) deleteOthers(ctx context.Context, ns, name string) {
	sel := labels.SelectorFromSet(labels.Set{
		metallbv1beta1.LabelStatusServiceName: name, metallbv1beta1.LabelStatusServiceNamespace: ns,
	})
	notMe, err := labels.NewRequirement(metallbv1beta1.LabelStatusNode, selection.NotEquals, []string{a.opts.Node})
	if err != nil {
		return
	}
	err = a.opts.Client.DeleteAllOf(ctx, &heraldv1alpha1.ServiceCloudStatus{}, client.InNamespace(a.opts.Namespace),
		client.MatchingLabelsSelector{Selector: sel.Add(*notMe)})
	if err != nil && !apierrors.IsNotFound(err) {
		a.opts.Log.Error(err, "delete other nodes' ServiceCloudStatus", "service", ns+"/"+name)
	}
}

func statusEqual(x, y heraldv1alpha1.ServiceCloudStatusStatus) bool {
	sameMove := (x.LastMove == nil) == (y.LastMove == nil) && (x.LastMove == nil || *x.LastMove == *y.LastMove)
	return x.Node == y.Node && x.ServiceName == y.ServiceName && x.ServiceNamespace == y.ServiceNamespace &&
		x.Provider == y.Provider && x.Server == y.Server && x.FloatingIP == y.FloatingIP && x.Prefix == y.Prefix &&
		slices.Equal(x.Addresses, y.Addresses) && x.Since.Equal(&y.Since) && sameMove
}
