package webhookcert

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/herald-lb/herald/internal/testcluster"
)

// TestRotatorAgainstAPIServer runs Rotators against a real kube-apiserver.
// The subtests share the control plane; each has its own namespace and
// webhook configuration.
func TestRotatorAgainstAPIServer(t *testing.T) {
	cluster := testcluster.Start(t)
	client, err := kubernetes.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Run("lifecycle", func(t *testing.T) { testLifecycle(t, cluster.Config, client) })
	t.Run("renews before expiry", func(t *testing.T) { testPeriodicRenewal(t, client) })
	t.Run("replicas share one CA", func(t *testing.T) { testReplicas(t, client) })
	t.Run("waits for the webhook configuration", func(t *testing.T) { testLateWebhookConfig(t, client) })
	t.Run("writes the webhooks once serving and elected", func(t *testing.T) { testWritesWebhooks(t, cluster.Config, client) })
}

// testLifecycle follows one replica, wired into a manager as the package
// documentation says, through first issue, a tampered caBundle, a deleted
// Secret, an expired Secret and an expiring CA, with the manager's webhook
// server loading the files.
func testLifecycle(t *testing.T, cfg *rest.Config, client kubernetes.Interface) {
	ctx := t.Context()
	opts := Options{Namespace: newNamespace(t, client, "lifecycle"), CertDir: t.TempDir()}
	opts.WebhookConfigName = newWebhookConfig(t, client, opts.Namespace)
	opts.Logger = testr.New(t)
	rot, addr := runManager(t, cfg, client, opts)
	waitReady(t, rot)

	// Ready means done, not nearly done: no waiting here.
	first, err := converged(ctx, client, opts)
	if err != nil {
		t.Fatalf("after Ready: %v", err)
	}
	secret, err := client.CoreV1().Secrets(opts.Namespace).Get(ctx, DefaultSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if secret.Type != corev1.SecretTypeTLS {
		t.Errorf("secret type = %s, want %s", secret.Type, corev1.SecretTypeTLS)
	}
	if info, err := os.Stat(filepath.Join(opts.CertDir, KeyFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v; want mode 0600", info, err)
	}

	// The API server would reach the webhook by the Service's name.
	serverName := opts.DNSNames()[0]
	waitFor(t, 30*time.Second, "webhook server serves the issued certificate", func() error {
		return servesCert(ctx, addr, first, serverName)
	})

	t.Run("tampered caBundle restored", func(t *testing.T) {
		patch := []byte(`[{"op":"add","path":"/webhooks/1/clientConfig/caBundle","value":"` + otherCABase64(t) + `"}]`)
		if _, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Patch(ctx, opts.WebhookConfigName, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatalf("tamper: %v", err)
		}
		waitConverged(t, client, opts, func(data map[string][]byte) error {
			if !bytes.Equal(data[CACertKey], first[CACertKey]) {
				return errors.New("CA replaced, want it kept")
			}
			return nil
		})
	})

	t.Run("deleted secret recreated", func(t *testing.T) {
		if err := client.CoreV1().Secrets(opts.Namespace).Delete(ctx, DefaultSecretName, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete secret: %v", err)
		}
		data := waitConverged(t, client, opts, func(data map[string][]byte) error {
			if bytes.Equal(data[CACertKey], first[CACertKey]) {
				return errors.New("CA not replaced yet")
			}
			return nil
		})
		waitFor(t, 30*time.Second, "webhook server serves the new certificate", func() error {
			return servesCert(ctx, addr, data, serverName)
		})
	})

	t.Run("expired secret replaced", func(t *testing.T) {
		long := time.Now().Add(-2 * 365 * 24 * time.Hour)
		expired, err := renew(nil, issueParams{dnsNames: opts.DNSNames(), caValidity: 365 * 24 * time.Hour, certValidity: 90 * 24 * time.Hour, refreshBefore: time.Hour}, long)
		if err != nil {
			t.Fatal(err)
		}
		setSecretData(t, client, opts, expired.data)
		data := waitConverged(t, client, opts, func(data map[string][]byte) error {
			if bytes.Equal(data[CACertKey], expired.data[CACertKey]) {
				return errors.New("expired CA not replaced yet")
			}
			return nil
		})
		if n := countCerts(t, data[CACertKey]); n != 1 {
			t.Errorf("bundle holds %d certificates, want the expired CA dropped", n)
		}
	})

	t.Run("expiring CA rotated with overlap", func(t *testing.T) {
		// A CA 10 days from expiry, inside the default 30-day window, and
		// a serving certificate it signed today, valid until then.
		now := time.Now()
		ca, err := newCA(now.Add(-DefaultCAValidity+10*24*time.Hour), DefaultCAValidity)
		if err != nil {
			t.Fatal(err)
		}
		cert, key, err := ca.issue(opts.DNSNames(), now, DefaultCertValidity)
		if err != nil {
			t.Fatal(err)
		}
		expiring := renewal{data: map[string][]byte{
			CACertKey: ca.certPEM, CAPrivateKeyKey: ca.keyPEM,
			corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key,
		}}
		setSecretData(t, client, opts, expiring.data)
		data := waitConverged(t, client, opts, func(data map[string][]byte) error {
			if bytes.HasPrefix(data[CACertKey], expiring.data[CACertKey]) {
				return errors.New("expiring CA not replaced yet")
			}
			return nil
		})
		if n := countCerts(t, data[CACertKey]); n != 2 {
			t.Errorf("bundle holds %d certificates, want the new and the previous CA", n)
		}
		if !bytes.HasSuffix(data[CACertKey], expiring.data[CACertKey]) {
			t.Error("previous CA is not in the bundle")
		}
		// A replica still serving the old certificate stays trusted.
		if err := verifyLeaf(expiring.data[corev1.TLSCertKey], data[CACertKey], opts.DNSNames()); err != nil {
			t.Errorf("old serving certificate against the new bundle: %v", err)
		}
		waitFor(t, 30*time.Second, "webhook server serves the new certificate", func() error {
			return servesCert(ctx, addr, data, serverName)
		})
	})
}

// testPeriodicRenewal uses lifetimes of seconds: with nothing changing in
// the cluster and an hour between checks, the serving certificate must
// still be renewed when it falls due, under the same CA.
func testPeriodicRenewal(t *testing.T, client kubernetes.Interface) {
	opts := Options{
		Namespace:     newNamespace(t, client, "periodic"),
		CertDir:       t.TempDir(),
		CAValidity:    time.Hour,
		CertValidity:  4 * time.Second,
		RefreshBefore: 2 * time.Second,
		CheckInterval: time.Hour,
		Logger:        testr.New(t),
	}
	opts.WebhookConfigName = newWebhookConfig(t, client, opts.Namespace)
	rot := run(t, client, opts)
	waitReady(t, rot)
	first, err := converged(t.Context(), client, opts)
	if err != nil {
		t.Fatalf("after Ready: %v", err)
	}
	for i := range 2 {
		prev := first
		first = waitConverged(t, client, opts, func(data map[string][]byte) error {
			if bytes.Equal(data[corev1.TLSCertKey], prev[corev1.TLSCertKey]) {
				return errors.New("serving certificate not renewed yet")
			}
			if !bytes.Equal(data[CACertKey], prev[CACertKey]) {
				return fmt.Errorf("renewal %d replaced the CA, want it kept", i+1)
			}
			return nil
		})
	}
}

// testReplicas starts three replicas at once on an empty namespace, then
// deletes the Secret under them: each time they must settle on one CA.
func testReplicas(t *testing.T, client kubernetes.Interface) {
	ns := newNamespace(t, client, "replicas")
	config := newWebhookConfig(t, client, ns)
	var replicas []Options
	var rotators []*Rotator
	for i := range 3 {
		o := Options{Namespace: ns, WebhookConfigName: config, CertDir: t.TempDir(), Logger: testr.New(t).WithValues("replica", i)}
		replicas = append(replicas, o)
	}
	// run returns as soon as its Start goroutine is launched, so the three
	// race to create the Secret.
	for _, o := range replicas {
		rotators = append(rotators, run(t, client, o))
	}
	for _, r := range rotators {
		waitReady(t, r)
	}

	check := func(t *testing.T, notCA []byte) {
		var shared []byte
		for i, o := range replicas {
			data := waitConverged(t, client, o, func(data map[string][]byte) error {
				if notCA != nil && bytes.Equal(data[CACertKey], notCA) {
					return errors.New("CA not replaced yet")
				}
				return nil
			})
			if n := countCerts(t, data[CACertKey]); n != 1 {
				t.Errorf("replica %d: bundle holds %d certificates, want 1", i, n)
			}
			if shared == nil {
				shared = data[CACertKey]
			} else if !bytes.Equal(shared, data[CACertKey]) {
				t.Errorf("replica %d settled on another CA", i)
			}
		}
	}
	check(t, nil)
	before, err := client.CoreV1().Secrets(ns).Get(t.Context(), DefaultSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Secrets(ns).Delete(t.Context(), DefaultSecretName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	check(t, before.Data[CACertKey])
}

// testLateWebhookConfig starts a replica before its webhook configuration
// exists: it must not report ready, then inject promptly once it appears.
func testLateWebhookConfig(t *testing.T, client kubernetes.Interface) {
	ns := newNamespace(t, client, "late")
	opts := Options{Namespace: ns, WebhookConfigName: "herald-late-" + ns, CertDir: t.TempDir(), Logger: testr.New(t)}
	rot := run(t, client, opts)
	// Let retries fail until the backoff is long: syncs at about 0, 0.5,
	// 1.5, 3.5 and 7.5s, the next one 8s later. Only the watch can then
	// notice the configuration within the 3s allowed below.
	select {
	case <-rot.Ready():
		t.Fatal("ready without a webhook configuration")
	case <-time.After(8 * time.Second):
	}
	created := time.Now()
	if got := newWebhookConfigNamed(t, client, ns, opts.WebhookConfigName); got != opts.WebhookConfigName {
		t.Fatalf("webhook configuration named %q", got)
	}
	waitReady(t, rot)
	if d := time.Since(created); d > 3*time.Second {
		t.Errorf("ready %s after the webhook configuration appeared; the watch should notice at once", d)
	}
	if _, err := converged(t.Context(), client, opts); err != nil {
		t.Fatalf("after Ready: %v", err)
	}
}

// converged checks the state a replica must reach: a TLS Secret, files in
// CertDir equal to it and valid for the Service's names under its signing
// CA, and its bundle in every webhook. It returns the Secret's data.
func converged(ctx context.Context, client kubernetes.Interface, o Options) (map[string][]byte, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	secret, err := client.CoreV1().Secrets(o.Namespace).Get(ctx, o.SecretName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	data := secret.Data
	for file, key := range map[string]string{CertFile: corev1.TLSCertKey, KeyFile: corev1.TLSPrivateKeyKey} {
		got, err := os.ReadFile(filepath.Join(o.CertDir, file))
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(got, data[key]) {
			return nil, fmt.Errorf("%s differs from the Secret's %s", file, key)
		}
	}
	if _, err := tls.X509KeyPair(data[corev1.TLSCertKey], data[corev1.TLSPrivateKeyKey]); err != nil {
		return nil, err
	}
	signer, err := parseCerts(data[CACertKey])
	if err != nil {
		return nil, err
	}
	if err := verifyLeaf(data[corev1.TLSCertKey], encodeCert(signer[0].Raw), o.DNSNames()); err != nil {
		return nil, err
	}
	cfg, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, o.WebhookConfigName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	for _, wh := range cfg.Webhooks {
		if !bytes.Equal(wh.ClientConfig.CABundle, data[CACertKey]) {
			return nil, fmt.Errorf("webhook %s: caBundle not the Secret's", wh.Name)
		}
	}
	return data, nil
}

// verifyLeaf verifies a serving certificate against a CA bundle for every
// name, as the API server would.
func verifyLeaf(certPEM, bundle []byte, names []string) error {
	leaf, err := parseCerts(certPEM)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		return errors.New("no certificate in the CA bundle")
	}
	for _, name := range names {
		if _, err := leaf[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Errorf("verify for %s: %w", name, err)
		}
	}
	return nil
}

// waitConverged waits until converged holds and extra accepts the data.
func waitConverged(t *testing.T, client kubernetes.Interface, o Options, extra func(map[string][]byte) error) map[string][]byte {
	t.Helper()
	var data map[string][]byte
	waitFor(t, 30*time.Second, "rotator converges", func() error {
		d, err := converged(t.Context(), client, o)
		if err != nil {
			return err
		}
		if err := extra(d); err != nil {
			return err
		}
		data = d
		return nil
	})
	return data
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run starts a Rotator until the test ends, and checks that Start then
// returns nil.
func run(t *testing.T, client kubernetes.Interface, o Options) *Rotator {
	t.Helper()
	r, err := New(client, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Start returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Start did not return after its context ended")
		}
	})
	return r
}

func waitReady(t *testing.T, r *Rotator) {
	t.Helper()
	select {
	case <-r.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("rotator not ready within 30s")
	}
}

func newNamespace(t *testing.T, client kubernetes.Interface, prefix string) string {
	t.Helper()
	ns, err := client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "webhookcert-" + prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// newWebhookConfig creates a configuration with two webhooks pointing at
// the default Service in ns, and returns its name.
func newWebhookConfig(t *testing.T, client kubernetes.Interface, ns string) string {
	t.Helper()
	return newWebhookConfigNamed(t, client, ns, "herald-"+ns)
}

// newWebhookConfigNamed creates the configuration; its webhooks can never
// be called (they select a label nothing carries, and fail open), so no
// test depends on a webhook answering.
func newWebhookConfigNamed(t *testing.T, client kubernetes.Interface, ns, name string) string {
	t.Helper()
	return createWebhookConfig(t, client, name, neverCalledWebhooks(ns))
}

// neverCalledWebhooks are two webhooks for the default Service in ns that
// select a label nothing carries, and fail open.
func neverCalledWebhooks(ns string) []admissionregistrationv1.ValidatingWebhook {
	hook := func(name, path string) admissionregistrationv1.ValidatingWebhook {
		ignore := admissionregistrationv1.Ignore
		none := admissionregistrationv1.SideEffectClassNone
		return admissionregistrationv1.ValidatingWebhook{
			Name: name,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service: &admissionregistrationv1.ServiceReference{Namespace: ns, Name: DefaultServiceName, Path: &path},
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{"metallb.io"}, APIVersions: []string{"v1beta1"}, Resources: []string{"ipaddresspools"},
				},
			}},
			FailurePolicy:           &ignore,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"webhookcert.herald.test/never": "true"}},
		}
	}
	return []admissionregistrationv1.ValidatingWebhook{
		hook("ipaddresspoolvalidationwebhook.metallb.io", "/validate-metallb-io-v1beta1-ipaddresspool"),
		hook("l2advertisementvalidationwebhook.metallb.io", "/validate-metallb-io-v1beta1-l2advertisement"),
	}
}

