package static

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The script and styles go gzipped to a browser that takes it (a quarter
// of the bytes on a phone's first visit), whole to one that does not, and
// each with an ETag, so that a URL without the hash revalidates with a
// 304 instead of coming whole again.
func TestAssetsAreGzippedAndRevalidate(t *testing.T) {
	a := New()
	h := a.Handler()
	serve := func(target string, header map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", target, nil)
		for k, v := range header {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, name := range []string{"app.js", "style.css", "admin.js"} {
		want, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		w := serve(a.URL(name), map[string]string{"Accept-Encoding": "gzip, deflate, br"})
		if w.Code != http.StatusOK || w.Header().Get("Content-Encoding") != "gzip" || !strings.Contains(w.Header().Get("Vary"), "Accept-Encoding") {
			t.Fatalf("%s to a browser taking gzip: %d %v", name, w.Code, w.Header())
		}
		if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
			t.Errorf("%s gzipped: Content-Length %q for %d bytes", name, cl, w.Body.Len())
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasSuffix(ct, "charset=utf-8") || strings.Contains(ct, "gzip") {
			t.Errorf("%s gzipped: Content-Type %q, want the file's own", name, ct)
		}
		zr, err := gzip.NewReader(w.Body)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s gzipped does not unzip to the file (%v)", name, err)
		}
		if n := w.Body.Len(); name == "app.js" && n > len(want)/2 {
			t.Errorf("app.js gzipped is %d bytes of %d", n, len(want))
		}
		etag := w.Header().Get("ETag")
		if etag == "" {
			t.Fatalf("%s gzipped: no ETag", name)
		}
		if w := serve("/static/"+name, map[string]string{"Accept-Encoding": "gzip", "If-None-Match": etag}); w.Code != http.StatusNotModified {
			t.Errorf("%s without its hash, with its ETag: %d, want 304", name, w.Code)
		}
		w = serve(a.URL(name), map[string]string{"Accept-Encoding": "gzip;q=0"})
		if w.Code != http.StatusOK || w.Header().Get("Content-Encoding") != "" || !bytes.Equal(w.Body.Bytes(), want) {
			t.Fatalf("%s to a client refusing gzip: %d %v, %d bytes", name, w.Code, w.Header(), w.Body.Len())
		}
		if plain := w.Header().Get("ETag"); plain == "" || plain == etag {
			t.Errorf("%s: ETag whole %q, gzipped %q, want two", name, plain, etag)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                   false,
		"gzip":               true,
		"gzip, deflate, br":  true,
		"br;q=1.0, gzip;q=0": false,
		"gzip;q=0.5":         true,
		"*":                  true,
		"*;q=0, gzip":        true,
		"gzip;q=0, *":        false,
		"identity":           false,
		"GZIP; q=0.001":      true,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", header, got, want)
		}
	}
}
