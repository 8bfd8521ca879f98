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
	kind, version, resource string
}

var _ = admissionv1.SchemeGroupVersion // the admission API the handlers speak

func webhookKinds() []webhookKind {
	return []webhookKind{
		{"IPAddressPool", "v1beta1", "ipaddresspools"},
		{"L2Advertisement", "v1beta1", "l2advertisements"},
		{"BGPAdvertisement", "v1beta1", "bgpadvertisements"},
		{"BGPPeer", "v1beta1", "bgppeers"},
		{"BGPPeer", "v1beta2", "bgppeers"},
		{"BFDProfile", "v1beta1", "bfdprofiles"},
		{"Community", "v1beta1", "communities"},
	}
}

func (k webhookKind) path() string {
	return fmt.Sprintf("/validate-metallb-io-%s-%s", k.version, strings.ToLower(k.kind))
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
			Name:                    fmt.Sprintf("%s-%s.metallb.io", k.version, strings.ToLower(k.kind)),
			ClientConfig:            cc,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			FailurePolicy:           &fp,
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: ops,
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{"metallb.io"}, APIVersions: []string{k.version}, Resources: []string{k.resource},
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
			kind: k, reader: mgr.GetClient(), namespace: opts.Namespace,
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
	kind      webhookKind
	reader    client.Reader
	namespace string
}

func (v *validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Delete && req.Namespace != v.namespace {
		return admission.Denied(fmt.Sprintf("%s %q: resource must be created in the %s namespace, where Herald reads its configuration", v.kind.kind, req.Name, v.namespace))
	}
	before, _, err := configsource.Load(ctx, v.reader, v.namespace)
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
	del := req.Operation == admissionv1.Delete
	raw := req.Object.Raw
	dec := func(into any) error {
		if err := json.Unmarshal(raw, into); err != nil {
			return fmt.Errorf("decode %s: %w", k.kind, err)
		}
		return nil
	}
	var err error
	switch k.kind {
	case "IPAddressPool":
		var o metallbv1beta1.IPAddressPool
		if !del {
			err = dec(&o)
		}
		r.Pools = replace(r.Pools, req.Name, &o, del, func(x *metallbv1beta1.IPAddressPool) string { return x.Name })
	case "L2Advertisement":
		var o metallbv1beta1.L2Advertisement
		if !del {
			err = dec(&o)
		}
		r.L2Advertisements = replace(r.L2Advertisements, req.Name, &o, del, func(x *metallbv1beta1.L2Advertisement) string { return x.Name })
	case "BGPAdvertisement":
		var o metallbv1beta1.BGPAdvertisement
		if !del {
			err = dec(&o)
		}
		r.BGPAdvertisements = replace(r.BGPAdvertisements, req.Name, &o, del, func(x *metallbv1beta1.BGPAdvertisement) string { return x.Name })
	case "BGPPeer":
		var o metallbv1beta2.BGPPeer
		if !del {
			if k.version == "v1beta1" {
				var old metallbv1beta1.BGPPeer
				if err = dec(&old); err == nil {
					err = old.ConvertTo(&o)
				}
			} else {
				err = dec(&o)
			}
		}
		r.BGPPeers = replace(r.BGPPeers, req.Name, &o, del, func(x *metallbv1beta2.BGPPeer) string { return x.Name })
	case "BFDProfile":
		var o metallbv1beta1.BFDProfile
		if !del {
			err = dec(&o)
		}
		r.BFDProfiles = replace(r.BFDProfiles, req.Name, &o, del, func(x *metallbv1beta1.BFDProfile) string { return x.Name })
	case "Community":
		var o metallbv1beta1.Community
		if !del {
			err = dec(&o)
		}
		r.Communities = replace(r.Communities, req.Name, &o, del, func(x *metallbv1beta1.Community) string { return x.Name })
	}
	return r, err
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
