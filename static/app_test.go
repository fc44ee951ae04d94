package static

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d", target, w.Code)
	}
	return w
}

// Every icon the manifest lists is served at its size; the maskable one
// is full-bleed, its mark inside the circle a launcher may cut it to.
func TestManifestIconsAreServedAtTheirSizes(t *testing.T) {
	a := New()
	var m struct {
		Name  string
		Icons []struct{ Src, Sizes, Type, Purpose string }
	}
	if err := json.Unmarshal(get(t, a.Manifest(), "/manifest.webmanifest").Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m.Name != "NoChat" || len(m.Icons) != 4 {
		t.Fatalf("manifest: %+v", m)
	}
	maskable := 0
	for _, ic := range m.Icons {
		w := get(t, a.Handler(), ic.Src)
		if ic.Type != "image/png" {
			continue
		}
		img, err := png.Decode(w.Body)
		if err != nil {
			t.Fatalf("%s: %v", ic.Src, err)
		}
		if got := fmt.Sprintf("%dx%d", img.Bounds().Dx(), img.Bounds().Dy()); got != ic.Sizes {
			t.Fatalf("%s is %s, the manifest says %s", ic.Src, got, ic.Sizes)
		}
		if ic.Purpose != "maskable" {
			if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
				t.Fatalf("%s: the corner of a plain icon is not transparent", ic.Src)
			}
			continue
		}
		maskable++
		size := img.Bounds().Dx()
		// Opaque to the corners; outside the safe circle (radius 40%) only
		// the background.
		for _, p := range []image.Point{{0, 0}, {size - 1, size - 1}, {size / 2, size / 20}, {size / 20, size / 2}} {
			if c := img.At(p.X, p.Y); c != img.At(0, 0) {
				t.Fatalf("%s at %v is %v, want the background %v", ic.Src, p, c, img.At(0, 0))
			}
		}
		if _, _, _, a := img.At(0, 0).RGBA(); a != 0xffff {
			t.Fatalf("%s is not full-bleed", ic.Src)
		}
	}
	if maskable != 1 {
		t.Fatalf("%d maskable icons, want 1", maskable)
	}
}

// The worker names this build's assets: a new build is a new worker, which
// is what makes the browser update the app.
func TestServiceWorkerNamesThisBuildsShell(t *testing.T) {
	a := New()
	w := get(t, a.ServiceWorker(), "/sw.js")
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Fatalf("sw.js served as %q", ct)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-cache" {
		t.Fatalf("sw.js Cache-Control %q: a browser could keep an old worker", cc)
	}
	body := w.Body.Bytes()
	for _, name := range shell {
		if !bytes.Contains(body, []byte(a.URL(name))) {
			t.Fatalf("sw.js does not keep %s", a.URL(name))
		}
	}
	// Another build (one asset changed) is another worker.
	b := New()
	b.hashes["app.js"] = "000000000000"
	if bytes.Equal(body, get(t, b.ServiceWorker(), "/sw.js").Body.Bytes()) {
		t.Fatal("a build with another app.js serves the same worker: browsers would keep the old shell")
	}
}
