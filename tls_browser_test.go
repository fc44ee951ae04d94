package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserOverHTTPS: Chromium, trusting NoChat's certificate, follows
// plain HTTP's redirect to HTTPS, where the page is a secure context (what
// notifications and installable apps need) and chats over wss.
func TestBrowserOverHTTPS(t *testing.T) {
	dir := t.TempDir()
	pair := newCertPair(t, "browser")
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	replaceFile(t, certPath, pair.certPEM)
	replaceFile(t, keyPath, pair.keyPEM)
	// Chromium trusts this one key as it would a certificate from a
	// public CA: no interstitial, and a secure origin.
	spki := sha256.Sum256(pair.cert.RawSubjectPublicKeyInfo)
	browser := newBrowser(t, chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])))
	client := trusting(pair.cert)
	s := startServingWith(t, true, func(*server) *http.Client { return client }, func(ctx context.Context, stderr io.Writer) error {
		args := []string{"nochat", "-addr", "127.0.0.1:0", "-db", filepath.Join(dir, "chat.db"), "-tls-cert", certPath, "-tls-key", keyPath, "-http-redirect-addr", "127.0.0.1:0"}
		return run(ctx, args, func(string) string { return "" }, io.Discard, stderr)
	})
	resp, err := client.Post(s.url+"/discussion/"+url.PathEscape("history over HTTPS")+"?user=server", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST over HTTPS: %d", resp.StatusCode)
	}
	redirectAddr := logged(t, s, `redirecting plain HTTP to HTTPS" addr=(\S+)`)

	do(t, browser, chromedp.Navigate("http://"+redirectAddr+"/"))
	connected(t, browser)
	if got := eval[string](t, browser, `location.origin`); got != s.url {
		t.Fatalf("after the redirect the page is at %s, want %s", got, s.url)
	}
	if !eval[bool](t, browser, `window.isSecureContext`) {
		t.Fatal("the page over HTTPS is not a secure context")
	}
	waitMessages(t, browser, "the stored history", contains("history over HTTPS"))
	do(t, browser, chromedp.SendKeys(chromedp.ID("name"), "ann"))
	say(t, browser, "sent over wss")
	waitMessages(t, browser, "ann's message", contains("sent over wss"))
	resp, err = client.Get(s.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if html, _ := io.ReadAll(resp.Body); !strings.Contains(string(html), "sent over wss") {
		t.Fatal("the message sent over wss is not in the page the server renders")
	}
}
