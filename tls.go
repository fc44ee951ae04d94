package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"nochat/db"
)

// hstsMaxAge is how long a browser that saw NoChat over HTTPS refuses to
// reach it over plain HTTP: a year, what HSTS checkers ask for. No
// includeSubDomains: NoChat speaks for its own name only.
const hstsMaxAge = "max-age=31536000"

// certCheckEvery is how often a handshake may look at the certificate
// files: often enough that a renewed pair is served within seconds, rarely
// enough that a handshake storm does not become a stat storm.
const certCheckEvery = time.Second

// tlsOn reports whether NoChat serves HTTPS itself.
func (c config) tlsOn() bool { return c.tlsCert != "" || len(c.acmeDomains) > 0 }

// httpsSetup is how NoChat serves HTTPS as cfg says: the listener's TLS
// configuration, and what the plain HTTP listener answers (a redirect, and
// with ACME the HTTP-01 challenge too).
type httpsSetup struct {
	tls      *tls.Config
	redirect func(fallback http.Handler) http.Handler
}

// newHTTPS prepares HTTPS: the certificate files, read now so a bad pair
// stops the start, or an ACME manager whose certificates live in store.
func newHTTPS(cfg config, store *db.Store, log *slog.Logger) (*httpsSetup, error) {
	// HTTP/1.1 only, as plain HTTP is today: WebSockets are upgraded by
	// taking over the connection, which HTTP/2 does not allow.
	conf := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	if cfg.tlsCert != "" {
		certs, err := newCertFiles(cfg.tlsCert, cfg.tlsKey, log)
		if err != nil {
			return nil, err
		}
		conf.GetCertificate = certs.getCertificate
		return &httpsSetup{tls: conf, redirect: func(h http.Handler) http.Handler { return h }}, nil
	}
	names := autocert.HostWhitelist(cfg.acmeDomains...)
	m := &autocert.Manager{
		Prompt: autocert.AcceptTOS,
		// The names, with or without a port: an HTTP-01 request's Host
		// carries one when the redirect listener is not on port 80.
		HostPolicy: func(ctx context.Context, host string) error {
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			return names(ctx, host)
		},
		Cache:  store.ACMECache(),
		Email:  cfg.acmeEmail,
		Client: &acme.Client{DirectoryURL: cfg.acmeCA, HTTPClient: cfg.acmeHTTPClient},
	}
	conf.GetCertificate = m.GetCertificate
	// TLS-ALPN-01: the CA asks for this protocol on port 443 and gets
	// autocert's challenge certificate.
	conf.NextProtos = append(conf.NextProtos, acme.ALPNProto)
	// HTTP-01: the CA asks the plain HTTP listener for a token.
	return &httpsSetup{tls: conf, redirect: m.HTTPHandler}, nil
}

// certFiles serves the certificate in a pair of PEM files, read again when
// either changes, so a renewed certificate (certbot, a cron job) is served
// without a restart.
type certFiles struct {
	certPath, keyPath string
	log               *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	certStat  os.FileInfo
	keyStat   os.FileInfo
	lastCheck time.Time
}

// newCertFiles reads the pair; an unreadable or mismatched pair is an error.
func newCertFiles(certPath, keyPath string, log *slog.Logger) (*certFiles, error) {
	c := &certFiles{certPath: certPath, keyPath: keyPath, log: log}
	certStat, keyStat, err := c.stat()
	if err == nil {
		c.certStat, c.keyStat = certStat, keyStat
		c.cert, err = c.load()
	}
	if err != nil {
		return nil, fmt.Errorf("-tls-cert %s, -tls-key %s: %w", certPath, keyPath, err)
	}
	c.lastCheck = time.Now()
	return c, nil
}

func (c *certFiles) stat() (cert, key os.FileInfo, err error) {
	if cert, err = os.Stat(c.certPath); err != nil {
		return nil, nil, err
	}
	if key, err = os.Stat(c.keyPath); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func (c *certFiles) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
	if err != nil {
		return nil, err
	}
	return &cert, nil
}

// getCertificate is the TLS configuration's GetCertificate: the latest
// good pair. A pair that changed but does not load (a half-written file, a
// key that is not the certificate's) is logged and the last good one kept;
// it is tried again when either file changes again.
func (c *certFiles) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.lastCheck) < certCheckEvery {
		return c.cert, nil
	}
	c.lastCheck = time.Now()
	certStat, keyStat, err := c.stat()
	if err != nil {
		c.log.Warn("TLS certificate files unreadable: serving the last good certificate", "cert", c.certPath, "key", c.keyPath, "err", err)
		return c.cert, nil
	}
	if sameFile(c.certStat, certStat) && sameFile(c.keyStat, keyStat) {
		return c.cert, nil
	}
	c.certStat, c.keyStat = certStat, keyStat
	cert, err := c.load()
	if err != nil {
		c.log.Warn("TLS certificate files changed but do not load: serving the last good certificate", "cert", c.certPath, "key", c.keyPath, "err", err)
		return c.cert, nil
	}
	c.cert = cert
	c.log.Info("TLS certificate reloaded", "cert", c.certPath)
	return c.cert, nil
}

// sameFile reports whether b is a as it was: the same file (a renewal
// often renames a new file into place), size and modification time.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// withHSTS tells browsers to reach NoChat over HTTPS only, on every answer.
func withHSTS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", hstsMaxAge)
		next.ServeHTTP(w, r)
	})
}

