// Package statusreport gathers what Herald has written to the API into one
// view for `herald status`: whether the configuration is in force, how full
// each pool is, each LoadBalancer Service's addresses and who announces
// them (or why it has none), and the BGP sessions that failed.
package statusreport

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	heraldv1alpha1 "github.com/herald-lb/herald/api/v1alpha1"
	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/cloudlease"
	"github.com/herald-lb/herald/internal/configstate"
	"github.com/herald-lb/herald/internal/controller"
	"github.com/herald-lb/herald/internal/lbclass"
)

// Report is the view. Lists are sorted by name.
type Report struct {
	Namespace string
	Configs   []Config
	Pools     []Pool
	Services  []Service
	Sessions  []SessionProblem
	// FloatingIPs are the cloud floating IPs' Leases: who holds each.
	FloatingIPs []FloatingIP
}

// FloatingIP is a cloud floating IP's Lease (internal/cloudlease).
type FloatingIP struct {
	ID     string
	Holder string        // the node that may assign it; "" when released
	Age    time.Duration // since the holder last renewed it
}

// Config is one ConfigurationState: the controller's or a speaker's.
type Config struct {
	Name    string
	Result  string // Valid, Invalid, ...
	Summary string // the problems, when not Valid
	// Notes are the component's other conditions that are False, such as
	// a speaker's node that cannot hold cloud floating IPs.
	Notes []string
}

// Pool is an IPAddressPool's use.
type Pool struct {
	Name               string
	InUse4, Free4      int64
	InUse6             int64
	Free6              string // exact, as a decimal string
	AutoAssignDisabled bool
}

// Service is a LoadBalancer Service handled by Herald.
type Service struct {
	Key       string // namespace/name
	Addresses []string
	Pool      string
	// Layer2 is the announcing node and its interfaces; BGP the nodes that
	// advertise it, each with its peers.
	Layer2 string
	BGP    []string
	// Cloud is the node and server holding its floating IP.
	Cloud string
	// Problem is why it has no address, from the controller's condition.
	Problem string
}

// SessionProblem is the newest SessionDown Event of a BGPPeer.
type SessionProblem struct {
	Peer    string
	Message string
	Age     time.Duration
	Count   int32
}

