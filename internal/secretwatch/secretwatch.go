// Package secretwatch reads Secrets by name, each through a watch of its
// own. RBAC can grant a Secret by name (resourceNames) for get, and for list
// and watch when the request selects that one name (a metadata.name field
// selector); it cannot grant Secrets by label or type. So a component that
// may read only the Secrets it needs cannot keep the usual informer on every
// Secret of its namespace: it keeps one small watch per name instead, and
// learns of changes to those Secrets without polling.
package secretwatch

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// firstListWait bounds how long Get waits for a new watch's first list
// before it reports the Secret as not read yet.
const firstListWait = 5 * time.Second

// Watcher reads the Secrets of one namespace by name. A name's watch starts
// on its first Get and runs until Stop: the names come from the
// configuration (BGPPeer password Secrets) and are few, so a name that is
// no longer used costs one idle watch until the process restarts.
type Watcher struct {
	client    kubernetes.Interface
	namespace string
	onChange  func()

	mu      sync.Mutex
	watches map[string]*watch
	stop    chan struct{}
	stopped bool
}

type watch struct {
	factory  informers.SharedInformerFactory
	informer cache.SharedIndexInformer

	mu  sync.Mutex
	err error // the last list or watch error
}

// New returns a Watcher of namespace's Secrets. onChange, if not nil, is
// called whenever a watched Secret is created, changed or deleted.
func New(c kubernetes.Interface, namespace string, onChange func()) *Watcher {
	if onChange == nil {
		onChange = func() {}
	}
	return &Watcher{client: c, namespace: namespace, onChange: onChange,
		watches: map[string]*watch{}, stop: make(chan struct{})}
}

// Get returns the named Secret from its watch, starting the watch on the
// first call for the name and waiting (up to ctx, and a few seconds) for
// its first list. The error is NotFound when the Secret does not exist, and
// the list's own error (Forbidden, say) while it cannot be read.
func (w *Watcher) Get(ctx context.Context, name string) (*corev1.Secret, error) {
	wt, err := w.watchFor(name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, firstListWait)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !wt.informer.HasSynced() {
		wt.mu.Lock()
		err := wt.err
		wt.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("secret %s/%s: %w", w.namespace, name, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("secret %s/%s: not read yet: %w", w.namespace, name, ctx.Err())
		case <-tick.C:
		}
	}
	obj, ok, err := wt.informer.GetStore().GetByKey(w.namespace + "/" + name)
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", w.namespace, name, err)
	}
	if !ok {
		return nil, apierrors.NewNotFound(corev1.Resource("secrets"), name)
	}
	return obj.(*corev1.Secret).DeepCopy(), nil
}

// watchFor returns the name's watch, starting it if needed.
func (w *Watcher) watchFor(name string) (*watch, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return nil, fmt.Errorf("secret %s/%s: the watcher is stopped", w.namespace, name)
	}
	if wt, ok := w.watches[name]; ok {
		return wt, nil
	}
	wt := &watch{}
	wt.factory = informers.NewSharedInformerFactoryWithOptions(w.client, 0,
		informers.WithNamespace(w.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}))
	wt.informer = wt.factory.Core().V1().Secrets().Informer()
	// Kept for Get instead of client-go's default, which logs every retry.
	if err := wt.informer.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		wt.mu.Lock()
		wt.err = err
		wt.mu.Unlock()
	}); err != nil {
		return nil, fmt.Errorf("watch secret %s/%s: %w", w.namespace, name, err)
	}
	notify := func(any) { w.onChange() }
	if _, err := wt.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: notify, UpdateFunc: func(any, any) { w.onChange() }, DeleteFunc: notify,
	}); err != nil {
		return nil, fmt.Errorf("watch secret %s/%s: %w", w.namespace, name, err)
	}
	wt.factory.Start(w.stop)
	w.watches[name] = wt
	return wt, nil
}

// Stop ends every watch; Get fails afterwards.
func (w *Watcher) Stop() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	close(w.stop)
	all := w.watches
	w.mu.Unlock()
	for _, wt := range all {
		wt.factory.Shutdown()
	}
}

// Start blocks until ctx ends, then stops the watches: a Watcher is a
// controller-runtime Runnable that every replica runs.
func (w *Watcher) Start(ctx context.Context) error {
	<-ctx.Done()
	w.Stop()
	return nil
}

// NeedLeaderElection is false: every replica reads Secrets.
func (w *Watcher) NeedLeaderElection() bool { return false }

// Client is a controller-runtime client whose reads of the Watcher's
// namespace's Secrets go through the Watcher, and everything else through
// the embedded client.
type Client struct {
	client.Client
	Secrets *Watcher
}

// Get implements client.Reader.
func (c Client) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	sec, ok := obj.(*corev1.Secret)
	if !ok || key.Namespace != c.Secrets.namespace {
		return c.Client.Get(ctx, key, obj, opts...)
	}
	got, err := c.Secrets.Get(ctx, key.Name)
	if err != nil {
		return err
	}
	got.DeepCopyInto(sec)
	return nil
}
