// Package webhookcert gives Herald's validating webhook a serving
// certificate without cert-manager. A self-signed CA and a serving
// certificate for the webhook Service live in one Secret that every
// controller replica shares; each replica writes the serving pair to its
// certificate directory for controller-runtime's webhook server and injects
// the CA bundle into the ValidatingWebhookConfiguration. The material is
// renewed ahead of expiry, and whenever the Secret is deleted or damaged.
//
// Given the webhooks (Options.Webhooks), the Rotator also writes them into
// the configuration, but only once its replica's webhook server answers
// with the certificate: a configuration created empty (as Herald's chart
// creates it) validates nothing until the webhook can answer, so a release
// that creates the configuration and the objects it validates at once
// succeeds whatever order they are created in.
//
// The Rotator needs these permissions: get, list, watch, create and update
// on Secrets in its namespace (list and watch can be limited to the Secret's
// name, create cannot), and get, list, watch and patch on
// validatingwebhookconfigurations (can be limited to the configuration's
// name). Writing the webhooks is a patch too (server-side apply).
//
// Wiring in a manager, where the webhook server must not start before its
// certificate exists:
//
//	rot, err := webhookcert.New(clientset, webhookcert.Options{Namespace: ns, CertDir: dir})
//	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
//		WebhookServer: rot.Gate(webhook.NewServer(webhook.Options{CertDir: dir})),
//	})
//	err = mgr.Add(rot)
package webhookcert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Defaults for Options fields left empty.
const (
	DefaultSecretName        = "herald-webhook-server-cert"
	DefaultServiceName       = "herald-webhook-service"
	DefaultWebhookConfigName = "herald-validating-webhook-configuration"
	DefaultClusterDomain     = "cluster.local"
	DefaultCAValidity        = 10 * 365 * 24 * time.Hour
	DefaultCertValidity      = 365 * 24 * time.Hour
	DefaultRefreshBefore     = 30 * 24 * time.Hour
	DefaultCheckInterval     = time.Hour
)

// Names of the serving pair in CertDir: controller-runtime's webhook
// server defaults.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// Retry pacing after a failed sync (API server unreachable, webhook
// configuration not created yet, ...).
const (
	minRetry = 500 * time.Millisecond
	maxRetry = time.Minute
	// conflictAttempts bounds how often one sync re-reads the Secret after
	// losing a race with another replica.
	conflictAttempts = 5
)

// Options configures a Rotator. Only Namespace is required.
type Options struct {
	// Namespace holds the Secret and the Service: the controller's own.
	Namespace string
	// SecretName is the Secret shared by all replicas.
	SecretName string
	// ServiceName is the Service in front of the webhook; the certificate
	// is for <ServiceName>.<Namespace>.svc and the same under ClusterDomain.
	ServiceName string
	// ClusterDomain is the cluster's DNS suffix.
	ClusterDomain string
	// WebhookConfigName is the ValidatingWebhookConfiguration whose every
	// webhook gets the CA bundle.
	WebhookConfigName string
	// CertDir receives tls.crt and tls.key. The default is
	// controller-runtime's webhook server default.
	CertDir string
	// CAValidity and CertValidity are the lifetimes of new certificates; a
	// serving certificate never outlives its CA.
	CAValidity   time.Duration
	CertValidity time.Duration
	// RefreshBefore is how long before expiry a certificate is replaced.
	// It must be shorter than both validities.
	RefreshBefore time.Duration
	// CheckInterval is the longest time between checks when nothing
	// changes; a renewal falling due sooner is checked at that time.
	CheckInterval time.Duration
	// Logger defaults to the logger in Start's context (controller-runtime's
	// log.FromContext).
	Logger logr.Logger
	// Webhooks, when set, are the webhooks the configuration must hold; their
	// caBundle is filled in. They are written once the server passed to Gate
	// answers with the certificate and Elected is closed, and kept so.
	// Without them, the CA bundle is only injected into the webhooks the
	// configuration already has.
	Webhooks []admissionregistrationv1.ValidatingWebhook
	// Elected is closed when this replica may write Webhooks (the leader's
	// election): one writer, so that replicas of two versions during a
	// rollout do not undo each other's webhooks. Nil means at once.
	Elected <-chan struct{}
}

