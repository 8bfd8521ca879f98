package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/herald-lb/herald/internal/kubeconfig"
)

// kubeNode is one real node being started: containerd, kubelet and
// kube-proxy inside the node's network namespace, with its files in dir.
type kubeNode struct {
	lab   *Lab
	m     *member
	index int // node1 is 1
	dir   string
}

func (k *kubeNode) path(name string) string { return filepath.Join(k.dir, name) }
func (k *kubeNode) socket() string          { return k.path("containerd.sock") }

// Process names of a node's daemons.
func containerdName(node string) string { return "containerd-" + node }
func kubeletName(node string) string    { return "kubelet-" + node }
func kubeProxyName(node string) string  { return "kube-proxy-" + node }

// nodeCgroup is the node's cgroupRoot: its kubelet puts every Pod below it.
func (l *Lab) nodeCgroup(node string) string { return "herald-lab-" + l.id + "-" + node }

func (k *kubeNode) start(ctx context.Context, images []string, proxyKubeconfig string) error {
	l, name := k.lab, k.m.Name
	if err := os.MkdirAll(k.path("cni"), 0o755); err != nil {
		return err
	}
	if err := l.makeCgroups(l.nodeCgroup(name)); err != nil {
		return err
	}
	if err := k.network(); err != nil {
		return err
	}
	if err := k.writeConfigs(proxyKubeconfig); err != nil {
		return err
	}

	// containerd gets a mount namespace of its own, shared with the kubelet
	// below: container root file systems, volumes and the Pods' network
	// namespaces are mounted there, so they vanish with the node's processes
	// instead of piling up in the host's mount table, and the fixed paths
	// containerd, runc, the CNI plugins and the kubelet (its device-plugin
	// socket) use are the node's own. nsenter
	// --net rather than `ip netns exec`, which remounts /sys and hides the
	// cgroups.
	script := `set -e
for d in /run/netns /run/containerd /var/lib/cni /var/lib/kubelet /var/log/containers; do
	mkdir -p "$d"
	mount -t tmpfs -o mode=0755 herald-lab "$d"
done
exec containerd --config "$1"`
	if err := l.startProcess(containerdName(name), "", []string{"nsenter", "--net=" + namespacePath(k.m.Namespace), "--",
		"unshare", "--mount", "--propagation", "slave", "--", "sh", "-c", script, "containerd", k.path("containerd.toml")}); err != nil {
		return err
	}
	if err := k.waitContainerd(ctx); err != nil {
		return err
	}
	for _, img := range images {
		if err := importImage(ctx, k.socket(), img); err != nil {
			return err
		}
	}
	p, err := l.proc(containerdName(name))
	if err != nil {
		return err
	}
	assets := l.opts.Cluster.NodeAssets
	if err := l.startProcess(kubeletName(name), "", []string{"nsenter", "--target", strconv.Itoa(p.cmd.Process.Pid), "--mount", "--net", "--",
		filepath.Join(assets, "kubelet"), "--config", k.path("kubelet.json"), "--kubeconfig", k.path("kubelet.kubeconfig"),
		"--root-dir", k.path("kubelet"), "--cert-dir", k.path("kubelet-pki"),
		"--hostname-override", name, "--node-ip", k.m.IPv4.String()}); err != nil {
		return err
	}
	return l.startProcess(kubeProxyName(name), "", []string{"nsenter", "--net=" + namespacePath(k.m.Namespace), "--",
		filepath.Join(assets, "kube-proxy"), "--config", k.path("kube-proxy.json")})
}

