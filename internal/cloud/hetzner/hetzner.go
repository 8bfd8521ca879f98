// Package hetzner is the cloud.Provider for Hetzner Cloud floating IPs,
// built on Hetzner's own client, hcloud-go. Retries are cloud.Owner's job,
// so the client's own retry loop is turned off: one policy, one count of
// requests against the project's hourly budget.
package hetzner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/herald-lb/herald/internal/cloud"
)

// ProviderIDPrefix starts the spec.providerID that Hetzner's cloud
// controller manager sets on a cloud server's node.
const ProviderIDPrefix = "hcloud://"

// Defaults for Options.
const (
	// DefaultPollInterval is hcloud-go's own: a running action is read
	// twice a second.
	DefaultPollInterval = 500 * time.Millisecond
	// DefaultRequestTimeout bounds one HTTP request; a hung API is then a
	// retryable network error instead of a stuck owner.
	DefaultRequestTimeout = 15 * time.Second
)

// Options configures a Provider.
type Options struct {
	Token string
	// Endpoint is the API's base URL; empty means Hetzner's.
	Endpoint string
	// PollInterval is the time between two reads of a running action.
	PollInterval   time.Duration
	RequestTimeout time.Duration
	// Budget receives every answer's rate-limit headers; may be nil.
	Budget *cloud.Budget
	// Version goes into the User-Agent.
	Version string
}

// Provider implements cloud.Provider with hcloud-go.
type Provider struct {
	client *hcloud.Client
	budget *cloud.Budget
}

var _ cloud.Provider = (*Provider)(nil)

// New returns a Provider.
func New(opts Options) (*Provider, error) {
	if opts.Token == "" {
		return nil, errors.New("hetzner: an API token is required")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	clientOpts := []hcloud.ClientOption{
		hcloud.WithToken(opts.Token),
		hcloud.WithApplication("herald", opts.Version),
		hcloud.WithHTTPClient(&http.Client{Timeout: opts.RequestTimeout}),
		hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}),
		hcloud.WithPollOpts(hcloud.PollOpts{BackoffFunc: hcloud.ConstantBackoff(opts.PollInterval)}),
	}
	if opts.Endpoint != "" {
		clientOpts = append(clientOpts, hcloud.WithEndpoint(opts.Endpoint))
	}
	return &Provider{client: hcloud.NewClient(clientOpts...), budget: opts.Budget}, nil
}

// FloatingIP implements cloud.Provider: id is the floating IP's ID, or its
// name.
func (p *Provider) FloatingIP(ctx context.Context, id string) (cloud.FloatingIP, error) {
	op := "get floating IP " + id
	var (
		fip  *hcloud.FloatingIP
		resp *hcloud.Response
		err  error
	)
	// GetByID or GetByName, not Get: for an ID that does not exist, Get
	// asks a second time by name, spending a request for nothing.
	if n, perr := strconv.ParseInt(id, 10, 64); perr == nil {
		fip, resp, err = p.client.FloatingIP.GetByID(ctx, n)
	} else {
		fip, resp, err = p.client.FloatingIP.GetByName(ctx, id)
	}
	p.observe(resp)
	if err != nil {
		return cloud.FloatingIP{}, apiError(op, resp, err)
	}
	if fip == nil {
		// hcloud-go turns not_found into a nil result.
		return cloud.FloatingIP{}, &cloud.APIError{Op: op, Code: cloud.CodeNotFound,
			Status: http.StatusNotFound, Err: errors.New("no such floating IP")}
	}
	return convert(op, fip)
}

