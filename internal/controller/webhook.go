package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	metallbv1beta2 "github.com/herald-lb/herald/api/v1beta2"
	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/configsource"
	"github.com/herald-lb/herald/internal/webhookcert"
)

// WebhookOptions configure the validating webhook server.
type WebhookOptions struct {
	Host    string
	Port    int
	CertDir string
	// Rotate manages the serving certificate (internal/webhookcert): a
	// self-signed CA in a Secret, renewed ahead of expiry, injected into the
	// ValidatingWebhookConfiguration. Off, the certificate must already be
	// in CertDir (cert-manager, or a test).
	Rotate bool
	// ServiceName and ConfigName name the webhook Service and the
	// ValidatingWebhookConfiguration; empty means webhookcert's defaults.
	ServiceName, ConfigName string
	// FailurePolicy of the webhooks the controller writes into the
	// configuration (with Rotate); empty means Fail.
	FailurePolicy admissionregistrationv1.FailurePolicyType
}

func (o *WebhookOptions) server() webhook.Server {
	return webhook.NewServer(webhook.Options{Host: o.Host, Port: o.Port, CertDir: o.CertDir})
}

// webhookKind is one validated kind and the path it is served on.
type webhookKind struct {
	group, kind, version, resource string
}

var _ = admissionv1.SchemeGroupVersion // the admission API the handlers speak

// webhookKinds are MetalLB's kinds, then Herald's own (herald-lb.io), last
// so that the webhooks MetalLB's kinds had keep their places.
func webhookKinds() []webhookKind {
	const metallb, herald = "metallb.io", "herald-lb.io"
	return []webhookKind{
		{metallb, "IPAddressPool", "v1beta1", "ipaddresspools"},
		{metallb, "L2Advertisement", "v1beta1", "l2advertisements"},
		{metallb, "BGPAdvertisement", "v1beta1", "bgpadvertisements"},
		{metallb, "BGPPeer", "v1beta1", "bgppeers"},
		{metallb, "BGPPeer", "v1beta2", "bgppeers"},
		{metallb, "BFDProfile", "v1beta1", "bfdprofiles"},
		{metallb, "Community", "v1beta1", "communities"},
		{herald, "CloudAdvertisement", "v1alpha1", "cloudadvertisements"},
	}
}

// path is /validate-<group with dashes>-<version>-<kind>, as MetalLB names
// its own: /validate-metallb-io-v1beta1-ipaddresspool.
func (k webhookKind) path() string {
	return fmt.Sprintf("/validate-%s-%s-%s", strings.ReplaceAll(k.group, ".", "-"), k.version, strings.ToLower(k.kind))
}

// WebhookConfiguration returns the ValidatingWebhookConfiguration that
// routes Herald's kinds to the controller's webhook, through the Service
// svcNamespace/svcName, or through url when url is set (out of cluster).
func WebhookConfiguration(name, svcNamespace, svcName, url string, caBundle []byte, failurePolicy admissionregistrationv1.FailurePolicyType) *admissionregistrationv1.ValidatingWebhookConfiguration {
	none := admissionregistrationv1.SideEffectClassNone
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, k := range webhookKinds() {
		path := k.path()
		cc := admissionregistrationv1.WebhookClientConfig{CABundle: caBundle}
		if url != "" {
			u := strings.TrimSuffix(url, "/") + path
			cc.URL = &u
		} else {
			cc.Service = &admissionregistrationv1.ServiceReference{Namespace: svcNamespace, Name: svcName, Path: &path}
		}
		ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
		if k.kind == "BFDProfile" {
			ops = append(ops, admissionregistrationv1.Delete)
		}
		fp := failurePolicy
		cfg.Webhooks = append(cfg.Webhooks, admissionregistrationv1.ValidatingWebhook{
			Name:                    fmt.Sprintf("%s-%s.%s", k.version, strings.ToLower(k.kind), k.group),
			ClientConfig:            cc,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			FailurePolicy:           &fp,
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: ops,
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{k.group}, APIVersions: []string{k.version}, Resources: []string{k.resource},
				},
			}},
		})
	}
	return cfg
}

// setupWebhook serves the webhook on every replica, leader or not; a
// replica is ready once its server is started. With rotation on, the server
// starts only once its certificate exists, and the leader writes the
// webhooks into the configuration (which the chart creates empty) once its
// server answers with that certificate: until then nothing is validated,
// so the chart's own configuration objects are not refused for want of a
// webhook in the release that installs both.
func setupWebhook(mgr manager.Manager, opts Options) error {
	srv := opts.Webhook.server()
	for _, k := range webhookKinds() {
		srv.Register(k.path(), &webhook.Admission{Handler: &validator{
			kind: k, reader: mgr.GetClient(), cloudReader: mgr.GetAPIReader(), namespace: opts.Namespace,
		}})
	}
	if err := mgr.AddReadyzCheck("webhook", srv.StartedChecker()); err != nil {
		return err
	}
	if !opts.Webhook.Rotate {
		return mgr.Add(srv)
	}
	cs, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("webhook certificates: %w", err)
	}
	wo := webhookcert.Options{
		Namespace: opts.Namespace, CertDir: opts.Webhook.CertDir,
		ServiceName: opts.Webhook.ServiceName, WebhookConfigName: opts.Webhook.ConfigName,
		Elected: mgr.Elected(),
	}
	policy := opts.Webhook.FailurePolicy
	if policy == "" {
		policy = admissionregistrationv1.Fail
	}
	svcName := wo.ServiceName
	if svcName == "" {
		svcName = webhookcert.DefaultServiceName
	}
	wo.Webhooks = WebhookConfiguration(wo.WebhookConfigName, opts.Namespace, svcName, "", nil, policy).Webhooks
	rot, err := webhookcert.New(cs, wo)
	if err != nil {
		return fmt.Errorf("webhook certificates: %w", err)
	}
	if err := mgr.Add(rot); err != nil {
		return err
	}
	return mgr.Add(rot.Gate(srv))
}

