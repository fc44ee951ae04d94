package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// certPair is a self-signed certificate for localhost and 127.0.0.1, with
// its key, as PEM.
type certPair struct {
	cert    *x509.Certificate
	certPEM []byte
	keyPEM  []byte
}

func newCertPair(t *testing.T, name string) certPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return certPair{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
}

// replaceFile puts data at path as a renewal does: written beside it, then
// renamed into place.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// trusting is an HTTPS client that trusts only certs and follows no
// redirect.
func trusting(certs ...*x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// logged is the first submatch of re in s's log, waiting a bounded time
// for it to appear.
func logged(t *testing.T, s *server, re string) string {
	t.Helper()
	r := regexp.MustCompile(re)
	var m []string
	waitUntil(t, 10*time.Second, "log line "+re, func() bool {
		m = r.FindStringSubmatch(s.logs.String())
		return m != nil
	})
	return m[1]
}

func TestHTTPSWithCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := newCertPair(t, "first")
	replaceFile(t, certPath, first.certPEM)
	replaceFile(t, keyPath, first.keyPEM)
	env := map[string]string{"NOCHAT_DB": filepath.Join(dir, "chat.db"), "NOCHAT_ADMIN_PASSWORD": "correct horse"}
	client := trusting(first.cert)
	s := startServingWith(t, true, func(*server) *http.Client { return client }, func(ctx context.Context, stderr io.Writer) error {
		args := []string{"nochat", "-addr", "127.0.0.1:0", "-tls-cert", certPath, "-tls-key", keyPath, "-http-redirect-addr", "127.0.0.1:0"}
		return run(ctx, args, func(k string) string { return env[k] }, io.Discard, stderr)
	})
	if !strings.HasPrefix(s.url, "https://") {
		t.Fatalf("serving URL %s, want https://", s.url)
	}

	t.Run("every answer carries HSTS", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/", "/no-such-page"} {
			resp, err := client.Get(s.url + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
				t.Errorf("GET %s (%d): Strict-Transport-Security %q, want max-age=31536000", path, resp.StatusCode, got)
			}
		}
	})

	t.Run("the session cookie is Secure", func(t *testing.T) {
		resp, err := client.PostForm(s.url+"/admin/login", url.Values{"password": {"correct horse"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var found bool
		for _, c := range resp.Cookies() {
			if c.Name == "nochat_admin" && c.MaxAge > 0 {
				found = true
				if !c.Secure {
					t.Errorf("admin cookie over HTTPS is not Secure: %s", c.String())
				}
			}
		}
		if !found {
			t.Fatalf("login: %d and no session cookie", resp.StatusCode)
		}
	})

	t.Run("plain HTTP is redirected to HTTPS", func(t *testing.T) {
		redirectAddr := logged(t, s, `redirecting plain HTTP to HTTPS" addr=(\S+)`)
		_, httpsPort, _ := net.SplitHostPort(strings.TrimPrefix(s.url, "https://"))
		for _, c := range []struct{ host, want string }{
			{redirectAddr, "https://127.0.0.1:" + httpsPort + "/rooms/general?after=5"},
			{"chat.example.org", "https://chat.example.org:" + httpsPort + "/rooms/general?after=5"},
			{"[::1]:80", "https://[::1]:" + httpsPort + "/rooms/general?after=5"},
		} {
			req, _ := http.NewRequest("GET", "http://"+redirectAddr+"/rooms/general?after=5", nil)
			req.Host = c.host
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != c.want {
				t.Errorf("Host %s: %d to %q, want 308 to %q", c.host, resp.StatusCode, resp.Header.Get("Location"), c.want)
			}
		}
	})

	// served is the certificate a new connection gets, trusting any.
	served := func() *x509.Certificate {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(s.url, "https://"), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}

	t.Run("a renewed pair is served without a restart", func(t *testing.T) {
		second := newCertPair(t, "second")
		replaceFile(t, keyPath, second.keyPEM)
		replaceFile(t, certPath, second.certPEM)
		waitUntil(t, 15*time.Second, "the new certificate", func() bool {
			return served().Equal(second.cert)
		})
		resp, err := trusting(second.cert).Get(s.url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()

		// A pair that does not load is logged, and the last good one kept.
		replaceFile(t, certPath, []byte("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"))
		waitUntil(t, 15*time.Second, "the bad pair logged", func() bool {
			served() // a handshake looks at the files
			return strings.Contains(s.logs.String(), "do not load: serving the last good certificate")
		})
		if !served().Equal(second.cert) {
			t.Fatal("after a bad pair, the last good certificate is not served")
		}
	})
}

func TestPlainHTTPHasNoHSTS(t *testing.T) {
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "chat.db")})
	resp, err := http.Get(s.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("plain HTTP sends Strict-Transport-Security %q", got)
	}
	if strings.Contains(s.logs.String(), "redirecting plain HTTP") {
		t.Error("plain HTTP opened a redirect listener")
	}
}

