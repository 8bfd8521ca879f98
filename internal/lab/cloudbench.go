package lab

import (
	"context"
	"net/netip"
	"time"
)

// ProbeFromRemote is Probe from the remote client behind the router: a
// request to http://addr:port/ every interval, each on a new connection
// and with ProbeTimeout, until Stop. A cloud's floating IP reaches the
// nodes only through the router, so this is the client's view of a move
// (the cloud benchmark's failover).
func (l *Lab) ProbeFromRemote(ctx context.Context, addr netip.Addr, port int, every time.Duration) (*Probe, error) {
	if l.remote == nil {
		return nil, errNoRouter
	}
	return l.probeWith(ctx, httpClientIn(l.remote.ns, ProbeTimeout), addr, port, every), nil
}
