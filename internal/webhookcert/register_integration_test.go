package webhookcert

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// testWritesWebhooks: a configuration created with no webhooks, as
// Herald's chart creates it, gets Options.Webhooks, with the CA bundle,
// only once the gated server answers with the certificate and the replica
// is elected. Webhooks someone removes (an upgrade from a chart that
// rendered them) are written again, and an unchanged configuration is not
// written at all: the Rotator's own watch must not make it loop.
func testWritesWebhooks(t *testing.T, cfg *rest.Config, client kubernetes.Interface) {
	ctx := t.Context()
	ns := newNamespace(t, client, "register")
	elected := make(chan struct{})
	opts := Options{Namespace: ns, CertDir: t.TempDir(), Logger: testr.New(t),
		WebhookConfigName: createWebhookConfig(t, client, "herald-register-"+ns, nil),
		Webhooks:          neverCalledWebhooks(ns), Elected: elected}
	configs := client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	get := func() *admissionregistrationv1.ValidatingWebhookConfiguration {
		t.Helper()
		c, err := configs.Get(ctx, opts.WebhookConfigName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	rot, addr := runManager(t, cfg, client, opts)
	waitReady(t, rot)
	data, err := converged(ctx, client, opts)
	if err != nil {
		t.Fatalf("after Ready: %v", err)
	}
	waitFor(t, 30*time.Second, "webhook server serves the certificate", func() error {
		return servesCert(ctx, addr, data, opts.DNSNames()[0])
	})
	select {
	case <-rot.serving:
	case <-time.After(10 * time.Second):
		t.Fatal("the Rotator did not see its server answer")
	}
	// Serving, not elected: a sync comes at once; give it a second.
	time.Sleep(time.Second)
	if n := len(get().Webhooks); n != 0 {
		t.Fatalf("%d webhooks written before the replica was elected", n)
	}

	close(elected)
	written := func() error {
		c := get()
		if len(c.Webhooks) != len(opts.Webhooks) {
			return fmt.Errorf("%d webhooks, want %d", len(c.Webhooks), len(opts.Webhooks))
		}
		for i, wh := range c.Webhooks {
			if wh.Name != opts.Webhooks[i].Name || !bytes.Equal(wh.ClientConfig.CABundle, data[CACertKey]) {
				return fmt.Errorf("webhook %d: %s, with the Secret's CA: %v", i, wh.Name, bytes.Equal(wh.ClientConfig.CABundle, data[CACertKey]))
			}
		}
		return nil
	}
	waitFor(t, 10*time.Second, "webhooks written once elected", written)

	if _, err := configs.Patch(ctx, opts.WebhookConfigName, types.JSONPatchType, []byte(`[{"op":"remove","path":"/webhooks"}]`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "webhooks written again after their removal", written)

	rv := get().ResourceVersion
	time.Sleep(2 * time.Second)
	if now := get().ResourceVersion; now != rv {
		t.Errorf("the unchanged configuration was written again (resourceVersion %s, then %s)", rv, now)
	}
}
