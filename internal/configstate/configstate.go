// Package configstate writes a component's ConfigurationState (MetalLB's
// kind): whether the configuration it was given is valid and in force, and
// if not, what of it is. The controller and every speaker write theirs
// through one Writer.
package configstate

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/config"
)

// Labels and condition types, MetalLB's.
const (
	LabelComponentType = "metallb.io/component-type"
	LabelNodeName      = "metallb.io/node-name"

	ConditionController = "poolReconcilerValid"
	ConditionSpeaker    = "configReconcilerValid"

	ReasonOK    = "Reconciled"
	ReasonError = "ConfigurationError"
	ReasonWait  = "WaitingForObjects"
)

// Writer keeps one ConfigurationState object equal to the last outcome.
type Writer struct {
	// Client reads through a cache that holds the object (so an unchanged
	// outcome costs no request) and writes to the API server.
	Client    client.Client
	Namespace string
	Name      string
	Labels    map[string]string
	Condition string // ConditionController or ConditionSpeaker
}

// Controller is the controller's writer: object "controller".
func Controller(c client.Client, namespace string) *Writer {
	return &Writer{Client: c, Namespace: namespace, Name: "controller", Condition: ConditionController,
		Labels: map[string]string{LabelComponentType: "controller"}}
}

// Speaker is node's speaker's writer: object "speaker-<node>".
func Speaker(c client.Client, namespace, node string) *Writer {
	return &Writer{Client: c, Namespace: namespace, Name: "speaker-" + node, Condition: ConditionSpeaker,
		Labels: map[string]string{LabelComponentType: "speaker", LabelNodeName: node}}
}

// Write records u's outcome, creating the object if it is missing (a
// deleted one comes back at the next write). Nothing is sent when the
// object already says it.
func (w *Writer) Write(ctx context.Context, u config.Usable) error {
	return w.update(ctx, func(cs *metallbv1beta1.ConfigurationState) {
		cond := metav1.Condition{Type: w.Condition, Status: metav1.ConditionTrue, Reason: ReasonOK,
			Message: "the configuration is valid and in force", ObservedGeneration: cs.Generation}
		cs.Status.Result, cs.Status.ErrorSummary = metallbv1beta1.ConfigurationResultValid, ""
		if ps := u.Problems; len(ps) > 0 {
			lines := make([]string, len(ps))
			for i, p := range ps {
				lines[i] = p.String()
			}
			cs.Status.Result = metallbv1beta1.ConfigurationResultInvalid
			cs.Status.ErrorSummary = strings.Join(lines, "\n")
			cond.Status, cond.Reason = metav1.ConditionFalse, ReasonError
			if ps.Transient() {
				cond.Reason = ReasonWait
			}
			cond.Message = InForce(u)
		}
		meta.SetStatusCondition(&cs.Status.Conditions, cond)
	})
}

// SetCondition records a condition of another type than the writer's
// own, about the component rather than its configuration (a speaker's
// node that cannot hold cloud floating IPs); nil removes condition typ.
func (w *Writer) SetCondition(ctx context.Context, typ string, cond *metav1.Condition) error {
	return w.update(ctx, func(cs *metallbv1beta1.ConfigurationState) {
		if cond == nil {
			meta.RemoveStatusCondition(&cs.Status.Conditions, typ)
			return
		}
		c := *cond
		c.Type, c.ObservedGeneration = typ, cs.Generation
		meta.SetStatusCondition(&cs.Status.Conditions, c)
	})
}

// update applies change to the object's status, creating the object if it
// is missing (a deleted one comes back at the next write). Nothing is sent
// when the object already says it.
func (w *Writer) update(ctx context.Context, change func(*metallbv1beta1.ConfigurationState)) error {
	var cs metallbv1beta1.ConfigurationState
	key := types.NamespacedName{Namespace: w.Namespace, Name: w.Name}
	if err := w.Client.Get(ctx, key, &cs); err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("read ConfigurationState %s: %w", w.Name, err)
		}
		cs = metallbv1beta1.ConfigurationState{ObjectMeta: metav1.ObjectMeta{Name: w.Name, Namespace: w.Namespace, Labels: w.Labels}}
		if err := w.Client.Create(ctx, &cs); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create ConfigurationState %s: %w", w.Name, err)
		}
	}
	base := cs.DeepCopy()
	change(&cs)
	if equal(base.Status, cs.Status) {
		return nil
	}
	// A merge patch of the status alone: whatever else another writer set
	// on the object stays.
	if err := w.Client.Status().Patch(ctx, &cs, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("write ConfigurationState %s: %w", w.Name, err)
	}
	return nil
}

// InForce says what of a configuration with problems is in force.
func InForce(u config.Usable) string {
	if u.Config == nil {
		return "the configuration was not applied: a problem is not tied to one object; the last configuration in force stays"
	}
	var parts []string
	if len(u.Kept) > 0 {
		parts = append(parts, "last valid version kept for "+Refs(u.Kept))
	}
	if len(u.Left) > 0 {
		parts = append(parts, "left out until fixed: "+Refs(u.Left))
	}
	return "objects with problems are not in force as they are (" + strings.Join(parts, "; ") + "); the rest of the configuration is"
}

// Refs lists objects as "Kind/name, ...".
func Refs(list []config.ObjectRef) string {
	s := make([]string, len(list))
	for i, o := range list {
		s[i] = o.String()
	}
	return strings.Join(s, ", ")
}

func equal(a, b metallbv1beta1.ConfigurationStateStatus) bool {
	return a.Result == b.Result && a.ErrorSummary == b.ErrorSummary &&
		slices.EqualFunc(a.Conditions, b.Conditions, func(x, y metav1.Condition) bool {
			return x.Type == y.Type && x.Status == y.Status && x.Reason == y.Reason && x.Message == y.Message
		})
}
