package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/herald-lb/herald/internal/controller"
)

func controllerCommand() command {
	return command{
		summary: "allocate addresses to LoadBalancer Services (one active replica by leader election)",
		run:     runController,
	}
}

// defaultNamespace is where the configuration lives when --namespace is not
// given: the pod's own namespace, else MetalLB's.
func defaultNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "metallb-system"
}

// restConfig loads the cluster connection: --kubeconfig if given, else the
// in-cluster service account, else $KUBECONFIG or ~/.kube/config.
//
// client-go's default client-side limit (5 requests/s, burst 10) would
// cap allocation at about 2.5 Services a second, since each costs two
// writes; the API server's own priority and fairness protects it instead,
// as with controller-runtime's GetConfig (and MetalLB).
func restConfig(kubeconfig string) (cfg *rest.Config, inCluster bool, err error) {
	defer func() {
		if cfg != nil {
			cfg.QPS, cfg.Burst = -1, 0
		}
	}()
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		return cfg, false, err
	}
	if cfg, err = rest.InClusterConfig(); err == nil {
		return cfg, true, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, false, fmt.Errorf("no --kubeconfig, not in a cluster, and no usable kubeconfig: %w", err)
	}
	return cfg, false, nil
}

func newLogger(w io.Writer, level string) (logr.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return logr.Logger{}, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return logr.FromSlogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// metricsSecureUsage describes --metrics-secure, the same for both
// components.
const metricsSecureUsage = "serve /metrics over HTTPS (self-signed) to callers the API server authenticates and allows to get the /metrics URL; false: plain HTTP to anyone"

func runController(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		kubeconfig  = fs.String("kubeconfig", "", "kubeconfig file; empty means in-cluster, then $KUBECONFIG")
		namespace   = fs.String("namespace", defaultNamespace(), "namespace of the configuration CRs ($POD_NAMESPACE, else metallb-system)")
		lbClass     = fs.String("lb-class", "", "handle only Services of this spec.loadBalancerClass; empty handles Services without one")
		metricsAddr = fs.String("metrics-addr", ":7472", `address of /metrics ("0" disables)`)
		metricsTLS  = fs.Bool("metrics-secure", true, metricsSecureUsage)
		healthAddr  = fs.String("health-addr", ":7473", `address of /healthz and /readyz ("0" disables)`)
		leader      = fs.Bool("leader-elect", true, "run one active replica at a time, elected on a Lease")
		leaderID    = fs.String("leader-election-id", "herald-controller", "name of the leader election Lease")
		webhookMode = fs.String("webhook", "auto", "validating webhook: auto (on in-cluster), on, off")
		webhookPort = fs.Int("webhook-port", 9443, "webhook server port")
		certDir     = fs.String("cert-dir", filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs"), "webhook certificate folder")
		rotate      = fs.Bool("cert-rotation", true, "create and renew the webhook certificate, and write the webhooks into the configuration once they answer (off: cert-manager provides the certificate, and you the webhooks)")
		failPolicy  = fs.String("webhook-failure-policy", "Fail", "failurePolicy of the webhooks written into the configuration: Fail or Ignore")
		logLevel    = fs.String("log-level", "info", "debug, info, warn or error")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	ctrllog.SetLogger(log)
	cfg, inCluster, err := restConfig(*kubeconfig)
	if err != nil {
		return err
	}
	opts := controller.Options{
		Namespace: *namespace, LBClass: *lbClass,
		MetricsAddr: *metricsAddr, MetricsSecure: *metricsTLS, HealthAddr: *healthAddr,
		LeaderElection: *leader, LeaderElectionID: *leaderID, Log: log,
	}
	switch *webhookMode {
	case "on":
	case "off":
	case "auto":
		if !inCluster {
			*webhookMode = "off" // out of cluster: no certificates needed
		}
	default:
		return fmt.Errorf("--webhook %q: want auto, on or off", *webhookMode)
	}
	if *failPolicy != "Fail" && *failPolicy != "Ignore" {
		return fmt.Errorf("--webhook-failure-policy %q: want Fail or Ignore", *failPolicy)
	}
	if *webhookMode != "off" {
		opts.Webhook = &controller.WebhookOptions{Port: *webhookPort, CertDir: *certDir, Rotate: *rotate,
			FailurePolicy: admissionregistrationv1.FailurePolicyType(*failPolicy)}
	}
	log.Info("starting controller", "namespace", *namespace, "lbClass", *lbClass, "leaderElection", *leader, "webhook", opts.Webhook != nil)
	return controller.Run(ctx, cfg, opts)
}
