package main

import (
	"context"
	"flag"
	"io"
	"os"
	"time"

	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/herald-lb/herald/internal/speaker"
)

func speakerCommand() command {
	return command{
		summary: "announce Service addresses from this node (ARP/NDP, BGP)",
		run:     runSpeaker,
	}
}

func runSpeaker(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("speaker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		kubeconfig  = fs.String("kubeconfig", "", "kubeconfig file; empty means in-cluster, then $KUBECONFIG")
		nodeName    = fs.String("node-name", os.Getenv("NODE_NAME"), "this node's name ($NODE_NAME)")
		namespace   = fs.String("namespace", defaultNamespace(), "namespace of the configuration CRs ($POD_NAMESPACE, else metallb-system)")
		lbClass     = fs.String("lb-class", "", "announce only Services of this spec.loadBalancerClass; empty: Services without one")
		metricsAddr = fs.String("metrics-addr", ":7472", `address of /metrics ("0" disables)`)
		healthAddr  = fs.String("health-addr", "0", `address of /healthz and /readyz, ready once Layer 2 can open its raw socket ("0" disables; the chart serves it)`)
		metricsTLS  = fs.Bool("metrics-secure", true, metricsSecureUsage)
		mlBind      = fs.String("ml-bind-addr", os.Getenv("METALLB_ML_BIND_ADDR"), "memberlist bind address (empty: the node's InternalIP)")
		mlPort      = fs.Int("ml-bind-port", 7946, "memberlist port")
		mlProfile   = fs.String("ml-profile", "fast", "failure detection: fast (sub-second) or lan (memberlist's stock LAN settings)")
		mlOff       = fs.Bool("ml-disabled", false, "no memberlist: nodes are alive while their Node is Ready (much slower failover)")
		mlClear     = fs.Bool("ml-unencrypted", false, "gossip without encryption, not reading the memberlist Secret; every speaker must agree. Otherwise a speaker that cannot read the key joins no one and announces nothing over Layer 2 until it can")
		handover    = fs.Duration("handover-delay", time.Second, "on SIGTERM, keep answering this long after leaving, while the next owners take over")
		cloudAPI    = fs.String("cloud-endpoint", "", "the cloud API's base URL for CloudAdvertisements (empty: the provider's own, https://api.hetzner.cloud/v1)")
		cloudLease  = fs.Duration("cloud-lease", 15*time.Second, "floating IPs: the Lease per IP; a dead owner's IPs move once it expires")
		cloudHold   = fs.Duration("cloud-hold-down", 30*time.Second, "floating IPs: how long an IP stays with a node that took it, whatever the others believe")
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
	cfg, _, err := restConfig(*kubeconfig)
	if err != nil {
		return err
	}
	log.Info("starting speaker", "node", *nodeName, "namespace", *namespace, "memberlist", !*mlOff, "profile", *mlProfile,
		"encrypted", !*mlOff && !*mlClear)
	return speaker.Run(ctx, cfg, speaker.Options{
		NodeName: *nodeName, Namespace: *namespace, LBClass: *lbClass, MetricsAddr: *metricsAddr, MetricsSecure: *metricsTLS, HealthAddr: *healthAddr,
		MLBindAddr: *mlBind, MLBindPort: *mlPort, MLProfile: *mlProfile, MLDisabled: *mlOff, MLUnencrypted: *mlClear,
		HandoverDelay: *handover, CloudEndpoint: *cloudAPI, CloudLease: *cloudLease, CloudHoldDown: *cloudHold, Log: log,
	})
}
