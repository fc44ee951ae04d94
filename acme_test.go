package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	pebbledb "github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"

	"nochat/db"
)

// acmeDomain is the name NoChat gets a certificate for in these tests. The
// test's DNS server resolves it to 127.0.0.1 for the CA; the test's clients
// dial NoChat directly.
const acmeDomain = "chat.nochat.test"

// startDNS is a DNS server on loopback TCP (pebble's validation authority
// asks over TCP) that resolves name to 127.0.0.1 and knows nothing else:
// no AAAA, no CAA (which allows any CA).
func startDNS(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qu := range q.Question {
			if qu.Qtype == dns.TypeA && strings.EqualFold(qu.Name, dns.Fqdn(name)) {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: qu.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

// pebbleCA is Let's Encrypt's test ACME server, pebble, run in the test:
// its directory on a loopback HTTPS listener, its validation authority
// dialing NoChat's ports. It answers only once start knows those ports
// (NoChat tells them after it starts, and asks for a certificate only on
// the first handshake).
type pebbleCA struct {
	srv     *httptest.Server
	handler atomic.Pointer[http.Handler]
	root    *x509.Certificate // the root NoChat's certificates chain to
	logs    *syncBuffer
}

func newPebble(t *testing.T) *pebbleCA {
	t.Helper()
	p := &pebbleCA{logs: &syncBuffer{}}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := p.handler.Load()
		if h == nil {
			http.Error(w, "pebble is not started yet", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	}))
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	return p
}

// directory is the ACME directory URL.
func (p *pebbleCA) directory() string { return p.srv.URL + wfe.DirectoryPath }

// start runs pebble's CA, validation authority and front end, validating
// HTTP-01 on httpPort and TLS-ALPN-01 on tlsPort with names resolved by
// the DNS server at dnsAddr.
func (p *pebbleCA) start(t *testing.T, httpPort, tlsPort int, dnsAddr string) {
	t.Helper()
	// No random waits before a validation, and no nonces refused for
	// practice: the test is about NoChat, not about retries.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	logger := log.New(p.logs, "pebble ", 0)
	store := pebbledb.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "the default profile"}})
	validator := va.New(logger, httpPort, tlsPort, false, dnsAddr, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	p.root = authority.GetRootCert(0).Cert
	h := front.Handler()
	p.handler.Store(&h)
}

// deadPort is a loopback port nothing listens on: the challenge the test
// does not want answered is sent there.
func deadPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// acmeClient reaches NoChat at addr under acmeDomain, trusting only root.
func acmeClient(addr string, root *x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
			DisableKeepAlives: true,
		},
		Timeout: 30 * time.Second,
	}
}

// startACME runs NoChat with -acme-domain against the pebble at p, with
// dbPath and the redirect listener at redirect ("off" for none). Once
// NoChat listens, ready starts pebble with its ports (or does nothing, for
// a NoChat that must not need the CA); startACME returns when NoChat
// serves /healthz with a certificate chaining to pebble's root, and a
// client that trusts only that root.
func startACME(t *testing.T, p *pebbleCA, dbPath, redirect string, ready func(httpsPort, redirectPort int)) (*server, *http.Client) {
	t.Helper()
	var client *http.Client
	s := startServingWith(t, true, func(s *server) *http.Client {
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("NoChat's log:\n%s\npebble's log:\n%s", s.logs, p.logs)
			}
		})
		host, port, err := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(s.url, "https://"), "/"))
		if err != nil || host != acmeDomain {
			t.Fatalf("serving URL %s, want https://%s:PORT", s.url, acmeDomain)
		}
		httpsPort, _ := strconv.Atoi(port)
		redirectPort := 0
		if redirect != "off" {
			_, rp, _ := net.SplitHostPort(logged(t, s, `redirecting plain HTTP to HTTPS" addr=(\S+)`))
			redirectPort, _ = strconv.Atoi(rp)
		}
		ready(httpsPort, redirectPort)
		client = acmeClient(net.JoinHostPort("127.0.0.1", port), p.root)
		// The first handshake makes NoChat get the certificate, in a few
		// rounds with the CA; the handshake may give up before it has it.
		var lastErr error
		waitUntil(t, 90*time.Second, "NoChat serving a certificate from pebble", func() bool {
			resp, err := client.Get(s.url + "/healthz")
			if err == nil {
				resp.Body.Close()
				return true
			}
			if lastErr == nil || err.Error() != lastErr.Error() {
				t.Logf("healthz, while NoChat gets its certificate: %v", err)
			}
			lastErr = err
			return false
		})
		return client
	}, func(ctx context.Context, stderr io.Writer) error {
		args := []string{"nochat", "-addr", "127.0.0.1:0", "-db", dbPath, "-acme-domain", acmeDomain, "-acme-ca", p.directory(), "-http-redirect-addr", redirect}
		cfg, err := parseFlags(args, func(string) string { return "" }, stderr)
		if err != nil {
			return err
		}
		// The one hook for tests: an HTTP client for the CA that trusts
		// the test directory's TLS certificate.
		cfg.acmeHTTPClient = p.srv.Client()
		return serveConfig(ctx, cfg, stderr)
	})
	return s, client
}

