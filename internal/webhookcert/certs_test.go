package webhookcert

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"
)

var testNames = []string{"herald-webhook-service.herald-system.svc", "herald-webhook-service.herald-system.svc.cluster.local"}

func mustCA(t *testing.T, now time.Time, validity time.Duration) *authority {
	t.Helper()
	ca, err := newCA(now, validity)
	if err != nil {
		t.Fatalf("newCA: %v", err)
	}
	return ca
}

func mustIssue(t *testing.T, ca *authority, names []string, now time.Time, validity time.Duration) (cert, key []byte) {
	t.Helper()
	cert, key, err := ca.issue(names, now, validity)
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	return cert, key
}

func mustParseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	certs, err := parseCerts(certPEM)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return certs[0]
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("got error %v, want none", err)
	case want != "" && err == nil:
		t.Errorf("got no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("got error %v, want one containing %q", err, want)
	}
}

func TestIssue(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name         string
		caValidity   time.Duration
		certValidity time.Duration
		wantLifetime time.Duration // NotAfter - now, to the second
	}{
		{name: "within CA lifetime", caValidity: 48 * time.Hour, certValidity: 24 * time.Hour, wantLifetime: 24 * time.Hour},
		{name: "capped at CA expiry", caValidity: time.Hour, certValidity: 24 * time.Hour, wantLifetime: time.Hour},
		{name: "seconds", caValidity: time.Minute, certValidity: 3 * time.Second, wantLifetime: 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := mustCA(t, now, tt.caValidity)
			if !ca.cert.IsCA || ca.cert.KeyUsage&x509.KeyUsageCertSign == 0 {
				t.Errorf("CA: IsCA=%v KeyUsage=%v, want a signing CA", ca.cert.IsCA, ca.cert.KeyUsage)
			}
			if _, ok := ca.cert.PublicKey.(*ecdsa.PublicKey); !ok {
				t.Errorf("CA key is %T, want ECDSA", ca.cert.PublicKey)
			}
			certPEM, keyPEM := mustIssue(t, ca, testNames, now, tt.certValidity)
			leaf := mustParseCert(t, certPEM)
			if !slices.Equal(leaf.DNSNames, testNames) {
				t.Errorf("DNSNames = %v, want %v", leaf.DNSNames, testNames)
			}
			if leaf.IsCA {
				t.Error("serving certificate is a CA")
			}
			if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
				t.Errorf("ExtKeyUsage = %v, want server auth only", leaf.ExtKeyUsage)
			}
			if got := leaf.NotAfter.Sub(now.Truncate(time.Second)).Round(time.Second); got != tt.wantLifetime {
				t.Errorf("lifetime = %s, want %s", got, tt.wantLifetime)
			}
			if leaf.NotAfter.After(ca.cert.NotAfter) {
				t.Errorf("serving certificate outlives its CA: %s > %s", leaf.NotAfter, ca.cert.NotAfter)
			}
			if err := checkServing(ca.cert, certPEM, keyPEM, testNames, now, 0); err != nil {
				t.Errorf("fresh certificate does not check: %v", err)
			}
		})
	}
	if _, _, err := mustCA(t, now, time.Hour).issue(nil, now, time.Hour); err == nil {
		t.Error("issue with no DNS names: got no error")
	}
}

