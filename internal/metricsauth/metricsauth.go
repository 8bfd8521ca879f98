// Package metricsauth says how Herald's components serve /metrics: over
// HTTPS with a self-signed certificate, to callers the API server
// authenticates (TokenReview) and authorizes for GET on the /metrics URL
// (SubjectAccessReview), with controller-runtime's metrics filter; or, when
// asked, over plain HTTP to anyone (the lab, where nothing else can reach).
//
// Authenticated serving needs create on tokenreviews
// (authentication.k8s.io) and subjectaccessreviews (authorization.k8s.io)
// for the component, and get on the non-resource URL /metrics for the
// scraper; the chart grants both.
package metricsauth

import (
	"crypto/tls"

	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Options returns the metrics server options for addr ("0" disables).
func Options(addr string, secure bool) metricsserver.Options {
	o := metricsserver.Options{BindAddress: addr}
	if !secure {
		return o
	}
	o.SecureServing = true
	o.FilterProvider = filters.WithAuthenticationAndAuthorization
	o.TLSOpts = []func(*tls.Config){func(c *tls.Config) {
		c.MinVersion = tls.VersionTLS12
		// HTTP/1.1 only: a scrape needs nothing more, and HTTP/2 has had
		// stream-flood denials of service (CVE-2023-44487).
		c.NextProtos = []string{"http/1.1"}
	}}
	return o
}
