package configstate_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/configstate"
	"github.com/herald-lb/herald/internal/scheme"
	"github.com/herald-lb/herald/internal/testcluster"
)

// requests counts the API requests on ConfigurationStates, by verb.
type requests struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *requests) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		if strings.Contains(req.URL.Path, "/configurationstates") && req.URL.Query().Get("watch") != "true" {
			r.mu.Lock()
			r.n[req.Method]++
			r.mu.Unlock()
		}
		return rt.RoundTrip(req)
	})
}

func (r *requests) take() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.n
	r.n = map[string]int{}
	return out
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestWriter: the controller's and the speakers' one writer. Through a
// cache it sends nothing while the outcome is unchanged, one create or
// patch when it changes, says what is in force, and brings back an object
// that was deleted.
func TestWriter(t *testing.T) {
	c := testcluster.Start(t)
	sch, err := scheme.New()
	if err != nil {
		t.Fatal(err)
	}
	reqs := &requests{n: map[string]int{}}
	cfg := rest.CopyConfig(c.Config)
	cfg.Wrap(reqs.wrap)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ca, err := cache.New(cfg, cache.Options{Scheme: sch, ByObject: map[client.Object]cache.ByObject{
		&metallbv1beta1.ConfigurationState{}: {Label: labels.SelectorFromSet(labels.Set{configstate.LabelNodeName: "n1"})},
	}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ca.Start(ctx) }()
	if !ca.WaitForCacheSync(ctx) {
		t.Fatal("cache did not start")
	}
	cl, err := client.New(cfg, client.Options{Scheme: sch, Cache: &client.CacheOptions{Reader: ca}})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := client.New(c.Config, client.Options{Scheme: sch})
	if err != nil {
		t.Fatal(err)
	}
	w := configstate.Speaker(cl, "default", "n1")
	key := types.NamespacedName{Namespace: "default", Name: "speaker-n1"}
	if err := w.Write(ctx, config.Usable{Config: &config.Config{}}); err != nil { // starts the informer
		t.Fatal(err)
	}
	caughtUp(ctx, t, cl, direct, key)
	reqs.take()
	bad := config.Usable{Config: &config.Config{}, Problems: config.Problems{{Kind: config.KindIPAddressPool, Name: "p", Message: "broken"}},
		Left: []config.ObjectRef{{Kind: config.KindIPAddressPool, Name: "p"}}}
	steps := []struct {
		name   string
		u      config.Usable
		delete bool
		// API requests on ConfigurationStates, by method
		want   map[string]int
		result metallbv1beta1.ConfigurationResult
		reason string
	}{
		{"unchanged: nothing sent", config.Usable{Config: &config.Config{}}, false, map[string]int{}, metallbv1beta1.ConfigurationResultValid, configstate.ReasonOK},
		{"a problem: one patch", bad, false, map[string]int{"PATCH": 1}, metallbv1beta1.ConfigurationResultInvalid, configstate.ReasonError},
		{"same problem: nothing sent", bad, false, map[string]int{}, metallbv1beta1.ConfigurationResultInvalid, configstate.ReasonError},
		{"deleted: created again", bad, true, map[string]int{"POST": 1, "PATCH": 1}, metallbv1beta1.ConfigurationResultInvalid, configstate.ReasonError},
		{"fixed: one patch", config.Usable{Config: &config.Config{}}, false, map[string]int{"PATCH": 1}, metallbv1beta1.ConfigurationResultValid, configstate.ReasonOK},
	}
	for _, st := range steps {
		if st.delete {
			var cs metallbv1beta1.ConfigurationState
			if err := cl.Get(ctx, key, &cs); err != nil {
				t.Fatal(err)
			}
			if err := cl.Delete(ctx, &cs); err != nil {
				t.Fatal(err)
			}
			waitCache(ctx, t, cl, key, false)
			reqs.take()
		}
		if err := w.Write(ctx, st.u); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got := reqs.take()
		delete(got, "DELETE")
		if len(got) != len(st.want) {
			t.Errorf("%s: requests %v, want %v", st.name, got, st.want)
		}
		for m, n := range st.want {
			if got[m] != n {
				t.Errorf("%s: requests %v, want %v", st.name, got, st.want)
			}
		}
		waitCache(ctx, t, cl, key, true)
		var cs metallbv1beta1.ConfigurationState
		if err := direct.Get(ctx, key, &cs); err != nil {
			t.Fatal(err)
		}
		if cs.Status.Result != st.result || len(cs.Status.Conditions) != 1 || cs.Status.Conditions[0].Reason != st.reason ||
			cs.Status.Conditions[0].Type != configstate.ConditionSpeaker || cs.Labels[configstate.LabelComponentType] != "speaker" {
			t.Errorf("%s: state %+v labels %v", st.name, cs.Status, cs.Labels)
		}
		if st.result == metallbv1beta1.ConfigurationResultInvalid && !strings.Contains(cs.Status.Conditions[0].Message, "left out until fixed: IPAddressPool/p") {
			t.Errorf("%s: condition message %q does not say what is left out", st.name, cs.Status.Conditions[0].Message)
		}
		// The cache must see this write before the next step reads it.
		caughtUp(ctx, t, cl, direct, key)
	}

	// Another condition (a speaker's node without a cloud server) lives
	// beside the configuration's: one patch to set it, nothing when it is
	// unchanged or when the configuration's is written again, one to remove.
	cond := &metav1.Condition{Status: metav1.ConditionFalse, Reason: "NoCloudServer", Message: "no server"}
	for _, st := range []struct {
		name    string
		do      func() error
		patches int
		conds   int
	}{
		{"set", func() error { return w.SetCondition(ctx, "cloudServerFound", cond) }, 1, 2},
		{"same again", func() error { return w.SetCondition(ctx, "cloudServerFound", cond) }, 0, 2},
		{"configuration written", func() error { return w.Write(ctx, config.Usable{Config: &config.Config{}}) }, 0, 2},
		{"removed", func() error { return w.SetCondition(ctx, "cloudServerFound", nil) }, 1, 1},
	} {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := reqs.take(); got["PATCH"] != st.patches || len(got) > min(st.patches, 1) {
			t.Errorf("%s: requests %v, want %d patch", st.name, got, st.patches)
		}
		var cs metallbv1beta1.ConfigurationState
		if err := direct.Get(ctx, key, &cs); err != nil {
			t.Fatal(err)
		}
		if len(cs.Status.Conditions) != st.conds || cs.Status.Result != metallbv1beta1.ConfigurationResultValid {
			t.Errorf("%s: status %+v, want %d conditions, Valid", st.name, cs.Status, st.conds)
		}
		caughtUp(ctx, t, cl, direct, key)
	}
}

// caughtUp waits until the cache holds the API server's version of key.
func caughtUp(ctx context.Context, t *testing.T, cached, direct client.Client, key types.NamespacedName) {
	t.Helper()
	var want metallbv1beta1.ConfigurationState
	if err := direct.Get(ctx, key, &want); err != nil {
		t.Fatal(err)
	}
	for ctx.Err() == nil {
		var got metallbv1beta1.ConfigurationState
		if err := cached.Get(ctx, key, &got); err == nil && got.ResourceVersion == want.ResourceVersion {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the cache never caught up with %s at version %s", key, want.ResourceVersion)
}

// waitCache waits until the cache has (or no longer has) the object.
func waitCache(ctx context.Context, t *testing.T, cl client.Client, key types.NamespacedName, present bool) {
	t.Helper()
	for ctx.Err() == nil {
		var cs metallbv1beta1.ConfigurationState
		err := cl.Get(ctx, key, &cs)
		if (err == nil) == present {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("cache: %s present=%v never seen", key, present)
}