// TestRedirectPortClosedIsAWarning: the default :80 refused (a Pi's
// normal user) leaves HTTPS serving, with a warning saying what to do;
// stood in for by a port already taken, since the tests may run as root.
func TestRedirectPortClosedIsAWarning(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	pair := newCertPair(t, "pi")
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	replaceFile(t, certPath, pair.certPEM)
	replaceFile(t, keyPath, pair.keyPEM)
	client := trusting(pair.cert)
	s := startServingWith(t, true, func(*server) *http.Client { return client }, func(ctx context.Context, stderr io.Writer) error {
		args := []string{"nochat", "-addr", "127.0.0.1:0", "-db", filepath.Join(dir, "chat.db"), "-tls-cert", certPath, "-tls-key", keyPath}
		cfg, err := parseFlags(args, func(string) string { return "" }, stderr)
		if err != nil {
			return err
		}
		if cfg.httpRedirectSet || cfg.httpRedirectAddr != ":80" {
			t.Errorf("default redirect address %q (set %v), want :80 not set", cfg.httpRedirectAddr, cfg.httpRedirectSet)
		}
		cfg.httpRedirectAddr = taken.Addr().String() // the default, refused
		return serveConfig(ctx, cfg, stderr)
	})
	if log := s.logs.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "setcap cap_net_bind_service") {
		t.Errorf("no warning saying how to open port 80 in the log:\n%s", log)
	}
}

func TestHTTPSFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	good, other := newCertPair(t, "good"), newCertPair(t, "other")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		replaceFile(t, p, data)
		return p
	}
	cert, key := write("cert.pem", good.certPEM), write("key.pem", good.keyPEM)
	otherKey := write("other.key", other.keyPEM)
	garbage := write("garbage.pem", []byte("not PEM at all"))
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"a certificate without its key", []string{"-tls-cert", cert}, nil, "-tls-cert and -tls-key go together"},
		{"a key without its certificate", []string{"-tls-key", key}, nil, "-tls-cert and -tls-key go together"},
		{"a key from the environment alone", nil, map[string]string{"NOCHAT_TLS_KEY": key}, "-tls-cert and -tls-key go together"},
		{"files and ACME at once", []string{"-tls-cert", cert, "-tls-key", key, "-acme-domain", "chat.example.org"}, nil, "two ways to get a certificate"},
		{"an ACME name with a port", []string{"-acme-domain", "chat.example.org:443"}, nil, `-acme-domain "chat.example.org:443"`},
		{"an ACME name with a scheme", []string{"-acme-domain", "https://chat.example.org"}, nil, "-acme-domain"},
		{"an ACME name that is not public", []string{"-acme-domain", "raspberrypi"}, nil, `-acme-domain "raspberrypi"`},
		{"a wildcard ACME name", []string{"-acme-domain", "*.example.org"}, nil, "no wildcard"},
		{"an ACME directory over plain HTTP", []string{"-acme-domain", "chat.example.org", "-acme-ca", "http://ca.example.org/dir"}, nil, "-acme-ca"},
		{"an ACME e-mail without ACME", []string{"-acme-email", "me@example.org"}, nil, "-acme-email is for -acme-domain"},
		{"a bad ACME e-mail", []string{"-acme-domain", "chat.example.org", "-acme-email", "me"}, nil, "-acme-email"},
		{"a redirect without TLS", []string{"-http-redirect-addr", ":8081"}, nil, "-http-redirect-addr redirects plain HTTP to HTTPS"},
		{"a redirect address without a port", []string{"-tls-cert", cert, "-tls-key", key, "-http-redirect-addr", "80"}, nil, "-http-redirect-addr"},
		{"a certificate file that is not one", []string{"-tls-cert", garbage, "-tls-key", key}, nil, "-tls-cert " + garbage},
		{"a key that is not the certificate's", []string{"-tls-cert", cert, "-tls-key", otherKey}, nil, "private key does not match public key"},
		{"a missing certificate file", []string{"-tls-cert", filepath.Join(dir, "missing.pem"), "-tls-key", key}, nil, "missing.pem"},
		{"a redirect address the admin chose that is taken", []string{"-tls-cert", cert, "-tls-key", key, "-http-redirect-addr", taken.Addr().String()}, nil, "-http-redirect-addr " + taken.Addr().String()},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"nochat", "-addr", "127.0.0.1:0", "-db", filepath.Join(t.TempDir(), "chat.db")}, c.args...)
			var stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, args, func(k string) string { return c.env[k] }, io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("run %q: %v, want an error containing %q", c.args, err, c.want)
			}
		})
	}
}