// validator admits one kind by running the controller's own validation
// (internal/config) on the configuration as it would be with the change.
// It refuses only the problems the change brings: an unrelated object that
// is already wrong (created while the webhook was down, say) does not block
// every other change.
type validator struct {
	kind   webhookKind
	reader client.Reader
	// cloudReader reads CloudAdvertisements, uncached: requests are few,
	// and a CRD applied after the controller started (Helm does not create
	// a chart's new CRDs on upgrade) is seen at once.
	cloudReader client.Reader
	namespace   string
}

func (v *validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Delete && req.Namespace != v.namespace {
		return admission.Denied(fmt.Sprintf("%s %q: resource must be created in the %s namespace, where Herald reads its configuration", v.kind.kind, req.Name, v.namespace))
	}
	before, _, err := configsource.Load(ctx, v.reader, v.namespace, configsource.WithCloud(v.cloudReader))
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	after, err := overlay(before, v.kind, req)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	// A BGPPeer may name a Secret the stored configuration does not.
	configsource.ReadSecrets(ctx, v.reader, &after)
	if req.Operation == admissionv1.Delete {
		if v.kind.kind == "BFDProfile" {
			for _, p := range before.BGPPeers {
				if p.Spec.BFDProfile == req.Name {
					return admission.Denied(fmt.Sprintf("BFDProfile %q is used by BGPPeer %q: remove spec.bfdProfile from the peer first", req.Name, p.Name))
				}
			}
		}
		return admission.Allowed("")
	}
	was := map[string]bool{}
	for _, p := range config.Validate(before).Problems {
		was[p.String()] = true
	}
	var fresh config.Problems
	for _, p := range config.Validate(after).Problems.Permanent() {
		if !was[p.String()] {
			fresh = append(fresh, p)
		}
	}
	if len(fresh) > 0 {
		return admission.Denied(fresh.Error())
	}
	return admission.Allowed("")
}

// overlay returns the resources with the request's object put in place of
// (or beside) the stored one of the same name, or removed for a delete.
func overlay(r config.Resources, k webhookKind, req admission.Request) (config.Resources, error) {
	var err error
	switch k.kind {
	case "IPAddressPool":
		r.Pools, err = overlayList(r.Pools, k, req)
	case "L2Advertisement":
		r.L2Advertisements, err = overlayList(r.L2Advertisements, k, req)
	case "BGPAdvertisement":
		r.BGPAdvertisements, err = overlayList(r.BGPAdvertisements, k, req)
	case "BGPPeer":
		if k.version == "v1beta1" {
			// Decoded as v1beta1, then converted to the hub the
			// configuration reads.
			var old metallbv1beta1.BGPPeer
			var hub metallbv1beta2.BGPPeer
			del := req.Operation == admissionv1.Delete
			if !del {
				if err = decodeObject(k, req, &old); err == nil {
					err = old.ConvertTo(&hub)
				}
			}
			r.BGPPeers = replace(r.BGPPeers, req.Name, &hub, del, func(x *metallbv1beta2.BGPPeer) string { return x.Name })
			break
		}
		r.BGPPeers, err = overlayList(r.BGPPeers, k, req)
	case "BFDProfile":
		r.BFDProfiles, err = overlayList(r.BFDProfiles, k, req)
	case "Community":
		r.Communities, err = overlayList(r.Communities, k, req)
	case "CloudAdvertisement":
		r.CloudAdvertisements, err = overlayList(r.CloudAdvertisements, k, req)
	}
	return r, err
}

// overlayList puts the request's object, decoded as a T, into list in
// place of the one of the same name, or removes that one for a delete.
func overlayList[T any, P interface {
	*T
	GetName() string
}](list []T, k webhookKind, req admission.Request) ([]T, error) {
	var o T
	del := req.Operation == admissionv1.Delete
	var err error
	if !del {
		err = decodeObject(k, req, &o)
	}
	return replace(list, req.Name, &o, del, func(x *T) string { return P(x).GetName() }), err
}

func decodeObject(k webhookKind, req admission.Request, into any) error {
	if err := json.Unmarshal(req.Object.Raw, into); err != nil {
		return fmt.Errorf("decode %s: %w", k.kind, err)
	}
	return nil
}

func replace[T any](list []T, name string, obj *T, del bool, nameOf func(*T) string) []T {
	out := make([]T, 0, len(list)+1)
	for i := range list {
		if nameOf(&list[i]) != name {
			out = append(out, list[i])
		}
	}
	if !del {
		out = append(out, *obj)
	}
	return out
}
