package layer2

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"

	"github.com/herald-lb/herald/internal/arp"
	"github.com/herald-lb/herald/internal/ndp"
)

// responder answers for the addresses of one family on one interface.
type responder interface {
	Run(ctx context.Context) error
	SetAddresses(addrs []netip.Addr)
	Announce(addr netip.Addr)
	AnnounceAll()
	Close() error
}

// hooks are the callbacks the responders report through.
type hooks struct {
	conflict   func(iface string, addr netip.Addr, mac net.HardwareAddr)
	request    func(addr netip.Addr)
	reply      func(addr netip.Addr)
	gratuitous func(addr netip.Addr)
}

// responders keeps one ARP and one NDP responder per interface in use,
// created when an interface first gets an address and kept while it runs.
type responders struct {
	ctx   context.Context
	log   *slog.Logger
	hooks hooks

	mu      sync.Mutex
	running map[string]responder // "arp/eth0", "ndp/eth0"
	wg      sync.WaitGroup
}

func newResponders(ctx context.Context, log *slog.Logger, h hooks) *responders {
	return &responders{ctx: ctx, log: log, hooks: h, running: map[string]responder{}}
}

// set makes each interface answer for exactly the given addresses; every
// other responder answers for none.
func (r *responders) set(want map[string][]netip.Addr) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	byKey := map[string][]netip.Addr{}
	for ifname, addrs := range want {
		for _, a := range addrs {
			fam := "arp"
			if a.Is6() {
				fam = "ndp"
			}
			k := fam + "/" + ifname
			byKey[k] = append(byKey[k], a)
		}
	}
	var errs []error
	for k, addrs := range byKey {
		sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
		resp, ok := r.running[k]
		if !ok {
			var err error
			resp, err = r.start(k)
			if err != nil {
				errs = append(errs, err)
				continue
			}
		}
		resp.SetAddresses(addrs)
	}
	for k, resp := range r.running {
		if _, keep := byKey[k]; !keep {
			resp.SetAddresses(nil)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("responders: %v", errs)
	}
	return nil
}

func (r *responders) start(key string) (responder, error) {
	fam, ifname := key[:3], key[4:]
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	var resp responder
	onConflict := func(a netip.Addr, mac net.HardwareAddr) { r.hooks.conflict(ifname, a, mac) }
	switch fam {
	case "arp":
		resp, err = arp.NewResponder(arp.Options{Interface: ifi, Logger: r.log,
			OnConflict: onConflict, OnRequest: r.hooks.request, OnReply: r.hooks.reply, OnGratuitous: r.hooks.gratuitous})
	default:
		resp, err = ndp.NewResponder(ndp.Options{Interface: ifi, Logger: r.log,
			OnConflict: onConflict, OnRequest: r.hooks.request, OnReply: r.hooks.reply, OnGratuitous: r.hooks.gratuitous})
	}
	if err != nil {
		return nil, fmt.Errorf("%s responder on %s: %w", fam, ifname, err)
	}
	r.running[key] = resp
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := resp.Run(r.ctx); err != nil && r.ctx.Err() == nil {
			r.log.Error("responder stopped", "responder", key, "error", err)
			r.mu.Lock()
			delete(r.running, key)
			r.mu.Unlock()
		}
	}()
	return resp, nil
}

// announceAll sends a fresh gratuitous burst for every address answered,
// on every interface.
func (r *responders) announceAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, resp := range r.running {
		resp.AnnounceAll()
	}
}

// announce sends a fresh gratuitous burst for addr on ifname, if answered
// there.
func (r *responders) announce(ifname string, addr netip.Addr) {
	fam := "arp"
	if addr.Is6() {
		fam = "ndp"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if resp, ok := r.running[fam+"/"+ifname]; ok {
		resp.Announce(addr)
	}
}

// close stops every responder.
func (r *responders) close() {
	r.mu.Lock()
	for _, resp := range r.running {
		resp.SetAddresses(nil)
		_ = resp.Close()
	}
	r.running = map[string]responder{}
	r.mu.Unlock()
	r.wg.Wait()
}