// TestHTTPSWebSocketsLeaveTheHTTPCount: a WebSocket over HTTPS is taken
// out of -max-http-conns-per-ip's count as one over plain HTTP is (it
// counts under -max-conns-per-ip), though the server sees it as a TLS
// connection wrapping the counted one.
func TestHTTPSWebSocketsLeaveTheHTTPCount(t *testing.T) {
	dir := t.TempDir()
	pair := newCertPair(t, "ws")
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	replaceFile(t, certPath, pair.certPEM)
	replaceFile(t, keyPath, pair.keyPEM)
	client := trusting(pair.cert)
	client.Transport.(*http.Transport).DisableKeepAlives = true // no idle connection counted
	s := startServingWith(t, true, func(*server) *http.Client { return client }, func(ctx context.Context, stderr io.Writer) error {
		args := []string{"nochat", "-addr", "127.0.0.1:0", "-db", filepath.Join(dir, "chat.db"), "-tls-cert", certPath, "-tls-key", keyPath, "-http-redirect-addr", "off", "-max-http-conns-per-ip", "2"}
		return run(ctx, args, func(string) string { return "" }, io.Discard, stderr)
	})
	pool := x509.NewCertPool()
	pool.AddCert(pair.cert)
	d := websocket.Dialer{Subprotocols: []string{"nochat.v1"}, HandshakeTimeout: 5 * time.Second, TLSClientConfig: &tls.Config{RootCAs: pool}}
	for i := range 3 {
		conn, _, err := d.Dial(wsURL(s.url)+"?user=ann", nil)
		if err != nil {
			t.Fatalf("WebSocket %d of 3 with 2 HTTP connections allowed: %v", i+1, err)
		}
		defer conn.Close()
		var hello struct{ Type string }
		if err := conn.ReadJSON(&hello); err != nil || hello.Type != "hello" {
			t.Fatalf("WebSocket %d: %+v, %v; want hello", i+1, hello, err)
		}
	}
	resp, err := client.Get(s.url + "/healthz")
	if err != nil {
		t.Fatalf("HTTP beside 3 WebSockets: %v", err)
	}
	resp.Body.Close()
}

// TestHTTPSConnectionCapAnswers429: over HTTPS a connection past
// -max-http-conns-per-ip is answered 429 once its handshake is done, as
// over plain HTTP. The answer was written on the bare socket, which a
// browser showed as a broken handshake (ERR_SSL_PROTOCOL_ERROR).
func TestHTTPSConnectionCapAnswers429(t *testing.T) {
	const client = "127.0.0.4" // nothing else comes from it
	dir := t.TempDir()
	pair := newCertPair(t, "cap")
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	replaceFile(t, certPath, pair.certPEM)
	replaceFile(t, keyPath, pair.keyPEM)
	s := startServingWith(t, true, func(*server) *http.Client { return trusting(pair.cert) }, func(ctx context.Context, stderr io.Writer) error {
		args := []string{"nochat", "-addr", "127.0.0.1:0", "-db", filepath.Join(dir, "chat.db"), "-tls-cert", certPath, "-tls-key", keyPath, "-http-redirect-addr", "off", "-max-http-conns-per-ip", "2"}
		return run(ctx, args, func(string) string { return "" }, io.Discard, stderr)
	})
	addr := strings.TrimPrefix(s.url, "https://")
	for range 2 {
		c, err := fromAddr(client).Dial("tcp", addr)
		if err != nil {
			t.Skipf("cannot dial from %s: %v", client, err)
		}
		defer c.Close()
	}
	pool := x509.NewCertPool()
	pool.AddCert(pair.cert)
	browser := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext:     fromAddr(client).DialContext,
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
	resp, err := browser.Get(s.url + "/healthz")
	if err != nil {
		t.Fatalf("a third connection over HTTPS with 2 allowed: %v; want a 429", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "-max-http-conns-per-ip") {
		t.Fatalf("a third connection over HTTPS with 2 allowed: %d %q; want 429 naming -max-http-conns-per-ip", resp.StatusCode, body)
	}
}