func TestCheckServing(t *testing.T) {
	now := time.Now()
	ca := mustCA(t, now.Add(-24*time.Hour), 365*24*time.Hour)
	other := mustCA(t, now.Add(-24*time.Hour), 365*24*time.Hour)
	good, goodKey := mustIssue(t, ca, testNames, now, 30*24*time.Hour)
	_, strayKey := mustIssue(t, ca, testNames, now, 30*24*time.Hour)
	short, shortKey := mustIssue(t, ca, testNames, now, 2*time.Hour)
	old, oldKey := mustIssue(t, ca, testNames, now.Add(-10*24*time.Hour), 24*time.Hour)
	future, futureKey := mustIssue(t, ca, testNames, now.Add(3*time.Hour), 30*24*time.Hour)
	oneName, oneNameKey := mustIssue(t, ca, testNames[:1], now, 30*24*time.Hour)
	foreign, foreignKey := mustIssue(t, other, testNames, now, 30*24*time.Hour)

	tests := []struct {
		name      string
		cert, key []byte
		refresh   time.Duration
		want      string // substring of the error; "" for none
	}{
		{name: "valid", cert: good, key: goodKey, refresh: 24 * time.Hour},
		{name: "valid, no refresh window", cert: short, key: shortKey},
		{name: "expiring within refresh window", cert: short, key: shortKey, refresh: 24 * time.Hour, want: "refresh window"},
		{name: "expired", cert: old, key: oldKey, want: "expired"},
		{name: "not yet valid", cert: future, key: futureKey, want: "not valid before"},
		{name: "missing a DNS name", cert: oneName, key: oneNameKey, want: testNames[1]},
		{name: "signed by another CA", cert: foreign, key: foreignKey, want: "does not verify"},
		{name: "key of another certificate", cert: good, key: strayKey, want: "key pair"},
		{name: "no certificate", key: goodKey, want: "key pair"},
		{name: "no key", cert: good, want: "key pair"},
		{name: "garbage", cert: []byte("not PEM"), key: []byte("not PEM"), want: "key pair"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, checkServing(ca.cert, tt.cert, tt.key, testNames, now, tt.refresh), tt.want)
		})
	}
}

func TestParseCA(t *testing.T) {
	now := time.Now()
	ca := mustCA(t, now, 24*time.Hour)
	other := mustCA(t, now, 24*time.Hour)
	leaf, leafKey := mustIssue(t, ca, testNames, now, time.Hour)
	sec1, err := x509.MarshalECPrivateKey(ca.key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	sec1PEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})

	tests := []struct {
		name   string
		bundle []byte
		key    []byte
		want   string
	}{
		{name: "valid", bundle: ca.certPEM, key: ca.keyPEM},
		{name: "SEC1 key accepted", bundle: ca.certPEM, key: sec1PEM},
		{name: "signing CA first in a bundle", bundle: append(slices.Clone(ca.certPEM), other.certPEM...), key: ca.keyPEM},
		{name: "signing CA second in a bundle", bundle: append(slices.Clone(other.certPEM), ca.certPEM...), key: ca.keyPEM, want: "does not match"},
		{name: "key of another CA", bundle: ca.certPEM, key: other.keyPEM, want: "does not match"},
		{name: "not a CA", bundle: leaf, key: leafKey, want: "not a CA"},
		{name: "no certificate", key: ca.keyPEM, want: "no PEM certificate"},
		{name: "no key", bundle: ca.certPEM, want: "no PEM private key"},
		{name: "unknown key block", bundle: ca.certPEM, key: pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: []byte{1}}), want: "unsupported"},
		{name: "corrupt certificate", bundle: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), key: ca.keyPEM, want: "CA certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCA(tt.bundle, tt.key)
			checkErr(t, err, tt.want)
			if err == nil && !got.cert.Equal(ca.cert) {
				t.Errorf("parsed CA %q, want %q", got.cert.Subject.CommonName, ca.cert.Subject.CommonName)
			}
			if err == nil && string(got.certPEM) != string(ca.certPEM) {
				t.Errorf("certPEM holds more than the signing CA:\n%s", got.certPEM)
			}
		})
	}
}

func TestCAUsable(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name     string
		issuedAt time.Time
		validity time.Duration
		refresh  time.Duration
		want     string
	}{
		{name: "fresh", issuedAt: now, validity: 365 * 24 * time.Hour, refresh: 30 * 24 * time.Hour},
		{name: "inside refresh window", issuedAt: now.Add(-350 * 24 * time.Hour), validity: 365 * 24 * time.Hour, refresh: 30 * 24 * time.Hour, want: "refresh window"},
		{name: "expired", issuedAt: now.Add(-2 * 365 * 24 * time.Hour), validity: 365 * 24 * time.Hour, want: "expired"},
		{name: "not yet valid", issuedAt: now.Add(2 * time.Hour), validity: 24 * time.Hour, want: "not valid before"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, mustCA(t, tt.issuedAt, tt.validity).usable(now, tt.refresh), tt.want)
		})
	}
}
