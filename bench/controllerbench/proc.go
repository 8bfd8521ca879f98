package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/herald-lb/herald/bench/promtext"
)

// scrape reads the controller's /metrics.
func scrape(ctx context.Context, url string) (promtext.Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return promtext.Parse(resp.Body)
}
