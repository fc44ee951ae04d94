package handlers_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"nochat/static"
)

// Security headers on every kind of response, a Content-Security-Policy the
// page really lives within, and no way out of the embedded static files.

// csp parses a Content-Security-Policy into its directives.
func csp(t *testing.T, header string) map[string][]string {
	t.Helper()
	if header == "" {
		t.Fatal("no Content-Security-Policy")
	}
	d := make(map[string][]string)
	for _, part := range strings.Split(header, ";") {
		fields := strings.Fields(part)
		if len(fields) == 0 {
			continue
		}
		name := strings.ToLower(fields[0])
		if _, dup := d[name]; dup {
			t.Fatalf("directive %s given twice in %q (browsers ignore the second)", name, header)
		}
		d[name] = fields[1:]
	}
	return d
}

// sources returns the sources a fetch directive allows, falling back to
// default-src as browsers do.
func sources(d map[string][]string, name string) []string {
	if s, ok := d[name]; ok {
		return s
	}
	return d["default-src"]
}

func TestContentSecurityPolicyOfThePage(t *testing.T) {
	a := newApp(t)
	a.send(t, "hello")
	r := a.do(t, "GET", "/", "")
	if r.status != http.StatusOK {
		t.Fatalf("page: %d", r.status)
	}
	d := csp(t, r.header.Get("Content-Security-Policy"))

	// Scripts only from this server: no inline script, no eval, no other
	// origin, so injected markup cannot run.
	script := sources(d, "script-src")
	if len(script) == 0 {
		t.Fatal("no script-src or default-src: any script may run")
	}
	for _, s := range script {
		if s != "'self'" && !strings.HasPrefix(s, "'nonce-") && !strings.HasPrefix(s, "'sha256-") {
			t.Errorf("script-src allows %s; want only 'self' (or nonces and hashes)", s)
		}
	}
	for _, name := range []string{"style-src", "img-src", "font-src", "object-src", "frame-src", "worker-src", "manifest-src", "media-src"} {
		for _, s := range sources(d, name) {
			switch {
			case s == "'unsafe-inline'" || s == "'unsafe-eval'" || s == "*" || s == "http:" || s == "https:":
				t.Errorf("%s allows %s", name, s)
			case s == "data:" && name != "img-src" && name != "font-src":
				t.Errorf("%s allows data:", name)
			}
		}
	}
	// The page's WebSocket goes back to the host that served it: 'self'
	// covers ws: and wss: to the same host (CSP Level 3); a wildcard would
	// let injected code send anywhere.
	connect := sources(d, "connect-src")
	if !contains(connect, "'self'") {
		t.Errorf("connect-src %q does not allow the page's own WebSocket ('self')", connect)
	}
	for _, s := range connect {
		if s == "*" || s == "ws:" || s == "wss:" || s == "http:" || s == "https:" {
			t.Errorf("connect-src allows %s: any host", s)
		}
	}
	// No framing (clickjacking), no <base> hijack, forms post only here.
	if got := d["frame-ancestors"]; len(got) != 1 || (got[0] != "'none'" && got[0] != "'self'") {
		t.Errorf("frame-ancestors %q, want 'none' or 'self'", got)
	}
	if got := d["base-uri"]; len(got) != 1 || (got[0] != "'none'" && got[0] != "'self'") {
		t.Errorf("base-uri %q, want 'none' or 'self'", got)
	}
	if got := d["form-action"]; len(got) == 0 || slicesAny(got, func(s string) bool { return s != "'self'" && s != "'none'" }) {
		t.Errorf("form-action %q, want 'self'", got)
	}

	// The page lives within that policy: all its script is external and
	// same-origin, it has no inline handlers, styles or javascript: URLs.
	html := r.body
	scripts := regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`).FindAllStringSubmatch(html, -1)
	if len(scripts) == 0 {
		t.Fatal("the page loads no script")
	}
	for _, s := range scripts {
		src := regexp.MustCompile(`\bsrc="([^"]*)"`).FindStringSubmatch(s[1])
		if src == nil || strings.TrimSpace(s[2]) != "" {
			t.Errorf("inline script: %s", s[0])
			continue
		}
		if !strings.HasPrefix(src[1], "/") || strings.HasPrefix(src[1], "//") {
			t.Errorf("script from another origin: %s", src[1])
		}
	}
	if m := regexp.MustCompile(`(?i)<[a-z][^>]*\son[a-z]+\s*=`).FindString(html); m != "" {
		t.Errorf("inline event handler: %s", m)
	}
	if m := regexp.MustCompile(`(?i)<[a-z][^>]*\sstyle\s*=|<style\b`).FindString(html); m != "" {
		t.Errorf("inline style (blocked by style-src 'self'): %s", m)
	}
	if strings.Contains(strings.ToLower(html), "javascript:") {
		t.Error("a javascript: URL on the page")
	}

	// Scripts and styles are served with their real types, which nosniff
	// makes browsers check.
	assets := static.New()
	for name, want := range map[string]string{"app.js": "javascript", "style.css": "text/css", "favicon.svg": "image/svg+xml"} {
		r := a.do(t, "GET", assets.URL(name), "")
		if r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Type"), want) {
			t.Errorf("%s: %d, Content-Type %q, want %s", name, r.status, r.header.Get("Content-Type"), want)
		}
	}
}