// redirectToHTTPS answers a plain HTTP request with 308 to the same host,
// path and query over HTTPS, on the port NoChat serves HTTPS on. 308 keeps
// the method, so a POST is not silently turned into a GET.
func redirectToHTTPS(httpsAddr net.Addr) http.Handler {
	port := ""
	if _, p, err := net.SplitHostPort(httpsAddr.String()); err == nil && p != "443" {
		port = p
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if host == "" {
			http.Error(w, "a Host header is needed to know where to redirect: use https://", http.StatusBadRequest)
			return
		}
		if port != "" || strings.Contains(host, ":") {
			host = net.JoinHostPort(host, port)
			host = strings.TrimSuffix(host, ":") // an IPv6 address on 443
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

// defaultRedirectAddr is where plain HTTP is redirected from when TLS is on
// and -http-redirect-addr is not given.
const defaultRedirectAddr = ":80"

// listenRedirect opens the plain HTTP listener that redirects to HTTPS, or
// none when it is off. The default port 80 may be closed to a normal user
// (a Pi's pi account): that is a warning, and HTTPS is served anyway; an
// address the admin chose that cannot be opened stops the start.
func listenRedirect(cfg config, log *slog.Logger) (net.Listener, error) {
	if cfg.httpRedirectAddr == "off" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.httpRedirectAddr)
	if err == nil {
		return ln, nil
	}
	if cfg.httpRedirectSet {
		return nil, fmt.Errorf("-http-redirect-addr %s: %w", cfg.httpRedirectAddr, err)
	}
	log.Warn("no redirect from plain HTTP to HTTPS: port 80 cannot be opened. Let nochat open it with sudo setcap cap_net_bind_service=+ep /path/to/nochat, set -http-redirect-addr to another address, or -http-redirect-addr off to silence this",
		"err", err)
	return nil, nil
}

// httpsURL is the address to open in a browser for NoChat on HTTPS: the
// ACME name when there is one (its certificate is for that name only).
func httpsURL(cfg config, a net.Addr) string {
	if len(cfg.acmeDomains) == 0 {
		return "https" + strings.TrimPrefix(browseURL(a), "http")
	}
	host := cfg.acmeDomains[0]
	if _, port, err := net.SplitHostPort(a.String()); err == nil && port != "443" {
		host = net.JoinHostPort(host, port)
	}
	return "https://" + host + "/"
}

// parseTLSFlags checks the HTTPS flags together: one way to get a
// certificate, and the redirect only with one.
func parseTLSFlags(cfg *config, domains string, set func(name string) bool) error {
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return errors.New("-tls-cert and -tls-key go together: give both files (the certificate chain and its private key, PEM), or neither")
	}
	for _, d := range strings.Split(domains, ",") {
		if d = strings.ToLower(strings.TrimSpace(d)); d == "" {
			continue
		}
		if len(d) > 253 || strings.ContainsAny(d, ":/[]@* ") || !strings.Contains(strings.Trim(d, "."), ".") || strings.HasSuffix(d, ".") || !isASCII(d) {
			return fmt.Errorf("-acme-domain %q: want a public DNS name like chat.example.org (no scheme, no port, no wildcard; an international name in its xn-- form)", d)
		}
		cfg.acmeDomains = append(cfg.acmeDomains, d)
	}
	if len(cfg.acmeDomains) > maxACMEDomains {
		return fmt.Errorf("-acme-domain: %d names, the most is %d", len(cfg.acmeDomains), maxACMEDomains)
	}
	if len(cfg.acmeDomains) > 0 && cfg.tlsCert != "" {
		return errors.New("-acme-domain and -tls-cert are two ways to get a certificate: give one of them")
	}
	if len(cfg.acmeDomains) == 0 {
		for _, name := range []string{"acme-ca", "acme-email"} {
			if set(name) {
				return fmt.Errorf("-%s is for -acme-domain, which is not given", name)
			}
		}
	}
	if u := cfg.acmeCA; !strings.HasPrefix(u, "https://") || len(u) <= len("https://") || strings.ContainsAny(u, " \t") {
		return fmt.Errorf("-acme-ca %q: want the https:// URL of an ACME directory, for example %s", u, autocert.DefaultACMEDirectory)
	}
	if e := cfg.acmeEmail; e != "" && (len(e) > 254 || !strings.Contains(e, "@") || strings.ContainsAny(e, " \t,<>")) {
		return fmt.Errorf("-acme-email %q: want one address, like admin@example.org", e)
	}
	if !cfg.tlsOn() && cfg.httpRedirectSet {
		return errors.New("-http-redirect-addr redirects plain HTTP to HTTPS: it needs -tls-cert and -tls-key, or -acme-domain")
	}
	if a := cfg.httpRedirectAddr; a != "off" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("-http-redirect-addr %q: want host:port, for example :80, or off", a)
		}
	}
	return nil
}

// maxACMEDomains bounds -acme-domain: each name is its own certificate,
// and a CA limits how many one account may get.
const maxACMEDomains = 100

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// serveRedirect serves the redirect listener until shutdown; its errors
// other than the shutdown are logged.
func serveRedirect(srv *http.Server, ln net.Listener, log *slog.Logger) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("redirect listener stopped", "err", err)
	}
}

// shutdownRedirect stops the redirect listener within ctx.
func shutdownRedirect(ctx context.Context, srv *http.Server) {
	if srv == nil {
		return
	}
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
	}
}
