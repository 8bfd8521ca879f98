package lab

import (
	"context"
	"net"
	"net/http"
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
	c := &http.Client{
		Timeout: ProbeTimeout,
		Transport: &http.Transport{
			Proxy:             nil,
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
				var c net.Conn
				err := inNetns(l.remote.ns, func() (err error) {
					var d net.Dialer
					c, err = d.DialContext(ctx, network, address)
					return err
				})
				return c, err
			},
		},
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &Probe{cancel: cancel}
	p.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			p.wg.Go(func() {
				s := Sample{Start: time.Now()}
				s.Node, s.Err = l.Get(ctx, c, addr, port)
				s.End = time.Now()
				if ctx.Err() != nil && s.Err != nil {
					return // cut short by Stop: says nothing about the network
				}
				p.mu.Lock()
				p.samples = append(p.samples, s)
				p.mu.Unlock()
			})
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	return p, nil
}
