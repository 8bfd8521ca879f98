package lab

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
)

// TestWithoutGone: a control plane that `herald lab-down` stopped first is
// not an error when the lab closes (TestRouterDown failed on it now and
// then, depending on when envtest reaped the killed kube-apiserver).
func TestWithoutGone(t *testing.T) {
	gone := fmt.Errorf("unable to signal for process kube-apiserver to stop: %w", syscall.ESRCH)
	real := errors.New("timeout waiting for process etcd to stop")
	tests := []struct {
		name string
		in   error
		want string
	}{
		{"nil", nil, ""},
		{"no such process", gone, ""},
		{"already finished", os.ErrProcessDone, ""},
		{"both gone", utilerrors.NewAggregate([]error{gone, os.ErrProcessDone}), ""},
		{"one gone, one real", utilerrors.NewAggregate([]error{gone, real}), real.Error()},
		{"real", real, real.Error()},
	}
	for _, tt := range tests {
		got := ""
		if err := withoutGone(tt.in); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s: withoutGone = %q, want %q", tt.name, got, tt.want)
		}
	}
}