func slicesAny(list []string, f func(string) bool) bool {
	for _, s := range list {
		if f(s) {
			return true
		}
	}
	return false
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	a := newApp(t)
	assets := static.New()
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/", ""},
		{"GET", "/discussion/latest/5", ""},
		{"GET", "/discussion/latest/abc", ""},
		{"GET", "/discussion?before=3", ""},
		{"POST", "/discussion/hello", ""},
		{"POST", "/discussion", `{"message":"hi"}`},
		{"POST", "/discussion", `{`},
		{"GET", "/healthz", ""},
		{"GET", assets.URL("app.js"), ""},
		{"GET", "/static/nope.js", ""},
		{"GET", "/nope", ""},
		{"DELETE", "/discussion/latest/5", ""},
	} {
		t.Run(req.method+" "+req.path, func(t *testing.T) {
			r := a.do(t, req.method, req.path, req.body)
			if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			switch got := r.header.Get("Referrer-Policy"); got {
			case "no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin":
			default:
				t.Errorf("Referrer-Policy %q: leaks the chat's URL to other sites", got)
			}
			d := csp(t, r.header.Get("Content-Security-Policy"))
			if got := d["frame-ancestors"]; len(got) != 1 || got[0] != "'none'" && got[0] != "'self'" {
				t.Errorf("frame-ancestors %q, want 'none' or 'self'", got)
			}
			// The chat has no accounts: nothing here sets a cookie. Should
			// one appear, it must be out of reach of scripts and of
			// other sites.
			for _, c := range r.header.Values("Set-Cookie") {
				l := strings.ToLower(c)
				if !strings.Contains(l, "httponly") || !strings.Contains(l, "samesite=") {
					t.Errorf("cookie without HttpOnly and SameSite: %s", c)
				}
			}
		})
	}
}

// secrets are bits of files on the disk of the machine running NoChat (or
// of this repository) that no response may ever carry.
var secrets = []string{"package static", "package main", "package handlers", "module nochat", "root:x:0:0", "root::0:0", "go:embed"}

func TestStaticServesOnlyEmbeddedFiles(t *testing.T) {
	a := newApp(t)
	assets := static.New()
	// The embedded files, and nothing else, answer 200.
	for _, name := range []string{"app.js", "style.css", "favicon.svg"} {
		if r := a.do(t, "GET", assets.URL(name), ""); r.status != http.StatusOK {
			t.Fatalf("%s: %d", name, r.status)
		}
	}
	paths := []string{
		"/static/static.go", // beside the embedded files on disk, not embedded
		"/static/",
		"/static/?C=M;O=D",
		"/static/.",
		"/static/..",
		"/static/../main.go",
		"/static/../../../../../../etc/passwd",
		"/static/..%2fmain.go",
		"/static/..%2F..%2Fgo.mod",
		"/static/%2e%2e/go.mod",
		"/static/%2e%2e%2fgo.mod",
		"/static/%252e%252e%252fgo.mod",
		"/static/..%5cgo.mod",
		"/static/..\\go.mod",
		"/static/....//go.mod",
		"/static//etc/passwd",
		"/static/%2fetc%2fpasswd",
		"/static/app.js/../../go.mod",
		"/static/app.js%2f..%2f..%2fgo.mod",
		"/static/app.js%00.go",
		"/static/%00",
		"/static/APP.JS",
		"/static/app.js.map",
		"/static/.git/config",
		"/static/~/.ssh/id_rsa",
		"/go.mod",
		"/main.go",
		"/%2e%2e/go.mod",
		"/../go.mod",
		"//static/../go.mod",
		"/discussion/latest/..%2f..%2fgo.mod",
		"/nochat.db",
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			// A raw request, so that no client cleans the path first.
			resp, body := rawRequest(t, a, "GET "+p+" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
			checkNoLeak(t, p, resp, body)
			// A redirect (to a cleaned path) must stay on this server, and
			// where it leads must not leak either.
			if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 {
				if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") {
					t.Fatalf("redirect to %q, off this server", loc)
				}
				resp, body := rawRequest(t, a, "GET "+loc+" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
				checkNoLeak(t, loc, resp, body)
			}
		})
	}
	t.Run("absolute-form request line", func(t *testing.T) {
		resp, body := rawRequest(t, a, "GET http://localhost/static/../go.mod HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		checkNoLeak(t, "absolute form", resp, body)
	})
}

func checkNoLeak(t *testing.T, p string, resp *http.Response, body string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(body, s) {
			t.Fatalf("GET %s: %d, and the body has %q: a file outside the embedded set", p, resp.StatusCode, s)
		}
	}
	if resp.StatusCode != http.StatusOK {
		return
	}
	// A 200 is one of the embedded files, the chat page, or JSON.
	ct := resp.Header.Get("Content-Type")
	embedded := strings.Contains(ct, "javascript") || strings.HasPrefix(ct, "text/css") || strings.HasPrefix(ct, "image/svg")
	page := strings.HasPrefix(ct, "text/html") && strings.Contains(body, "<title>NoChat</title>")
	if !embedded && !page && ct != "application/json" {
		t.Fatalf("GET %s: 200 with Content-Type %q: %.200q", p, ct, body)
	}
	if strings.Contains(body, `<a href="`) && strings.Contains(body, "<pre>") {
		t.Fatalf("GET %s: a directory listing", p)
	}
}