// cachedKeys is what the database holds in the ACME cache.
func cachedKeys(t *testing.T, dbPath string) []string {
	t.Helper()
	store, err := db.Open(context.Background(), dbPath, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys, err := store.ACMECache().Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// verifiedLeaf asks NoChat for /healthz and returns the certificate it
// served, which the client verified for acmeDomain up to root.
func verifiedLeaf(t *testing.T, client *http.Client, s *server, root *x509.Certificate) *x509.Certificate {
	t.Helper()
	resp, err := client.Get(s.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
		t.Fatalf("healthz over the ACME certificate: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	if len(resp.TLS.VerifiedChains) == 0 {
		t.Fatal("no verified chain")
	}
	if chain := resp.TLS.VerifiedChains[0]; !chain[len(chain)-1].Equal(root) {
		t.Fatalf("chain ends at %s, not at pebble's root", chain[len(chain)-1].Subject)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if !slices.Contains(leaf.DNSNames, acmeDomain) || leaf.Issuer.String() == leaf.Subject.String() {
		t.Fatalf("certificate for %q issued by %s, want one for %s from pebble", leaf.DNSNames, leaf.Issuer, acmeDomain)
	}
	return leaf
}

func TestACMEWithTLSALPN01(t *testing.T) {
	dnsAddr := startDNS(t, acmeDomain)
	p := newPebble(t)
	dbPath := filepath.Join(t.TempDir(), "chat.db")
	// No redirect listener, and HTTP-01 sent to a dead port: only
	// TLS-ALPN-01, on NoChat's HTTPS port, can succeed.
	s, client := startACME(t, p, dbPath, "off", func(httpsPort, _ int) {
		p.start(t, deadPort(t), httpsPort, dnsAddr)
	})
	leaf := verifiedLeaf(t, client, s, p.root)
	if !strings.Contains(p.logs.String(), "set VALID by completed challenge") {
		t.Error("pebble did not log a validated challenge")
	}
	// The ACME name is a name NoChat answers to (no -allow-host needed).
	resp, err := client.Get(s.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the chat page under %s: %d, want 200", acmeDomain, resp.StatusCode)
	}
	s.shutdown(t)

	// The certificate and the account key are in the database.
	keys := cachedKeys(t, dbPath)
	if !slices.Contains(keys, acmeDomain) || !slices.Contains(keys, "acme_account+key") {
		t.Fatalf("ACME cache in the database holds %q, want %s and acme_account+key", keys, acmeDomain)
	}

	// With the CA gone, a restart on the same database serves the same
	// certificate: it came from the database, not from the CA.
	p.srv.Close()
	s, client = startACME(t, p, dbPath, "off", func(int, int) {})
	if got := verifiedLeaf(t, client, s, p.root); !got.Equal(leaf) {
		t.Fatalf("after a restart, certificate serial %s, want the stored %s", got.SerialNumber, leaf.SerialNumber)
	}
}

func TestACMEWithHTTP01(t *testing.T) {
	dnsAddr := startDNS(t, acmeDomain)
	p := newPebble(t)
	dbPath := filepath.Join(t.TempDir(), "chat.db")
	// TLS-ALPN-01 sent to a dead port: NoChat must fall back to HTTP-01,
	// answered on its redirect listener.
	var redirectPort int
	s, client := startACME(t, p, dbPath, "127.0.0.1:0", func(_, rp int) {
		redirectPort = rp
		p.start(t, rp, deadPort(t), dnsAddr)
	})
	verifiedLeaf(t, client, s, p.root)
	if !strings.Contains(p.logs.String(), "Attempting to validate w/ HTTP") {
		t.Error("pebble did not validate over HTTP-01")
	}

	// Beside the challenge, the redirect listener redirects.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	req, _ := http.NewRequest("GET", "http://127.0.0.1:"+strconv.Itoa(redirectPort)+"/?room=general", nil)
	req.Host = acmeDomain
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := strings.TrimSuffix(s.url, "/") + "/?room=general"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP: %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}
