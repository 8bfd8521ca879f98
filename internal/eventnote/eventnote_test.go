package eventnote_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/herald-lb/herald/internal/eventnote"
)

// sink is an events.EventRecorder that keeps what it is given.
type sink struct{ got []string }

func (s *sink) Eventf(_, _ runtime.Object, typ, reason, action, note string, args ...any) {
	s.got = append(s.got, fmt.Sprintf("%s %s %s %s", typ, reason, action, fmt.Sprintf(note, args...)))
}

func TestRecorder(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}}
	for _, tc := range []struct {
		name    string
		a, b    string // two messages with one reason
		sameKey bool   // the recorder may fold them into one series
	}{
		{"another node", `announcing from node "node1"`, `announcing from node "node2"`, false},
		{"another error", "unavailable (HTTP 503)", "rate_limit_exceeded (HTTP 429)", false},
		{"the same message again", "no pool has a free address", "no pool has a free address", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &sink{}
			r := eventnote.Recorder(s)
			r.Eventf(svc, nil, corev1.EventTypeWarning, "Reason", "Announce", "%s", tc.a)
			r.Eventf(svc, nil, corev1.EventTypeWarning, "Reason", "Announce", "%s", tc.b)
			keyA, keyB := eventnote.Action("Announce", tc.a), eventnote.Action("Announce", tc.b)
			if (keyA == keyB) != tc.sameKey {
				t.Errorf("actions %q and %q: same %v, want %v", keyA, keyB, keyA == keyB, tc.sameKey)
			}
			want := []string{"Warning Reason " + keyA + " " + tc.a, "Warning Reason " + keyB + " " + tc.b}
			if fmt.Sprint(s.got) != fmt.Sprint(want) {
				t.Errorf("recorded %q, want %q", s.got, want)
			}
		})
	}
}