// Gather reads the report from the API. namespace is where Herald runs;
// class is the loadBalancerClass it handles ("" for Services without one).
func Gather(ctx context.Context, c client.Reader, namespace, class string, now time.Time) (*Report, error) {
	r := &Report{Namespace: namespace}
	in := client.InNamespace(namespace)

	var states metallbv1beta1.ConfigurationStateList
	if err := c.List(ctx, &states, in); err != nil {
		return nil, fmt.Errorf("configuration states: %w", err)
	}
	for _, s := range states.Items {
		cfg := Config{Name: s.Name, Result: string(s.Status.Result), Summary: s.Status.ErrorSummary}
		for _, c := range s.Status.Conditions {
			own := c.Type == configstate.ConditionController || c.Type == configstate.ConditionSpeaker
			if !own && c.Status == metav1.ConditionFalse {
				cfg.Notes = append(cfg.Notes, c.Message)
			}
		}
		r.Configs = append(r.Configs, cfg)
	}

	var pools metallbv1beta1.IPAddressPoolList
	if err := c.List(ctx, &pools, in); err != nil {
		return nil, fmt.Errorf("pools: %w", err)
	}
	for _, p := range pools.Items {
		free6 := p.Status.AvailableIPv6Exact
		if free6 == "" {
			free6 = fmt.Sprint(p.Status.AvailableIPv6)
		}
		r.Pools = append(r.Pools, Pool{
			Name: p.Name, InUse4: p.Status.AssignedIPv4, Free4: p.Status.AvailableIPv4,
			InUse6: p.Status.AssignedIPv6, Free6: free6,
			AutoAssignDisabled: p.Spec.AutoAssign != nil && !*p.Spec.AutoAssign,
		})
	}

	l2, bgp, err := announcements(ctx, c, namespace)
	if err != nil {
		return nil, err
	}
	clouds, err := cloudHolders(ctx, c, namespace)
	if err != nil {
		return nil, err
	}
	var svcs corev1.ServiceList
	if err := c.List(ctx, &svcs); err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	for i := range svcs.Items {
		svc := &svcs.Items[i]
		if !lbclass.Handles(svc, class) {
			continue
		}
		key := svc.Namespace + "/" + svc.Name
		s := Service{Key: key, Pool: svc.Annotations["metallb.io/ip-allocated-from-pool"], Layer2: l2[key], BGP: bgp[key], Cloud: clouds[key]}
		for _, in := range svc.Status.LoadBalancer.Ingress {
			s.Addresses = append(s.Addresses, in.IP)
		}
		if len(s.Addresses) == 0 {
			if cond := meta.FindStatusCondition(svc.Status.Conditions, controller.ConditionAllocated); cond != nil {
				s.Problem = cond.Message
			} else {
				s.Problem = "no address yet, and no word from Herald's controller (is it running, and is this its loadBalancerClass?)"
			}
		}
		r.Services = append(r.Services, s)
	}

	var events corev1.EventList
	if err := c.List(ctx, &events, in); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	newest := map[string]*corev1.Event{} // by BGPPeer
	for i := range events.Items {
		e := &events.Items[i]
		if e.InvolvedObject.Kind != "BGPPeer" || e.Reason != "SessionDown" {
			continue
		}
		if prev, ok := newest[e.InvolvedObject.Name]; !ok || eventTime(e).After(eventTime(prev)) {
			newest[e.InvolvedObject.Name] = e
		}
	}
	for peer, e := range newest {
		r.Sessions = append(r.Sessions, SessionProblem{Peer: peer, Message: e.Message, Age: now.Sub(eventTime(e)), Count: max(e.Count, 1)})
	}

	var leases coordinationv1.LeaseList
	if err := c.List(ctx, &leases, in, client.MatchingLabels(cloudlease.Labels())); err != nil {
		return nil, fmt.Errorf("floating IP leases: %w", err)
	}
	for _, l := range leases.Items {
		f := FloatingIP{ID: cmp.Or(l.Annotations[cloudlease.AnnotationFloatingIP], l.Name), Holder: cloudlease.Holder(&l)}
		if l.Spec.RenewTime != nil {
			f.Age = now.Sub(l.Spec.RenewTime.Time)
		}
		r.FloatingIPs = append(r.FloatingIPs, f)
	}
	slices.SortFunc(r.FloatingIPs, func(a, b FloatingIP) int { return cmp.Compare(a.ID, b.ID) })

	slices.SortFunc(r.Configs, func(a, b Config) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(r.Pools, func(a, b Pool) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(r.Services, func(a, b Service) int { return cmp.Compare(a.Key, b.Key) })
	slices.SortFunc(r.Sessions, func(a, b SessionProblem) int { return cmp.Compare(a.Peer, b.Peer) })
	return r, nil
}

// announcements maps namespace/name to the Layer 2 announcer ("node (eth0)")
// and to the BGP advertisers ("node: peer, peer"), from the status objects
// the speakers write.
func announcements(ctx context.Context, c client.Reader, namespace string) (map[string]string, map[string][]string, error) {
	in := client.InNamespace(namespace)
	var l2s metallbv1beta1.ServiceL2StatusList
	if err := c.List(ctx, &l2s, in); err != nil {
		return nil, nil, fmt.Errorf("layer 2 statuses: %w", err)
	}
	l2 := map[string]string{}
	for _, s := range l2s.Items {
		st := s.Status
		var ifs []string
		for _, i := range st.Interfaces {
			ifs = append(ifs, i.Name)
		}
		a := st.Node
		if len(ifs) > 0 {
			a += " (" + strings.Join(ifs, ", ") + ")"
		}
		l2[st.ServiceNamespace+"/"+st.ServiceName] = a
	}
	var bgps metallbv1beta1.ServiceBGPStatusList
	if err := c.List(ctx, &bgps, in); err != nil {
		return nil, nil, fmt.Errorf("BGP statuses: %w", err)
	}
	bgp := map[string][]string{}
	for _, s := range bgps.Items {
		st := s.Status
		key := st.ServiceNamespace + "/" + st.ServiceName
		bgp[key] = append(bgp[key], st.Node+": "+strings.Join(st.Peers, ", "))
	}
	for _, v := range bgp {
		slices.Sort(v)
	}
	return l2, bgp, nil
}

// cloudHolders maps namespace/name to the node and server holding the
// Service's floating IP ("node (server 3, floating IP 7, moved from server
// 1 in 2.41s)"), from the ServiceCloudStatus objects; none when their CRD
// is not applied.
func cloudHolders(ctx context.Context, c client.Reader, namespace string) (map[string]string, error) {
	var list heraldv1alpha1.ServiceCloudStatusList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("cloud statuses: %w", err)
	}
	out := map[string]string{}
	for _, s := range list.Items {
		st := s.Status
		h := fmt.Sprintf("%s (server %s, floating IP %s", st.Node, st.Server, st.FloatingIP)
		if m := st.LastMove; m != nil {
			h += fmt.Sprintf(", moved from server %s in %s", cmp.Or(m.FromServer, "none"), m.Duration)
		}
		out[st.ServiceNamespace+"/"+st.ServiceName] = h + ")"
	}
	return out, nil
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	default:
		return e.CreationTimestamp.Time
	}
}

