package speaker

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestKeyFromSecret(t *testing.T) {
	secrets := schema.GroupResource{Resource: "secrets"}
	empty := sha256.Sum256(nil)
	tests := []struct {
		name    string
		sec     *corev1.Secret
		readErr error
		want    []byte // nil: no key
		why     string // in the error when there is no key
	}{
		{"MetalLB's derivation: the secret, then SHA-256 of nothing, 32 bytes",
			&corev1.Secret{Data: map[string][]byte{"secretkey": []byte("abc")}}, nil,
			append([]byte("abc"), empty[:29]...), ""},
		{"a long secret is cut to 32 bytes",
			&corev1.Secret{Data: map[string][]byte{"secretkey": bytes.Repeat([]byte("k"), 40)}}, nil,
			bytes.Repeat([]byte("k"), 32), ""},
		{"not created yet", nil, apierrors.NewNotFound(secrets, "memberlist"),
			nil, "does not exist"},
		{"RBAC refuses it", nil, apierrors.NewForbidden(secrets, "memberlist", errors.New("no")),
			nil, "forbidden"},
		{"API trouble", nil, errors.New("connection refused"),
			nil, "connection refused"},
		{"no secretkey in it", &corev1.Secret{Data: map[string][]byte{"other": []byte("x")}}, nil,
			nil, `no key "secretkey"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := keyFromSecret(tt.sec, tt.readErr, "metallb-system/memberlist")
			if tt.want != nil {
				if err != nil || !bytes.Equal(key, tt.want) {
					t.Fatalf("key %q, %v; want %q", key, err, tt.want)
				}
				return
			}
			if key != nil || err == nil {
				t.Fatalf("key %q, %v; want no key and an error", key, err)
			}
			if !strings.Contains(err.Error(), tt.why) || !strings.Contains(err.Error(), "metallb-system/memberlist") {
				t.Errorf("error %q does not say %q about metallb-system/memberlist", err, tt.why)
			}
		})
	}
}

// TestLayer2WaitsForMembership: without memberlist (--ml-disabled) the
// speaker announces at once; with it, never before it has joined, which
// needs the key: alone in a cluster of its own it would elect itself for
// every address beside the real owners.
func TestLayer2WaitsForMembership(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want bool
	}{
		{"memberlist disabled", Options{MLDisabled: true}, true},
		{"memberlist on, not joined (no key yet)", Options{}, false},
		{"memberlist unencrypted, not joined yet", Options{MLUnencrypted: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &speaker{opts: tt.opts}
			if got := s.ready(); got != tt.want {
				t.Errorf("ready() = %v, want %v", got, tt.want)
			}
		})
	}
}
