package lab

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// What a cluster lab (Options.Cluster) runs on its nodes.

// L2Values are chart values with the lab's Layer 2 pool in config.*: one
// release installs Herald and its configuration.
const L2Values = `config:
  pools:
  - name: lab
    spec:
      addresses:
      - ` + Pool4 + `
  l2Advertisements:
  - name: lab
    spec:
      ipAddressPools:
      - lab
`

// Helm runs hack/chart's program (tool) with Helm's install or upgrade
// action and --wait semantics against the lab, with values on top of the
// chart's defaults. extra are more of its flags (-set k=v).
func (l *Lab) Helm(ctx context.Context, tool, action, chartDir, values string, extra ...string) (string, error) {
	f := filepath.Join(l.dir, "values-"+action+".yaml")
	if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
		return "", err
	}
	args := append([]string{action, "-kubeconfig", l.kubeconfig, "-namespace", HeraldNamespace, "-timeout", "3m", "-f", f}, extra...)
	cmd := exec.CommandContext(ctx, tool, append(args, chartDir)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %w\n%s", action, err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// CreateBackends runs labpod's backend on every node (a DaemonSet named
// name, answering "<node> <pod>" on port 8080) behind a LoadBalancer Service
// of the same name on port 80, in the default namespace.
func (l *Lab) CreateBackends(ctx context.Context, name string, policy corev1.ServiceExternalTrafficPolicy) error {
	labels := map[string]string{"app": name}
	env := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: new(int64(1)),
					Containers: []corev1.Container{{
						Name: "backend", Image: PodImage, ImagePullPolicy: corev1.PullNever,
						Args:  []string{"serve"},
						Env:   []corev1.EnvVar{env("NODE_NAME", "spec.nodeName"), env("POD_NAME", "metadata.name")},
						Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
	if _, err := l.client.AppsV1().DaemonSets("default").Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("backends %s: %w", name, err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, Selector: labels, ExternalTrafficPolicy: policy,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}
	if _, err := l.client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("service %s: %w", name, err)
	}
	return nil
}

// WaitBackends waits until CreateBackends' Pods are Ready on every node and
// its Service has an address, and returns the address.
func (l *Lab) WaitBackends(ctx context.Context, name string) (netip.Addr, error) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		state := ""
		ds, err := l.client.AppsV1().DaemonSets("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil && int(ds.Status.NumberReady) == len(l.nodes) {
			svc, err := l.client.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
			if err == nil {
				if addrs := ingressAddrs(svc); len(addrs) > 0 {
					return addrs[0], nil
				}
				state = fmt.Sprintf("Service status %v", svc.Status.LoadBalancer)
			}
		} else if err == nil {
			state = fmt.Sprintf("%d of %d backends Ready", ds.Status.NumberReady, len(l.nodes))
		}
		if err != nil {
			state = err.Error()
		}
		select {
		case <-ctx.Done():
			return netip.Addr{}, fmt.Errorf("backends %s: %s", name, state)
		case <-tick.C:
		}
	}
}