// withDefaults fills empty fields and rejects settings that cannot work.
func (o Options) withDefaults() (Options, error) {
	if o.Namespace == "" {
		return o, errors.New("webhookcert: Namespace is required")
	}
	setDefault(&o.SecretName, DefaultSecretName)
	setDefault(&o.ServiceName, DefaultServiceName)
	setDefault(&o.WebhookConfigName, DefaultWebhookConfigName)
	setDefault(&o.ClusterDomain, DefaultClusterDomain)
	setDefault(&o.CertDir, filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs"))
	setDefault(&o.CAValidity, DefaultCAValidity)
	setDefault(&o.CertValidity, DefaultCertValidity)
	setDefault(&o.RefreshBefore, DefaultRefreshBefore)
	setDefault(&o.CheckInterval, DefaultCheckInterval)
	for name, d := range map[string]time.Duration{
		"CAValidity": o.CAValidity, "CertValidity": o.CertValidity,
		"RefreshBefore": o.RefreshBefore, "CheckInterval": o.CheckInterval,
	} {
		if d < 0 {
			return o, fmt.Errorf("webhookcert: %s %s is negative", name, d)
		}
	}
	// A refresh window as long as the lifetime would renew on every check.
	if o.RefreshBefore >= o.CertValidity {
		return o, fmt.Errorf("webhookcert: RefreshBefore %s must be shorter than CertValidity %s", o.RefreshBefore, o.CertValidity)
	}
	if o.RefreshBefore >= o.CAValidity {
		return o, fmt.Errorf("webhookcert: RefreshBefore %s must be shorter than CAValidity %s", o.RefreshBefore, o.CAValidity)
	}
	return o, nil
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// DNSNames are the names the serving certificate must carry: those the API
// server uses to reach the webhook Service. Empty ServiceName and
// ClusterDomain mean their defaults here too.
func (o Options) DNSNames() []string {
	setDefault(&o.ServiceName, DefaultServiceName)
	setDefault(&o.ClusterDomain, DefaultClusterDomain)
	base := o.ServiceName + "." + o.Namespace + ".svc"
	return []string{base, base + "." + o.ClusterDomain}
}

// Rotator keeps the webhook's certificate material valid. Run it on every
// replica: each serves the webhook from its own files.
type Rotator struct {
	client    kubernetes.Interface
	opts      Options
	params    issueParams
	ready     chan struct{}
	readyOnce sync.Once
	// wake has Start sync again (a watched object changed, the server
	// answers).
	wake chan struct{}
	// serving is closed once the gated server answers with the certificate.
	serving     chan struct{}
	servingOnce sync.Once
	// mu guards bundle, the CA bundle of the last sync, for the serving
	// check.
	mu     sync.Mutex
	bundle []byte
}

// New checks opts and returns a Rotator that uses client for the Secret
// and the webhook configuration. It does not talk to the API server until
// Start.
func New(client kubernetes.Interface, opts Options) (*Rotator, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Rotator{
		client: client,
		opts:   opts,
		params: issueParams{
			dnsNames:      opts.DNSNames(),
			caValidity:    opts.CAValidity,
			certValidity:  opts.CertValidity,
			refreshBefore: opts.RefreshBefore,
		},
		ready:   make(chan struct{}),
		wake:    make(chan struct{}, 1),
		serving: make(chan struct{}),
	}, nil
}

// NeedLeaderElection is false: every replica serves the webhook and needs
// its files and a CA bundle that trusts them.
func (r *Rotator) NeedLeaderElection() bool { return false }

// Ready is closed once the serving pair is on disk and the CA bundle is in
// the webhook configuration for the first time.
func (r *Rotator) Ready() <-chan struct{} { return r.ready }

// Start keeps the material valid until ctx ends: at once, whenever the
// Secret or the webhook configuration changes, when a renewal falls due,
// and at least every CheckInterval. Failures are logged and retried with
// backoff rather than returned, because a manager stops everything when a
// runnable returns an error and an API server hiccup is no reason for that.
func (r *Rotator) Start(ctx context.Context) error {
	logger := r.opts.Logger
	if logger.GetSink() == nil {
		logger = log.FromContext(ctx)
	}
	logger = logger.WithValues("secret", r.opts.Namespace+"/"+r.opts.SecretName, "webhookConfiguration", r.opts.WebhookConfigName)

	stopWatching, err := r.watch(ctx, r.wake)
	if err != nil {
		return err
	}
	defer stopWatching()

	// A channel that fired is set to nil, which blocks, so that select
	// does not spin on it.
	serving, elected := r.serving, r.opts.Elected
	isServing, isElected := false, elected == nil
	retry := minRetry
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		wait := r.opts.CheckInterval
		register := r.opts.Webhooks != nil && isServing && isElected
		due, err := r.sync(ctx, logger, register)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			logger.Error(err, "Webhook certificate sync failed", "retryIn", retry)
			wait, retry = retry, min(2*retry, maxRetry)
		default:
			retry = minRetry
			r.readyOnce.Do(func() {
				logger.Info("Webhook certificate ready", "certDir", r.opts.CertDir)
				close(r.ready)
			})
			// The floor keeps a renewal that falls due at once (a refresh
			// window within a second of the lifetime) from spinning.
			wait = min(wait, max(time.Until(due), minRetry))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-timer.C:
		case <-serving:
			isServing, serving = true, nil
		case <-elected:
			isElected, elected = true, nil
		}
	}
}