// Write prints the report as aligned text.
func (r *Report) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }

	line("CONFIGURATION (namespace %s)", r.Namespace)
	if len(r.Configs) == 0 {
		line("  none reported: no controller or speaker has run against this namespace")
	}
	for _, c := range r.Configs {
		result := cmp.Or(c.Result, "unknown")
		if c.Summary != "" && c.Result != string(metallbv1beta1.ConfigurationResultValid) {
			result += ": " + c.Summary
		}
		for _, n := range c.Notes {
			result += "; " + n
		}
		line("  %s\t%s", c.Name, result)
	}

	line("")
	line("POOLS\tIPv4 IN USE\tIPv4 FREE\tIPv6 IN USE\tIPv6 FREE")
	for _, p := range r.Pools {
		name := p.Name
		if p.AutoAssignDisabled {
			name += " (autoAssign: false)"
		}
		line("  %s\t%d\t%d\t%d\t%s", name, p.InUse4, p.Free4, p.InUse6, p.Free6)
	}

	line("")
	line("SERVICES\tADDRESSES\tPOOL\tANNOUNCED BY")
	for _, s := range r.Services {
		if len(s.Addresses) == 0 {
			line("  %s\t-\t-\tnone: %s", s.Key, s.Problem)
			continue
		}
		var modes []string
		if s.Layer2 != "" {
			modes = append(modes, "layer2 "+s.Layer2)
		}
		if len(s.BGP) > 0 {
			modes = append(modes, "bgp "+strings.Join(s.BGP, "; "))
		}
		if s.Cloud != "" {
			modes = append(modes, "cloud "+s.Cloud)
		}
		by := "nobody yet (no L2Advertisement, BGPAdvertisement or CloudAdvertisement selects it, or no eligible node)"
		if len(modes) > 0 {
			by = strings.Join(modes, "; ")
		}
		line("  %s\t%s\t%s\t%s", s.Key, strings.Join(s.Addresses, ", "), cmp.Or(s.Pool, "-"), by)
	}

	if len(r.FloatingIPs) > 0 {
		line("")
		line("FLOATING IPS\tHELD BY\tRENEWED")
		for _, f := range r.FloatingIPs {
			holder := cmp.Or(f.Holder, "nobody (released: the next owner takes it)")
			line("  %s\t%s\t%s ago", f.ID, holder, f.Age.Round(time.Second))
		}
	}

	if len(r.Sessions) > 0 {
		line("")
		line("BGP SESSIONS DOWN\tLAST SEEN\tTIMES\tREASON")
		for _, p := range r.Sessions {
			line("  %s\t%s ago\t%d\t%s", p.Peer, p.Age.Round(time.Second), p.Count, p.Message)
		}
	}
	return tw.Flush()
}
