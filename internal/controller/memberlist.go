package controller

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// MetalLB's memberlist Secret: the speakers encrypt their gossip with a key
// derived from it. Same name and format, so an existing one is reused.
const (
	MemberlistSecretName = "memberlist"
	MemberlistSecretKey  = "secretkey"
)

// memberlistSecret creates the speakers' memberlist Secret when it is
// missing. It never rotates an existing one: every speaker would have to
// switch at the same moment.
type memberlistSecret struct {
	client    client.Client
	namespace string
	log       logr.Logger
}

func (m *memberlistSecret) NeedLeaderElection() bool { return true }

func (m *memberlistSecret) Start(ctx context.Context) error {
	for {
		err := m.ensure(ctx)
		if err == nil {
			return nil
		}
		m.log.Error(err, "memberlist secret")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
		}
	}
}

func (m *memberlistSecret) ensure(ctx context.Context) error {
	var s corev1.Secret
	err := m.client.Get(ctx, types.NamespacedName{Namespace: m.namespace, Name: MemberlistSecretName}, &s)
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("read secret %s/%s: %w", m.namespace, MemberlistSecretName, err)
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	s = corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: m.namespace, Name: MemberlistSecretName,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "herald"}},
		Data: map[string][]byte{MemberlistSecretKey: []byte(base64.RawStdEncoding.EncodeToString(b))},
	}
	if err := m.client.Create(ctx, &s); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create secret %s/%s: %w", m.namespace, MemberlistSecretName, err)
	}
	m.log.Info("created the speakers' memberlist secret", "secret", m.namespace+"/"+MemberlistSecretName)
	return nil
}
