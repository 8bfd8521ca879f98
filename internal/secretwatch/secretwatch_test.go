package secretwatch

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/herald-lb/herald/internal/testcluster"
)

// TestWatcherUnderNamedRBAC reads Secrets as a ServiceAccount that may get,
// list and watch only some Secrets by name, as Herald's chart grants them:
// those are read and followed, any other is refused, and nothing needs the
// right to list every Secret.
func TestWatcherUnderNamedRBAC(t *testing.T) {
	c := testcluster.Start(t)
	ctx := context.Background()
	admin, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "metallb-system"
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	must(err)
	_, err = admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "named"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"},
			ResourceNames: []string{"granted", "later"}, Verbs: []string{"get", "list", "watch"}}},
	}, metav1.CreateOptions{})
	must(err)
	_, err = admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "named"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "named"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reader", Namespace: ns}},
	}, metav1.CreateOptions{})
	must(err)
	for _, name := range []string{"granted", "other"} {
		_, err = admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name},
			StringData: map[string]string{"v": "1"}}, metav1.CreateOptions{})
		must(err)
	}

	as := rest.CopyConfig(c.Config)
	as.Impersonate.UserName = "system:serviceaccount:" + ns + ":reader"
	cs, err := kubernetes.NewForConfig(as)
	if err != nil {
		t.Fatal(err)
	}
	var changes atomic.Int32
	w := New(cs, ns, func() { changes.Add(1) })
	defer w.Stop()

	read := func(name string) (string, error) {
		sec, err := w.Get(ctx, name)
		if err != nil {
			return "", err
		}
		return string(sec.Data["v"]), nil
	}
	for _, tc := range []struct {
		name, want string
		errIs      func(error) bool
	}{
		{"granted", "1", nil},
		{"other", "", apierrors.IsForbidden},
		{"later", "", apierrors.IsNotFound},
	} {
		got, err := read(tc.name)
		switch {
		case tc.errIs == nil && (err != nil || got != tc.want):
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		case tc.errIs != nil && !tc.errIs(err):
			t.Errorf("%s: %q, %v; want the error %T matches", tc.name, got, err, tc.errIs)
		}
	}

	// Changes to watched Secrets are signalled and read.
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	before := changes.Load()
	_, err = admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "later"},
		StringData: map[string]string{"v": "2"}}, metav1.CreateOptions{})
	must(err)
	waitFor("the creation of later signalled", func() bool { return changes.Load() > before })
	waitFor("later read", func() bool { v, err := read("later"); return err == nil && v == "2" })

	set := func(name, v string) {
		t.Helper()
		sec, err := admin.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		must(err)
		sec.Data["v"] = []byte(v)
		_, err = admin.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{})
		must(err)
	}
	before = changes.Load()
	set("granted", "3")
	waitFor("the update of granted signalled", func() bool { return changes.Load() > before })
	waitFor("granted read anew", func() bool { v, err := read("granted"); return err == nil && v == "3" })

	// An unrelated Secret changing signals nothing.
	before = changes.Load()
	set("other", "4")
	time.Sleep(500 * time.Millisecond)
	if n := changes.Load(); n != before {
		t.Errorf("a change to an unwatched Secret was signalled (%d signals)", n-before)
	}

	w.Stop()
	if _, err := w.Get(ctx, "granted"); err == nil {
		t.Error("Get after Stop succeeded")
	}
}
