package webhookcert

import (
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestRenew(t *testing.T) {
	now := time.Now()
	const day = 24 * time.Hour
	p := issueParams{dnsNames: testNames, caValidity: 365 * day, certValidity: 90 * day, refreshBefore: 30 * day}

	// secret builds Secret data from a CA bundle (signing CA first) and a
	// serving pair.
	secret := func(bundle []*authority, cert, key []byte) map[string][]byte {
		data := map[string][]byte{"unrelated": []byte("kept")}
		var pemBundle []byte
		for _, ca := range bundle {
			pemBundle = append(pemBundle, ca.certPEM...)
		}
		if pemBundle != nil {
			data[CACertKey] = pemBundle
			data[CAPrivateKeyKey] = bundle[0].keyPEM
		}
		if cert != nil {
			data[corev1.TLSCertKey] = cert
			data[corev1.TLSPrivateKeyKey] = key
		}
		return data
	}
	ca := mustCA(t, now.Add(-day), p.caValidity)
	good, goodKey := mustIssue(t, ca, testNames, now.Add(-day), p.certValidity)
	expiringCA := mustCA(t, now.Add(-350*day), p.caValidity)
	signedByExpiring, signedByExpiringKey := mustIssue(t, expiringCA, testNames, now.Add(-day), p.certValidity)
	expiredCA := mustCA(t, now.Add(-400*day), p.caValidity)
	signedByExpired, signedByExpiredKey := mustIssue(t, expiredCA, testNames, now.Add(-400*day), p.certValidity)
	previousCA := mustCA(t, now.Add(-300*day), p.caValidity)
	signedByPrevious, signedByPreviousKey := mustIssue(t, previousCA, testNames, now.Add(-day), p.certValidity)
	expiringCert, expiringCertKey := mustIssue(t, ca, testNames, now.Add(-80*day), p.certValidity)
	wrongNames, wrongNamesKey := mustIssue(t, ca, []string{"other.herald-system.svc"}, now.Add(-day), p.certValidity)

	tests := []struct {
		name       string
		data       map[string][]byte
		wantReason bool
		newCA      bool
		newCert    bool
		bundle     int  // certificates in ca.crt after renewal
		keepsOld   bool // the old signing CA is still in the bundle
	}{
		{name: "empty", data: nil, wantReason: true, newCA: true, newCert: true, bundle: 1},
		{name: "valid", data: secret([]*authority{ca}, good, goodKey), bundle: 1},
		{name: "valid, previous CA kept", data: secret([]*authority{ca, previousCA}, good, goodKey), bundle: 2},
		{name: "serving certificate expiring", data: secret([]*authority{ca}, expiringCert, expiringCertKey), wantReason: true, newCert: true, bundle: 1},
		{name: "serving certificate for other names", data: secret([]*authority{ca}, wrongNames, wrongNamesKey), wantReason: true, newCert: true, bundle: 1},
		{name: "serving certificate missing", data: secret([]*authority{ca}, nil, nil), wantReason: true, newCert: true, bundle: 1},
		{name: "serving key mismatched", data: secret([]*authority{ca}, good, wrongNamesKey), wantReason: true, newCert: true, bundle: 1},
		{name: "serving certificate signed by previous CA", data: secret([]*authority{ca, previousCA}, signedByPrevious, signedByPreviousKey), wantReason: true, newCert: true, bundle: 2},
		{name: "CA expiring: old CA stays trusted", data: secret([]*authority{expiringCA}, signedByExpiring, signedByExpiringKey), wantReason: true, newCA: true, newCert: true, bundle: 2, keepsOld: true},
		{name: "CA expired: old CA dropped", data: secret([]*authority{expiredCA}, signedByExpired, signedByExpiredKey), wantReason: true, newCA: true, newCert: true, bundle: 1},
		{name: "CA missing", data: secret(nil, good, goodKey), wantReason: true, newCA: true, newCert: true, bundle: 1},
		{
			name: "CA key missing: old CA stays trusted",
			data: func() map[string][]byte {
				d := secret([]*authority{ca}, good, goodKey)
				delete(d, CAPrivateKeyKey)
				return d
			}(),
			wantReason: true, newCA: true, newCert: true, bundle: 2, keepsOld: true,
		},
		{name: "expired previous CA pruned", data: secret([]*authority{ca, expiredCA}, good, goodKey), wantReason: true, bundle: 1},
		{name: "second previous CA pruned", data: secret([]*authority{ca, previousCA, expiringCA}, good, goodKey), wantReason: true, bundle: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renew(tt.data, p, now)
			if err != nil {
				t.Fatalf("renew: %v", err)
			}
			if (got.reason != "") != tt.wantReason {
				t.Errorf("reason = %q, want a reason: %v", got.reason, tt.wantReason)
			}
			if got.reason == "" && !maps.EqualFunc(got.data, tt.data, slices.Equal) {
				t.Error("data changed without a reason")
			}
			if tt.data != nil && string(got.data["unrelated"]) != "kept" {
				t.Error("unrelated key not carried over")
			}

			// Whatever happened, the result must be valid material.
			signer, err := parseCA(got.data[CACertKey], got.data[CAPrivateKeyKey])
			if err != nil {
				t.Fatalf("result CA: %v", err)
			}
			if err := signer.usable(now, p.refreshBefore); err != nil {
				t.Errorf("result CA: %v", err)
			}
			if err := checkServing(signer.cert, got.data[corev1.TLSCertKey], got.data[corev1.TLSPrivateKeyKey], testNames, now, p.refreshBefore); err != nil {
				t.Errorf("result serving certificate: %v", err)
			}

			bundle, err := parseCerts(got.data[CACertKey])
			if err != nil {
				t.Fatalf("result bundle: %v", err)
			}
			if len(bundle) != tt.bundle {
				t.Errorf("bundle has %d certificates, want %d", len(bundle), tt.bundle)
			}
			if tt.data[CACertKey] != nil {
				oldSigner := mustParseCert(t, tt.data[CACertKey])
				if gotNew := !signer.cert.Equal(oldSigner); gotNew != tt.newCA {
					t.Errorf("new CA = %v, want %v", gotNew, tt.newCA)
				}
				if kept := slices.ContainsFunc(bundle, oldSigner.Equal); kept != (tt.keepsOld || !tt.newCA) {
					t.Errorf("old signing CA in bundle = %v, want %v", kept, tt.keepsOld || !tt.newCA)
				}
			}
			if tt.data[corev1.TLSCertKey] != nil {
				if gotNew := !slices.Equal(got.data[corev1.TLSCertKey], tt.data[corev1.TLSCertKey]); gotNew != tt.newCert {
					t.Errorf("new serving certificate = %v, want %v", gotNew, tt.newCert)
				}
			}

			leaf := mustParseCert(t, got.data[corev1.TLSCertKey])
			wantDue := leaf.NotAfter
			if signer.cert.NotAfter.Before(wantDue) {
				wantDue = signer.cert.NotAfter
			}
			if wantDue = wantDue.Add(-p.refreshBefore); !got.due.Equal(wantDue) {
				t.Errorf("due = %s, want %s", got.due, wantDue)
			}
		})
	}
}

// A serving certificate's renewal is due when the CA's is, if the CA
// expires first.
func TestRenewDueFollowsCA(t *testing.T) {
	now := time.Now()
	p := issueParams{dnsNames: testNames, caValidity: 10 * time.Hour, certValidity: 24 * time.Hour, refreshBefore: time.Hour}
	got, err := renew(nil, p, now)
	if err != nil {
		t.Fatal(err)
	}
	ca := mustParseCert(t, got.data[CACertKey])
	if want := ca.NotAfter.Add(-time.Hour); !got.due.Equal(want) {
		t.Errorf("due = %s, want CA expiry minus refresh %s", got.due, want)
	}
	again, err := renew(got.data, p, now.Add(8*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if again.reason != "" {
		t.Errorf("renewed before due: %s", again.reason)
	}
	again, err = renew(got.data, p, got.due)
	if err != nil {
		t.Fatal(err)
	}
	if again.reason == "" {
		t.Error("not renewed when due")
	}
}
