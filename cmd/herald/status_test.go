package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/herald-lb/herald/internal/testcluster"
)

// TestStatusCommand runs `herald status` against a real API server: the
// flags, the kubeconfig, the scheme and the client are wired (what it
// reports is tested in test/integration).
func TestStatusCommand(t *testing.T) {
	c := testcluster.Start(t)
	if _, err := c.Kubectl(context.Background(), `apiVersion: v1
kind: Namespace
metadata:
  name: metallb-system
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab, namespace: metallb-system}
spec: {addresses: [192.0.2.0/28]}
`, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := runStatus(context.Background(), []string{"--kubeconfig", c.Kubeconfig, "-n", "metallb-system"}, &out, &errOut); err != nil {
		t.Fatalf("herald status: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{"CONFIGURATION (namespace metallb-system)", "none reported", "POOLS", "  lab", "SERVICES"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("%q missing from:\n%s", want, out.String())
		}
	}
}
