package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-lb/herald/internal/seeds"
)

// TestValidateSeeds runs `herald validate` on each seed file: 001 must fail
// naming primary-eth0 and its field, the others must pass.
func TestValidateSeeds(t *testing.T) {
	files := seeds.ForTest(t, "../..")
	for _, f := range files {
		t.Run(f.Name, func(t *testing.T) {
			args := []string{f.Path}
			if strings.HasPrefix(f.Name, "001-") {
				// Its objects are in the namespace MetalLB was installed in.
				args = append(args, "--namespace", "metallb")
			}
			var stdout, stderr bytes.Buffer
			code := runValidate(args, strings.NewReader(""), &stdout, &stderr)
			out := stdout.String()
			if !strings.HasPrefix(f.Name, "001-") {
				if code != 0 || !strings.HasSuffix(out, " objects valid\n") {
					t.Errorf("exit %d, output:\n%s%s", code, out, stderr.String())
				}
				return
			}
			want := f.Path + ":21: L2Advertisement/primary-eth0: spec.nodeSelectors[0].matchLabels[kubernetes.io/hostname]: "
			if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "no wildcard") {
				t.Errorf("exit %d, want 1 and a line starting %q; output:\n%s", code, want, out)
			}
			if n := strings.Count(out, "\n"); n != 1 {
				t.Errorf("want exactly one problem, got %d lines:\n%s", n, out)
			}
		})
	}
}

func TestValidateUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no files", nil, 2, "no files given"},
		{"unknown flag", []string{"--bogus", "x.yaml"}, 2, "flag provided but not defined"},
		{"bad namespace", []string{"--namespace", "Not_A_Name", "x.yaml"}, 2, "not a namespace name"},
		{"missing file", []string{filepath.Join(t.TempDir(), "missing.yaml")}, 2, "no such file"},
		{"help", []string{"-h"}, 0, "usage: herald validate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runValidate(tc.args, strings.NewReader(""), &stdout, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.err) {
				t.Errorf("exit %d, stderr %q; want %d containing %q", code, stderr.String(), tc.code, tc.err)
			}
		})
	}
}

func TestValidateStdinAndFlagsAfterFiles(t *testing.T) {
	in := "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: p\n  namespace: lb\nspec:\n  addresses: [192.0.2.0/24]\n"
	var stdout, stderr bytes.Buffer
	if code := runValidate([]string{"-", "--namespace", "lb"}, strings.NewReader(in), &stdout, &stderr); code != 0 || stdout.String() != "1 object valid\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := runValidate([]string{"-"}, strings.NewReader(in), &stdout, &stderr); code != 1 || !strings.Contains(stdout.String(), "<stdin>:1: IPAddressPool/p: metadata.namespace") {
		t.Errorf("exit %d, stdout %q", code, stdout.String())
	}
}
