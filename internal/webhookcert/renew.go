package webhookcert

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Keys of the Secret's data besides tls.crt and tls.key.
const (
	// CACertKey holds the CA bundle injected into the webhook configuration:
	// the CA that signs the serving certificate first, then, for a while
	// after a CA rotation, the previous CA, so replicas still serving a
	// certificate it signed stay trusted until they load the new one.
	CACertKey = "ca.crt"
	// CAPrivateKeyKey holds the key of the first CA in CACertKey.
	CAPrivateKeyKey = "ca.key"
)

// issueParams says what a valid serving certificate looks like and how long
// new certificates live.
type issueParams struct {
	dnsNames      []string
	caValidity    time.Duration
	certValidity  time.Duration
	refreshBefore time.Duration
}

// renewal is the outcome of checking the Secret's data.
type renewal struct {
	data   map[string][]byte // what the Secret should hold
	reason string            // why data differs from the input; "" if it does not
	due    time.Time         // when the first of the CA and serving certificate enters the refresh window
}

// renew checks the Secret's data at time now and replaces what is missing,
// malformed, mismatched or expiring: a new CA (which forces a new serving
// certificate), a new serving certificate signed by the kept CA, or only a
// pruned bundle. Keys it does not own are carried over.
func renew(data map[string][]byte, p issueParams, now time.Time) (renewal, error) {
	out := maps.Clone(data)
	if out == nil {
		out = map[string][]byte{}
	}
	var reasons []string

	ca, caErr := parseCA(data[CACertKey], data[CAPrivateKeyKey])
	if caErr == nil {
		caErr = ca.usable(now, p.refreshBefore)
	}
	if caErr != nil {
		next, err := newCA(now, p.caValidity)
		if err != nil {
			return renewal{}, err
		}
		bundle := next.certPEM
		if prev := previousCA(data[CACertKey], now); prev != nil {
			bundle = append(bundle, prev...)
		}
		out[CACertKey] = bundle
		out[CAPrivateKeyKey] = next.keyPEM
		reasons = append(reasons, fmt.Sprintf("new CA (%v)", caErr))
		ca = next
	} else if pruned, dropped := pruneBundle(data[CACertKey], now); dropped > 0 {
		out[CACertKey] = pruned
		reasons = append(reasons, fmt.Sprintf("dropped %d expired or extra CA certificate(s) from the bundle", dropped))
	}

	servErr := checkServing(ca.cert, data[corev1.TLSCertKey], data[corev1.TLSPrivateKeyKey], p.dnsNames, now, p.refreshBefore)
	if caErr != nil || servErr != nil {
		cert, key, err := ca.issue(p.dnsNames, now, p.certValidity)
		if err != nil {
			return renewal{}, err
		}
		out[corev1.TLSCertKey] = cert
		out[corev1.TLSPrivateKeyKey] = key
		if servErr != nil && caErr == nil {
			reasons = append(reasons, fmt.Sprintf("new serving certificate (%v)", servErr))
		}
	}

	leaf, err := parseCerts(out[corev1.TLSCertKey])
	if err != nil {
		return renewal{}, fmt.Errorf("serving certificate just checked or issued: %w", err)
	}
	expiry := ca.cert.NotAfter
	if leaf[0].NotAfter.Before(expiry) {
		expiry = leaf[0].NotAfter
	}
	due := expiry.Add(-p.refreshBefore)
	return renewal{data: out, reason: strings.Join(reasons, "; "), due: due}, nil
}

// previousCA returns, in PEM, the signing CA of an old bundle if it is
// still a CA that has not expired at now: certificates it signed may still
// be served for a moment, so it stays trusted next to its successor.
func previousCA(bundle []byte, now time.Time) []byte {
	block, _ := pem.Decode(bundle)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !cert.IsCA || !now.Before(cert.NotAfter) {
		return nil
	}
	return pem.EncodeToMemory(block)
}

// pruneBundle keeps the signing CA (the first certificate) and at most one
// previous CA that has not expired at now. It returns the bundle unchanged
// when nothing is dropped, so that well-formed data is never rewritten.
func pruneBundle(bundle []byte, now time.Time) ([]byte, int) {
	var kept []byte
	dropped, prevKept := 0, false
	for rest, i := bundle, 0; ; i++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if i == 0 {
			kept = pem.EncodeToMemory(block)
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if prevKept || block.Type != "CERTIFICATE" || err != nil || !now.Before(cert.NotAfter) {
			dropped++
			continue
		}
		kept = append(kept, pem.EncodeToMemory(block)...)
		prevKept = true
	}
	if dropped == 0 {
		return bundle, 0
	}
	return kept, dropped
}
