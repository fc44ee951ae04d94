package cluster

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"
)

// routeName is the name every node's route certificate carries and every
// node checks for: nodes are known by the certificate authority that signed
// them, not by their addresses, which change (DHCP, a replaced Pi).
const routeName = "routes.nochat-cluster"

// validFrom and validTo bound every route certificate: for all time, as
// RFC 5280 allows. What revokes a node is a new secret, and a certificate
// lives only as long as its node's process; a bound in time would only
// make a Pi whose clock is wrong (no real-time clock, before NTP answers)
// refuse its peers.
var (
	validFrom = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	validTo   = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// routeTLS is the TLS configuration of the routes between embedded nodes,
// made from the cluster's secret, so that TLS needs nothing more than the
// secret every node already has:
//
//   - the cluster's certificate authority has a key derived from the
//     secret and the cluster's name (HKDF, then an Ed25519 seed), so every
//     node holding the secret has the same authority, and no one else;
//   - each node makes a key of its own at every start and signs its
//     certificate with that authority;
//   - each side of a route asks for the other's certificate and accepts
//     only one the authority signed (mutual TLS 1.3).
//
// So the chat crosses the network encrypted, and a machine without the
// secret can neither read a route nor pose as a node, even one that could
// place itself between two nodes. The routes' user and password stay, as
// a second lock.
func routeTLS(secret, clusterName, node string) (*tls.Config, error) {
	seed, err := hkdf.Key(sha256.New, []byte(secret), nil, "nochat cluster route authority v1 "+clusterName, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("route TLS: %w", err)
	}
	caKey := ed25519.NewKeyFromSeed(seed)
	// Fixed fields, so every node makes the same certificate; only its
	// key matters to the check.
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "NoChat cluster " + clusterName},
		NotBefore:             validFrom,
		NotAfter:              validTo,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(nil, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("route TLS authority: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("route TLS authority: %w", err)
	}

	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("route TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("route TLS serial: %w", err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: node},
		DNSNames:     []string{routeName},
		NotBefore:    validFrom,
		NotAfter:     validTo,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, pub, caKey)
	if err != nil {
		return nil, fmt.Errorf("route TLS certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ServerName:   routeName,
		MinVersion:   tls.VersionTLS13,
	}, nil
}
