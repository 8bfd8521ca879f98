package webhookcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// backdate moves NotBefore into the past so that a replica or API server
// whose clock is a little behind still accepts a certificate just issued.
const backdate = time.Hour

// authority is a parsed CA: the certificate that signs serving certificates
// and its private key.
type authority struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte // this CA alone, not the whole bundle
	keyPEM  []byte
}

// newCA generates a self-signed ECDSA P-256 CA valid from now for validity.
func newCA(now time.Time, validity time.Duration) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The timestamp tells generations apart when reading a bundle.
		Subject:               pkix.Name{CommonName: fmt.Sprintf("herald-webhook-ca@%d", now.Unix()), Organization: []string{"herald"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("sign CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key, certPEM: encodeCert(der), keyPEM: keyPEM}, nil
}

// issue signs a new serving certificate for dnsNames, valid from now for
// validity but never beyond the CA's own expiry. It returns the certificate
// and key in PEM.
func (a *authority) issue(dnsNames []string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(dnsNames) == 0 {
		return nil, nil, errors.New("issue serving certificate: no DNS names")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate serving key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(a.cert.NotAfter) {
		notAfter = a.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: dnsNames[0], Organization: []string{"herald"}},
		DNSNames:              dnsNames,
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign serving certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

// parseCA reads the CA that signs serving certificates: the first
// certificate of bundle, with its private key.
func parseCA(bundle, keyPEM []byte) (*authority, error) {
	certs, err := parseCerts(bundle)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	cert := certs[0]
	if !cert.IsCA {
		return nil, fmt.Errorf("CA certificate %q is not a CA", cert.Subject.CommonName)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("CA key does not match CA certificate %q", cert.Subject.CommonName)
	}
	block, _ := pem.Decode(bundle)
	return &authority{cert: cert, key: key, certPEM: pem.EncodeToMemory(block), keyPEM: keyPEM}, nil
}

// usable reports why the CA should be replaced: it is not valid now, or
// expires within refreshBefore. nil means keep it.
func (a *authority) usable(now time.Time, refreshBefore time.Duration) error {
	return checkWindow(a.cert, "CA certificate", now, refreshBefore)
}

// checkServing reports why the serving certificate should be reissued: it
// or its key is missing or malformed, the key does not match, it is not
// signed by ca, it lacks one of dnsNames, or it is not valid now or
// expires within refreshBefore. nil means keep it.
func checkServing(ca *x509.Certificate, certPEM, keyPEM []byte, dnsNames []string, now time.Time, refreshBefore time.Duration) error {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("serving key pair: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	if err := checkWindow(leaf, "serving certificate", now, refreshBefore); err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return fmt.Errorf("serving certificate does not verify against CA %q: %w", ca.Subject.CommonName, err)
	}
	for _, name := range dnsNames {
		if err := leaf.VerifyHostname(name); err != nil {
			return fmt.Errorf("serving certificate: %w", err)
		}
	}
	return nil
}

// checkWindow fails when cert is not yet valid, or when now+refreshBefore
// reaches its expiry: renewal happens ahead of time, never after.
func checkWindow(cert *x509.Certificate, what string, now time.Time, refreshBefore time.Duration) error {
	if now.Before(cert.NotBefore) {
		return fmt.Errorf("%s not valid before %s", what, cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if !now.Add(refreshBefore).Before(cert.NotAfter) {
		if !now.Before(cert.NotAfter) {
			return fmt.Errorf("%s expired at %s", what, cert.NotAfter.UTC().Format(time.RFC3339))
		}
		return fmt.Errorf("%s expires at %s, within the %s refresh window", what, cert.NotAfter.UTC().Format(time.RFC3339), refreshBefore)
	}
	return nil
}

// parseCerts decodes every CERTIFICATE block of a PEM bundle, in order.
func parseCerts(bundle []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// parseKey accepts the key encodings a person might put in the Secret by
// hand, not only the PKCS#8 this package writes.
func parseKey(keyPEM []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM private key found")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", key)
	}
	return signer, nil
}

// publicKeysEqual relies on every standard-library public key type having
// an Equal method.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// newSerial returns a random 128-bit serial number, as RFC 5280 asks for
// unpredictable serials of at most 20 octets.
func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return serial, nil
}