// FloatingIPs implements cloud.Provider.
func (p *Provider) FloatingIPs(ctx context.Context) ([]cloud.FloatingIP, error) {
	fips, err := listAll(ctx, p, "list floating IPs", func(ctx context.Context, o hcloud.ListOpts) ([]*hcloud.FloatingIP, *hcloud.Response, error) {
		return p.client.FloatingIP.List(ctx, hcloud.FloatingIPListOpts{ListOpts: o})
	})
	if err != nil {
		return nil, err
	}
	out := make([]cloud.FloatingIP, 0, len(fips))
	for _, fip := range fips {
		f, err := convert("list floating IPs", fip)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// Servers implements cloud.Provider.
func (p *Provider) Servers(ctx context.Context) ([]cloud.Server, error) {
	servers, err := listAll(ctx, p, "list servers", func(ctx context.Context, o hcloud.ListOpts) ([]*hcloud.Server, *hcloud.Response, error) {
		return p.client.Server.List(ctx, hcloud.ServerListOpts{ListOpts: o})
	})
	if err != nil {
		return nil, err
	}
	out := make([]cloud.Server, 0, len(servers))
	for _, s := range servers {
		out = append(out, cloud.Server{ID: strconv.FormatInt(s.ID, 10), Name: s.Name})
	}
	return out, nil
}

// listAll reads every page of a list, 50 items per request (the API's
// maximum), each answer's rate-limit headers passed to the budget.
func listAll[T any](ctx context.Context, p *Provider, op string, list func(context.Context, hcloud.ListOpts) ([]T, *hcloud.Response, error)) ([]T, error) {
	var out []T
	for page := 1; page > 0; {
		items, resp, err := list(ctx, hcloud.ListOpts{Page: page, PerPage: 50})
		p.observe(resp)
		if err != nil {
			return nil, apiError(fmt.Sprintf("%s, page %d", op, page), resp, err)
		}
		out = append(out, items...)
		page = 0
		if resp != nil && resp.Meta.Pagination != nil {
			page = resp.Meta.Pagination.NextPage
		}
	}
	return out, nil
}

func convert(op string, fip *hcloud.FloatingIP) (cloud.FloatingIP, error) {
	out := cloud.FloatingIP{ID: strconv.FormatInt(fip.ID, 10)}
	if fip.Server != nil {
		out.Server = strconv.FormatInt(fip.Server.ID, 10)
	}
	var err error
	if out.Prefix, err = prefix(fip); err != nil {
		return cloud.FloatingIP{}, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

// prefix is the address of an IPv4 floating IP, or the network of an IPv6
// one, which moves as one.
func prefix(fip *hcloud.FloatingIP) (netip.Prefix, error) {
	if fip.Type == hcloud.FloatingIPTypeIPv6 && fip.Network != nil {
		addr, ok := netip.AddrFromSlice(fip.Network.IP)
		ones, _ := fip.Network.Mask.Size()
		if !ok {
			return netip.Prefix{}, fmt.Errorf("bad network %v", fip.Network)
		}
		return netip.PrefixFrom(addr.Unmap(), ones), nil
	}
	addr, ok := netip.AddrFromSlice(fip.IP)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("bad address %v", fip.IP)
	}
	addr = addr.Unmap()
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}

// Assign implements cloud.Provider: it sends the assign request, then
// follows its action with hcloud-go's Action.WaitFor until it succeeds or
// fails, or ctx ends.
func (p *Provider) Assign(ctx context.Context, id, server string) error {
	op := fmt.Sprintf("assign floating IP %s to server %s", id, server)
	fid, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return fmt.Errorf("%s: floating IP ID: %w", op, err)
	}
	sid, err := strconv.ParseInt(server, 10, 64)
	if err != nil {
		return fmt.Errorf("%s: server ID: %w", op, err)
	}
	action, resp, err := p.client.FloatingIP.Assign(ctx, &hcloud.FloatingIP{ID: fid}, &hcloud.Server{ID: sid})
	p.observe(resp)
	if err != nil {
		return apiError(op, resp, err)
	}
	if err := p.client.Action.WaitFor(ctx, action); err != nil {
		return apiError(fmt.Sprintf("%s: action %d", op, action.ID), nil, err)
	}
	return nil
}

// observe passes an answer's rate-limit headers, which hcloud-go parses
// into Response.Meta, to the budget.
func (p *Provider) observe(resp *hcloud.Response) {
	if resp == nil || resp.Response == nil {
		return
	}
	rl := resp.Meta.Ratelimit
	p.budget.Observe(cloud.RateLimit{Limit: rl.Limit, Remaining: rl.Remaining, Reset: rl.Reset})
}

// apiError turns hcloud-go's errors into *cloud.APIError, keeping the
// original. The end of ctx stays what it is: the caller's decision, not the
// API's.
func apiError(op string, resp *hcloud.Response, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	e := &cloud.APIError{Op: op, Err: err}
	if resp != nil && resp.Response != nil {
		e.Status = resp.StatusCode
	}
	var (
		herr   hcloud.Error
		actErr hcloud.ActionError
		netErr net.Error
	)
	switch {
	case errors.As(err, &herr):
		e.Code = string(herr.Code)
	case errors.As(err, &actErr):
		e.Code = actErr.Code
	case errors.Is(err, hcloud.ErrStatusCode) && e.Status != 0:
		// An answer without Hetzner's error body, from a proxy say.
		e.Code = "http_" + strconv.Itoa(e.Status)
	case errors.As(err, &netErr) || e.Status == 0:
		e.Code = cloud.CodeNetwork
	default:
		e.Code = "unknown_error"
	}
	return e
}
