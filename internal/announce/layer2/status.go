package layer2

import (
	"context"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/announce"
)

// writeStatus keeps one ServiceL2Status for a Service this node announces.
func (a *Announcer) writeStatus(ctx context.Context, svc string, ifaces []string) error {
	ns, name, _ := strings.Cut(svc, "/")
	labels := metallbv1beta1.ServiceStatusLabels(a.opts.Node, ns, name)
	var list metallbv1beta1.ServiceL2StatusList
	if err := a.opts.Client.List(ctx, &list, client.InNamespace(a.opts.Namespace), client.MatchingLabels(labels)); err != nil {
		return err
	}
	var st *metallbv1beta1.ServiceL2Status
	if len(list.Items) > 0 {
		st = &list.Items[0]
	} else {
		st = &metallbv1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{
			Name: metallbv1beta1.StatusName("l2", a.opts.Node, ns, name), Namespace: a.opts.Namespace, Labels: labels}}
		if err := a.opts.Client.Create(ctx, st); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return nil // created at an earlier sync, not in the cache yet: written at the next
			}
			return err
		}
	}
	var ifs []metallbv1beta1.InterfaceInfo
	for _, i := range ifaces {
		ifs = append(ifs, metallbv1beta1.InterfaceInfo{Name: i})
	}
	want := metallbv1beta1.MetalLBServiceL2Status{Node: a.opts.Node, ServiceName: name, ServiceNamespace: ns, Interfaces: ifs}
	if statusEqual(st.Status, want) {
		return nil
	}
	st.Status = want
	return a.opts.Client.Status().Update(ctx, st)
}

func statusEqual(a, b metallbv1beta1.MetalLBServiceL2Status) bool {
	return a.Node == b.Node && a.ServiceName == b.ServiceName && a.ServiceNamespace == b.ServiceNamespace &&
		slices.Equal(a.Interfaces, b.Interfaces)
}

// deleteStatuses removes this node's ServiceL2Status objects for Services
// it does not announce (all of them when keep is nil).
func (a *Announcer) deleteStatuses(ctx context.Context, keep announce.Announced) {
	var list metallbv1beta1.ServiceL2StatusList
	if err := a.opts.Client.List(ctx, &list, client.InNamespace(a.opts.Namespace),
		client.MatchingLabels{metallbv1beta1.LabelStatusNode: a.opts.Node}); err != nil {
		return
	}
	for i := range list.Items {
		st := &list.Items[i]
		if _, ok := keep[metallbv1beta1.StatusService(st.Labels)]; ok {
			continue
		}
		if err := a.opts.Client.Delete(ctx, st); err != nil && !apierrors.IsNotFound(err) {
			a.opts.Log.Error(err, "delete ServiceL2Status", "name", st.Name)
		}
	}
}
