// Package eventnote keeps Events with the same reason but different
// messages apart. client-go's events recorder folds an Event into an
// earlier one of the same object, reason and action (an "isomorphic" one,
// for about 6 minutes) by counting it in the earlier one's series and
// keeping the earlier message: "announcing from node1" would stay on a
// Service announced from node2 since, and a rate limit would read as the
// outage before it. Herald raises each Event once per change, so every
// distinct message is news; the recorder here puts a digest of the message
// in the action, and repeats of one message still form a series.
package eventnote

import (
	"fmt"
	"hash/fnv"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
)

// Recorder wraps r.
func Recorder(r events.EventRecorder) events.EventRecorder { return recorder{r} }

type recorder struct{ events.EventRecorder }

// Eventf records the Event with action "<action>-<digest of the message>".
func (r recorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	msg := note
	if len(args) > 0 {
		msg = fmt.Sprintf(note, args...)
	}
	r.EventRecorder.Eventf(regarding, related, eventtype, reason, Action(action, msg), "%s", msg)
}

// Action is the action Recorder records for a message.
func Action(action, msg string) string {
	h := fnv.New32a()
	h.Write([]byte(msg))
	return fmt.Sprintf("%s-%08x", action, h.Sum32())
}
