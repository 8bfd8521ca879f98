package speaker

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/scheme"
	"github.com/herald-lb/herald/internal/testcluster"
)

// TestWriteStateReadsOnlyOnChange: the ConfigurationState is read from the
// API server (it is not cached) only when the outcome to record changes,
// not on every sync of every node; and the object says the outcome.
func TestWriteStateReadsOnlyOnChange(t *testing.T) {
	c := testcluster.Start(t)
	sch, err := scheme.New()
	if err != nil {
		t.Fatal(err)
	}
	real, err := client.NewWithWatch(c.Config, client.Options{Scheme: sch})
	if err != nil {
		t.Fatal(err)
	}
	var gets atomic.Int32
	counted := interceptor.NewClient(real, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			gets.Add(1)
			return c.Get(ctx, key, obj, opts...)
		},
	})
	s := &speaker{opts: Options{NodeName: "n1", Namespace: "default"}, client: counted, reader: counted, log: logr.Discard()}
	bad := config.Problems{{Message: "broken"}}
	tests := []struct {
		name     string
		problems config.Problems
		reads    int32
		want     metallbv1beta1.ConfigurationResult
	}{
		{"first sync: create", nil, 1, metallbv1beta1.ConfigurationResultValid},
		{"same outcome: no read", nil, 0, metallbv1beta1.ConfigurationResultValid},
		{"same outcome again: no read", nil, 0, metallbv1beta1.ConfigurationResultValid},
		{"outcome changes: read and update", bad, 1, metallbv1beta1.ConfigurationResultInvalid},
		{"same problems: no read", bad, 0, metallbv1beta1.ConfigurationResultInvalid},
		{"valid again", nil, 1, metallbv1beta1.ConfigurationResultValid},
	}
	ctx := context.Background()
	for _, tc := range tests {
		gets.Store(0)
		s.writeState(ctx, tc.problems)
		if n := gets.Load(); n != tc.reads {
			t.Errorf("%s: %d reads, want %d", tc.name, n, tc.reads)
		}
		var cs metallbv1beta1.ConfigurationState
		if err := real.Get(ctx, types.NamespacedName{Namespace: "default", Name: "speaker-n1"}, &cs); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if cs.Status.Result != tc.want {
			t.Errorf("%s: result %q, want %q", tc.name, cs.Status.Result, tc.want)
		}
	}
}