// network routes the other nodes' Pod ranges to them and the Service range
// to eth0, and gives the node the
// address the kubernetes Service points at, relayed to the API server.
func (k *kubeNode) network() error {
	l, h := k.lab, k.m.nl
	for i, other := range l.nodes {
		if other == k.m {
			continue
		}
		r := &netlink.Route{Dst: prefixNet(PodCIDR(i + 1)), Gw: other.IPv4.AsSlice()}
		if err := h.RouteAdd(r); err != nil {
			return fmt.Errorf("route to %s's Pods: %w", other.Name, err)
		}
	}
	// Without a default route a node could not even try a ClusterIP of its
	// own before kube-proxy's DNAT: a link route is enough.
	eth, err := h.LinkByName("eth0")
	if err != nil {
		return err
	}
	svc := netip.MustParsePrefix(clusterServiceCIDR)
	if err := h.RouteAdd(&netlink.Route{Dst: prefixNet(svc), LinkIndex: eth.Attrs().Index, Src: k.m.IPv4.AsSlice()}); err != nil {
		return fmt.Errorf("route to the Services: %w", err)
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := h.AddrAdd(lo, addrOf(netip.PrefixFrom(apiAdvertise, 32))); err != nil {
		return fmt.Errorf("lo %s: %w", apiAdvertise, err)
	}
	if err := writeSysctls(k.m.ns, "net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	_, port, _ := strings.Cut(l.apiAddr, ":")
	return l.listenForward(k.m, netip.MustParseAddrPort(apiAdvertise.String()+":"+port).String(), l.apiAddr)
}

func (k *kubeNode) writeConfigs(proxyKubeconfig string) error {
	l, name := k.lab, k.m.Name
	user, err := l.env.AddUser(envtest.User{Name: "system:node:" + name, Groups: []string{"system:nodes"}}, l.cfg)
	if err != nil {
		return fmt.Errorf("kubelet user: %w", err)
	}
	if err := kubeconfig.Write(user.Config(), k.path("kubelet.kubeconfig")); err != nil {
		return err
	}
	containerd := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = %[3]q
[debug]
  level = "warn"
[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[6]q
`, k.path("containerd/root"), k.path("containerd/state"), k.socket(), k.path("containerd/opt"), PodImage, k.path("cni"))

	cni := map[string]any{
		"cniVersion": "0.4.0", "name": "lab",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]map[string]string{{{"subnet": PodCIDR(k.index).String()}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	kubelet := map[string]any{
		"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
		// Facts of this machine: cgroup v1 only, no systemd.
		"failCgroupV1": false, "cgroupDriver": "cgroupfs", "cgroupRoot": "/" + l.nodeCgroup(name), "cgroupsPerQOS": true,
		"containerRuntimeEndpoint": "unix://" + k.socket(),
		"address":                  k.m.IPv4.String(), "port": 10250, "readOnlyPort": 0,
		"healthzBindAddress": "127.0.0.1", "healthzPort": 10248,
		"authentication": map[string]any{"anonymous": map[string]bool{"enabled": true}, "webhook": map[string]bool{"enabled": false}},
		"authorization":  map[string]string{"mode": "AlwaysAllow"},
		"clusterDomain":  "cluster.local",
		"failSwapOn":     false,
		"podLogsDir":     k.path("pod-logs"),
		"resolvConf":     "",
		// The node shares the host's disk: evict only when it is all but full.
		"evictionHard":                map[string]string{"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
		"imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
		// A killed node is NotReady within the controller manager's
		// 10 s grace period.
		"nodeStatusUpdateFrequency": "2s", "nodeStatusReportFrequency": "10s", "nodeLeaseDurationSeconds": 8,
		"syncFrequency": "10s", "serializeImagePulls": false, "maxPods": 50,
	}
	proxy := map[string]any{
		"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
		"mode":             "iptables",
		"hostnameOverride": name,
		"clientConnection": map[string]string{"kubeconfig": proxyKubeconfig},
		"clusterCIDR":      clusterPodCIDR,
		// Inside a network namespace the global conntrack table size is not
		// kube-proxy's to set.
		"conntrack":          map[string]any{"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
		"metricsBindAddress": "127.0.0.1:10249", "healthzBindAddress": "127.0.0.1:10256",
	}
	files := map[string]any{"cni/10-lab.conflist": cni, "kubelet.json": kubelet, "kube-proxy.json": proxy}
	for f, v := range files {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(k.path(f), b, 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(k.path("containerd.toml"), []byte(containerd), 0o644)
}

// waitContainerd waits for containerd's socket to answer.
func (k *kubeNode) waitContainerd(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if _, err := os.Stat(k.socket()); err == nil {
			return nil
		}
		p, err := k.lab.proc(containerdName(k.m.Name))
		if err == nil && p.exited() {
			return fmt.Errorf("containerd exited: %v\n%s", p.err, indent(k.lab.LogTail(containerdName(k.m.Name), 15)))
		}
		select {
		case <-ctx.Done():
			return errors.New("containerd did not open its socket in 30s")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// KillNode ends a node as a power cut would: its daemons and every
// container on it are killed and its link to the LAN is cut. Its Node stays
// until the controller manager sees it NotReady.
func (l *Lab) KillNode(node string) error {
	if _, err := l.node(node); err != nil {
		return err
	}
	if err := l.CutLink(node); err != nil {
		return err
	}
	for _, name := range []string{kubeletName(node), kubeProxyName(node), containerdName(node)} {
		p, err := l.proc(name)
		if err != nil {
			return err
		}
		p.kill()
	}
	return killCgroup(l.nodeCgroup(node))
}