// watch signals on changed whenever the Secret or the webhook
// configuration is added, modified or deleted. The informers are scoped to
// the two names so that nothing else is cached or needs permission.
func (r *Rotator) watch(ctx context.Context, changed chan<- struct{}) (stop func(), err error) {
	notify := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke(changed) },
		UpdateFunc: func(any, any) { poke(changed) },
		DeleteFunc: func(any) { poke(changed) },
	}
	byName := func(name string) informers.SharedInformerOption {
		return informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		})
	}
	secrets := informers.NewSharedInformerFactoryWithOptions(r.client, 0,
		informers.WithNamespace(r.opts.Namespace), byName(r.opts.SecretName))
	configs := informers.NewSharedInformerFactoryWithOptions(r.client, 0, byName(r.opts.WebhookConfigName))
	if _, err := secrets.Core().V1().Secrets().Informer().AddEventHandler(notify); err != nil {
		return nil, fmt.Errorf("watch secret %s/%s: %w", r.opts.Namespace, r.opts.SecretName, err)
	}
	if _, err := configs.Admissionregistration().V1().ValidatingWebhookConfigurations().Informer().AddEventHandler(notify); err != nil {
		return nil, fmt.Errorf("watch validatingwebhookconfiguration %s: %w", r.opts.WebhookConfigName, err)
	}
	watchCtx, cancel := context.WithCancel(ctx)
	secrets.Start(watchCtx.Done())
	configs.Start(watchCtx.Done())
	return func() {
		cancel()
		secrets.Shutdown()
		configs.Shutdown()
	}, nil
}