// createWebhookConfig creates the configuration name with webhooks (none:
// as Herald's chart creates it), deleted when the test ends.
func createWebhookConfig(t *testing.T, client kubernetes.Interface, name string, webhooks []admissionregistrationv1.ValidatingWebhook) string {
	t.Helper()
	cfg, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(t.Context(), &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks:   webhooks,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create validatingwebhookconfiguration: %v", err)
	}
	t.Cleanup(func() {
		_ = client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return cfg.Name
}

func setSecretData(t *testing.T, client kubernetes.Interface, o Options, data map[string][]byte) {
	t.Helper()
	secrets := client.CoreV1().Secrets(o.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := secrets.Get(t.Context(), DefaultSecretName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Data = data
		_, err = secrets.Update(t.Context(), s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("update secret: %v", err)
	}
}

// runManager runs a manager whose webhook server is gated on a Rotator
// added to it, and returns the Rotator and the server's loopback address.
func runManager(t *testing.T, cfg *rest.Config, client kubernetes.Interface, o Options) (*Rotator, string) {
	t.Helper()
	rot, err := New(client, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	mgr, err := manager.New(cfg, manager.Options{
		Logger:                 testr.New(t).WithName("manager"),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer:          rot.Gate(webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port, CertDir: o.CertDir})),
	})
	if err != nil {
		t.Fatalf("manager: %v", err)
	}
	if err := mgr.Add(rot); err != nil {
		t.Fatalf("add rotator: %v", err)
	}
	// As the controller-runtime webhook builder does; this adds the server
	// to the manager.
	mgr.GetWebhookServer().Register("/validate-test", http.NotFoundHandler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("manager: %v", err)
			}
		case <-time.After(90 * time.Second):
			t.Error("manager did not stop")
		}
	})
	return rot, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// servesCert does a TLS handshake trusting only the bundle in data, and
// checks the server presents data's certificate.
func servesCert(ctx context.Context, addr string, data map[string][]byte, serverName string) error {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(data[CACertKey]) {
		return errors.New("no CA in bundle")
	}
	dialer := tls.Dialer{Config: &tls.Config{RootCAs: roots, ServerName: serverName}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	want, err := parseCerts(data[corev1.TLSCertKey])
	if err != nil {
		return err
	}
	if got := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]; !got.Equal(want[0]) {
		return fmt.Errorf("server presents serial %s, want %s", got.SerialNumber, want[0].SerialNumber)
	}
	return nil
}

func countCerts(t *testing.T, bundle []byte) int {
	t.Helper()
	certs, err := parseCerts(bundle)
	if err != nil {
		t.Fatal(err)
	}
	return len(certs)
}

// otherCABase64 is an unrelated CA, base64-encoded as a JSON patch value
// for caBundle.
func otherCABase64(t *testing.T) string {
	t.Helper()
	ca, err := newCA(time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(ca.certPEM)
}
