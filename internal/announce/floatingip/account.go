package floatingip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/herald-lb/herald/internal/cloud"
	"github.com/herald-lb/herald/internal/config"
)

// accountKey names one cloud project: a provider and the Secret holding
// its token.
type accountKey struct {
	provider, secret, key string
}

func keyOf(ad *config.CloudAdvertisement) accountKey {
	return accountKey{provider: ad.Provider, secret: ad.TokenSecret, key: ad.TokenKey}
}

// account is one project's client, its request budget and what is known of
// its floating IPs.
type account struct {
	key      accountKey
	token    string
	provider cloud.Provider
	budget   *cloud.Budget

	mu         sync.Mutex
	fips       []cloud.FloatingIP
	listed     time.Time
	listFailed bool
}

// account returns the project of ad, with a client built from the token
// its Secret holds now (a changed token gets a new client).
func (a *Announcer) account(ctx context.Context, ad *config.CloudAdvertisement) (*account, error) {
	k := keyOf(ad)
	token, err := a.opts.Token(ctx, k.secret, k.key)
	if err != nil {
		return nil, fmt.Errorf("token Secret %s: %w", k.secret, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if acct := a.accounts[k]; acct != nil && acct.token == token {
		return acct, nil
	}
	budget := &cloud.Budget{}
	p, err := a.opts.NewProvider(k.provider, token, budget)
	if err != nil {
		return nil, err
	}
	acct := &account{key: k, token: token, provider: p, budget: budget}
	if prev := a.accounts[k]; prev != nil {
		// A new token for the same project: what is known of its floating
		// IPs stays, and the owners' next checks try the token.
		prev.mu.Lock()
		acct.fips, acct.listed = prev.fips, prev.listed
		prev.mu.Unlock()
	}
	a.accounts[k] = acct
	return acct, nil
}

// holding is the floating IP that holds addr. The project's list is read
// again only when no known IP holds it, at most once per every.
func (c *account) holding(ctx context.Context, addr netip.Addr, every time.Duration) (cloud.FloatingIP, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := prefixOf(c.fips, addr); ok {
		return f, nil
	}
	if c.listFailed {
		// The API failed: try again sooner, so a new owner moves the IP
		// soon after an outage ends.
		every /= 6
	}
	if !c.listed.IsZero() && time.Since(c.listed) < every {
		// No elapsed time in the message: a Service's problem Event is
		// raised once per distinct message.
		if c.listFailed {
			return cloud.FloatingIP{}, errors.New("the last list of the project's floating IPs failed; trying again shortly")
		}
		return cloud.FloatingIP{}, fmt.Errorf("none of the %d listed does", len(c.fips))
	}
	fips, err := c.provider.FloatingIPs(ctx)
	c.listed, c.listFailed = time.Now(), err != nil
	if err != nil {
		return cloud.FloatingIP{}, err
	}
	c.fips = fips
	if f, ok := prefixOf(c.fips, addr); ok {
		return f, nil
	}
	return cloud.FloatingIP{}, fmt.Errorf("none of its %d does", len(fips))
}
