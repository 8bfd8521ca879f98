package webhookcert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// FieldManager owns the webhooks the Rotator writes into the
// configuration (server-side apply).
const FieldManager = "herald-webhookcert"

// servingPoll is how often a started webhook server is checked until it
// answers.
const servingPoll = 100 * time.Millisecond

// register writes Options.Webhooks, with bundle as their CA, into the
// configuration by server-side apply. The resourceVersion just read is a
// precondition, so the configuration is never created here (whoever
// installed it owns it; the chart's has no webhooks) and a concurrent
// change fails this sync for the next one to retry. An apply that changes
// nothing writes nothing, so the watch does not wake the Rotator again.
func (r *Rotator) register(ctx context.Context, logger logr.Logger, bundle []byte) error {
	configs := r.client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	cfg, err := configs.Get(ctx, r.opts.WebhookConfigName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get validatingwebhookconfiguration %s: %w", r.opts.WebhookConfigName, err)
	}
	hooks := make([]admissionregistrationv1.ValidatingWebhook, len(r.opts.Webhooks))
	names := make([]string, len(r.opts.Webhooks))
	for i := range r.opts.Webhooks {
		hooks[i] = *r.opts.Webhooks[i].DeepCopy()
		hooks[i].ClientConfig.CABundle = bundle
		names[i] = hooks[i].Name
	}
	body, err := json.Marshal(map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1",
		"kind":       "ValidatingWebhookConfiguration",
		"metadata":   map[string]any{"name": cfg.Name, "resourceVersion": cfg.ResourceVersion},
		"webhooks":   hooks,
	})
	if err != nil {
		return fmt.Errorf("encode webhooks: %w", err)
	}
	force := true
	out, err := configs.Patch(ctx, cfg.Name, types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
	if err != nil {
		return fmt.Errorf("write webhooks into validatingwebhookconfiguration %s: %w", cfg.Name, err)
	}
	if out.ResourceVersion != cfg.ResourceVersion {
		logger.Info("Wrote the webhooks", "webhooks", names)
	}
	return nil
}

// awaitServing checks the started server srv until it answers with a
// certificate the current CA bundle trusts for the Service's name, as the
// API server will check it, then marks this replica serving and wakes
// Start, which may then write the webhooks.
func (r *Rotator) awaitServing(ctx context.Context, logger logr.Logger, srv webhook.Server) {
	check := r.servingCheck(srv)
	tick := time.NewTicker(servingPoll)
	defer tick.Stop()
	var err error
	for {
		if err = check(ctx); err == nil {
			logger.Info("Webhook server answers with the certificate")
			r.servingOnce.Do(func() { close(r.serving) })
			poke(r.wake)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// servingCheck returns a check of srv: a TLS handshake that verifies the
// certificate for a controller-runtime server, whose address is known;
// controller-runtime's own started check (which trusts any certificate)
// for any other server.
func (r *Rotator) servingCheck(srv webhook.Server) func(context.Context) error {
	d, ok := srv.(*webhook.DefaultServer)
	if !ok {
		started := srv.StartedChecker()
		return func(context.Context) error { return started(nil) }
	}
	host, port := d.Options.Host, d.Options.Port
	if host == "" {
		host = "localhost" // listening on every address
	}
	if port == 0 {
		port = webhook.DefaultPort
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	return func(ctx context.Context) error {
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(r.currentBundle()) {
			return errors.New("no CA bundle yet")
		}
		dialer := tls.Dialer{Config: &tls.Config{RootCAs: roots, ServerName: r.params.dnsNames[0], MinVersion: tls.VersionTLS12}}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}
}

func (r *Rotator) currentBundle() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bundle
}

func (r *Rotator) setBundle(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bundle = b
}

// Gate wraps a webhook server so that it starts only once r is Ready:
// controller-runtime's server fails to start without its certificate
// files. Pass the result as the manager's Options.WebhookServer; the
// manager starts webhook servers before other runnables, and the wrapper
// waits there, without holding anything else up, until the Rotator (an
// ordinary runnable) has written the files. Once started, the server is
// checked until it answers with the certificate (see Options.Webhooks).
func (r *Rotator) Gate(srv webhook.Server) webhook.Server {
	return gatedServer{Server: srv, rotator: r}
}

type gatedServer struct {
	webhook.Server
	rotator *Rotator
}

func (g gatedServer) Start(ctx context.Context) error {
	select {
	case <-g.rotator.Ready():
	case <-ctx.Done():
		return nil
	}
	logger := g.rotator.opts.Logger
	if logger.GetSink() == nil {
		logger = log.FromContext(ctx)
	}
	go g.rotator.awaitServing(ctx, logger, g.Server)
	return g.Server.Start(ctx)
}
