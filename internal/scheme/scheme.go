// Package scheme builds the runtime scheme Herald's components share: the
// Kubernetes built-in types, the metallb.io API and Herald's own
// herald-lb.io API.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	heraldv1alpha1 "github.com/herald-lb/herald/api/v1alpha1"
	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	metallbv1beta2 "github.com/herald-lb/herald/api/v1beta2"
)

// New returns a scheme with the Kubernetes, metallb.io and herald-lb.io
// types.
func New() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, metallbv1beta1.AddToScheme, metallbv1beta2.AddToScheme, heraldv1alpha1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}