// poke signals without blocking; one pending signal is enough because each
// sync reads the current state.
func poke(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// sync makes the Secret valid, injects its CA bundle (or, with register,
// writes the webhooks with it) and writes the serving pair, in that order:
// the bundle must trust a new certificate before any replica serves it. It
// returns when the material next needs renewal.
func (r *Rotator) sync(ctx context.Context, logger logr.Logger, register bool) (time.Time, error) {
	rn, err := r.ensureSecret(ctx, logger)
	if err != nil {
		return time.Time{}, err
	}
	if register {
		err = r.register(ctx, logger, rn.data[CACertKey])
	} else {
		err = r.inject(ctx, logger, rn.data[CACertKey])
	}
	if err != nil {
		return time.Time{}, err
	}
	if err := r.writeFiles(logger, rn.data); err != nil {
		return time.Time{}, err
	}
	r.setBundle(rn.data[CACertKey])
	return rn.due, nil
}

// ensureSecret reads the Secret, creating or renewing it when needed, and
// returns the material now stored. Another replica may create or renew it
// at the same moment; the loser of that race reads and uses the winner's.
func (r *Rotator) ensureSecret(ctx context.Context, logger logr.Logger) (renewal, error) {
	secrets := r.client.CoreV1().Secrets(r.opts.Namespace)
	for attempt := 1; ; attempt++ {
		secret, err := secrets.Get(ctx, r.opts.SecretName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			rn, err := renew(nil, r.params, time.Now())
			if err != nil {
				return renewal{}, fmt.Errorf("secret %s/%s: %w", r.opts.Namespace, r.opts.SecretName, err)
			}
			secret = &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{
					Name:      r.opts.SecretName,
					Namespace: r.opts.Namespace,
					Labels:    map[string]string{"app.kubernetes.io/managed-by": "herald"},
				},
				Type: corev1.SecretTypeTLS,
				Data: rn.data,
			}
			_, err = secrets.Create(ctx, secret, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) && attempt < conflictAttempts {
				logger.V(1).Info("Another replica created the webhook certificate secret; using theirs")
				continue
			}
			if err != nil {
				return renewal{}, fmt.Errorf("create secret %s/%s: %w", r.opts.Namespace, r.opts.SecretName, err)
			}
			logger.Info("Created webhook certificate secret", "dnsNames", r.params.dnsNames)
			return rn, nil
		}
		if err != nil {
			return renewal{}, fmt.Errorf("get secret %s/%s: %w", r.opts.Namespace, r.opts.SecretName, err)
		}

		rn, err := renew(secret.Data, r.params, time.Now())
		if err != nil {
			return renewal{}, fmt.Errorf("secret %s/%s: %w", r.opts.Namespace, r.opts.SecretName, err)
		}
		if rn.reason == "" {
			return rn, nil
		}
		secret = secret.DeepCopy()
		secret.Data = rn.data
		// resourceVersion from the Get makes this fail if another replica
		// renewed in between; their material is then read and kept.
		_, err = secrets.Update(ctx, secret, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) && attempt < conflictAttempts {
			logger.V(1).Info("Webhook certificate secret changed while renewing; reading it again")
			continue
		}
		if err != nil {
			return renewal{}, fmt.Errorf("update secret %s/%s: %w", r.opts.Namespace, r.opts.SecretName, err)
		}
		logger.Info("Renewed webhook certificate", "reason", rn.reason)
		return rn, nil
	}
}

// jsonPatchOp is one RFC 6902 operation.
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// inject sets bundle as the caBundle of every webhook in the configuration
// that does not have it yet. The JSON patch tests each webhook's name next
// to its index, so a configuration reordered in the meantime is rejected
// rather than patched at the wrong place; the next sync retries.
func (r *Rotator) inject(ctx context.Context, logger logr.Logger, bundle []byte) error {
	configs := r.client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	cfg, err := configs.Get(ctx, r.opts.WebhookConfigName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get validatingwebhookconfiguration %s: %w", r.opts.WebhookConfigName, err)
	}
	var ops []jsonPatchOp
	var names []string
	for i, wh := range cfg.Webhooks {
		if bytes.Equal(wh.ClientConfig.CABundle, bundle) {
			continue
		}
		ops = append(ops,
			jsonPatchOp{Op: "test", Path: fmt.Sprintf("/webhooks/%d/name", i), Value: wh.Name},
			jsonPatchOp{Op: "add", Path: fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), Value: bundle},
		)
		names = append(names, wh.Name)
	}
	if len(ops) == 0 {
		return nil
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return fmt.Errorf("encode caBundle patch: %w", err)
	}
	if _, err := configs.Patch(ctx, cfg.Name, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("inject caBundle into validatingwebhookconfiguration %s: %w", cfg.Name, err)
	}
	logger.Info("Injected CA bundle", "webhooks", names)
	return nil
}

// writeFiles puts the serving pair in CertDir, key first: the certificate
// watcher rejects a mismatched pair and keeps serving the old one, and the
// rename of the certificate then completes the new pair.
func (r *Rotator) writeFiles(logger logr.Logger, data map[string][]byte) error {
	if err := os.MkdirAll(r.opts.CertDir, 0o700); err != nil {
		return fmt.Errorf("create certificate directory: %w", err)
	}
	keyChanged, err := writeFileAtomic(r.opts.CertDir, KeyFile, data[corev1.TLSPrivateKeyKey], 0o600)
	if err != nil {
		return err
	}
	certChanged, err := writeFileAtomic(r.opts.CertDir, CertFile, data[corev1.TLSCertKey], 0o644)
	if err != nil {
		return err
	}
	if keyChanged || certChanged {
		logger.Info("Wrote webhook serving certificate", "certDir", r.opts.CertDir)
	}
	return nil
}
