// Package static embeds the browser assets (script, styles, icons) and serves
// them under content-hashed URLs so browsers may cache them forever; and
// what makes NoChat an installable app: its manifest and service worker.
package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed *.js *.css *.svg
var files embed.FS

// Assets serves the embedded files and names them by content.
type Assets struct {
	fsys   fs.FS
	hashes map[string]string // file name -> short content hash
	drawn  map[string][]byte // the PNG icons, drawn at start-up
	zipped map[string][]byte // text files gzipped once, at start-up
}

// New hashes every embedded file once, at start-up, and draws the icons.
func New() *Assets { return NewFS(files) }

// NewFS is New for the files of fsys instead of the embedded ones: another
// build's, as a test has it.
func NewFS(fsys fs.FS) *Assets {
	a := &Assets{fsys: fsys, hashes: make(map[string]string), drawn: icons(), zipped: make(map[string][]byte)}
	entries, _ := fs.ReadDir(fsys, ".")
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			continue
		}
		a.hashes[e.Name()] = hash(b)
		if z := gzipped(b); z != nil && strings.HasSuffix(mime.TypeByExtension(path.Ext(e.Name())), "charset=utf-8") {
			a.zipped[e.Name()] = z
		}
	}
	for name, b := range a.drawn {
		a.hashes[name] = hash(b)
	}
	return a
}

// gzipped is b at gzip's best, or nil if that saves under a tenth: the
// script and styles shrink to a quarter, which a phone on a slow link
// feels at every first visit and every new version.
func gzipped(b []byte) []byte {
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	if z.Len() > len(b)*9/10 {
		return nil
	}
	return z.Bytes()
}

func hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// URL returns the cache-busting URL of the named file, for example
// "/static/app.js?v=1a2b3c4d5e6f". Unknown names get a plain URL.
func (a *Assets) URL(name string) string {
	if h, ok := a.hashes[name]; ok {
		return "/static/" + name + "?v=" + h
	}
	return "/static/" + name
}

// Handler serves the embedded files under /static/. A request carrying the
// file's current hash may be cached for a year; anything else must revalidate.
// Only embedded files are reachable: there is no path to the disk.
func (a *Assets) Handler() http.Handler {
	fileServer := http.StripPrefix("/static/", http.FileServerFS(a.fsys))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/static/")
		h, ok := a.hashes[name]
		if !ok {
			http.NotFound(w, r) // no directory listings, nothing but the files
			return
		}
		if r.URL.Query().Get("v") == h {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		// Embedded files have no time: their hash is what a cache
		// revalidates with (a different one for the gzipped bytes).
		etag := `"` + h + `"`
		if b, ok := a.drawn[name]; ok {
			w.Header().Set("ETag", etag)
			http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
			return
		}
		if z, ok := a.zipped[name]; ok {
			w.Header().Add("Vary", "Accept-Encoding")
			if acceptsGzip(r.Header.Get("Accept-Encoding")) {
				w.Header().Set("ETag", `"`+h+`-gz"`)
				w.Header().Set("Content-Encoding", "gzip")
				w.Header().Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
				// ServeContent leaves the length out of an encoded body's
				// answer (a range's it sets again).
				w.Header().Set("Content-Length", strconv.Itoa(len(z)))
				http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(z))
				return
			}
		}
		w.Header().Set("ETag", etag)
		fileServer.ServeHTTP(w, r)
	})
}

// acceptsGzip reports whether an Accept-Encoding header takes gzip: by
// name, or by * where gzip is not named; not with q=0.
func acceptsGzip(header string) bool {
	gzipQ, starQ := -1.0, -1.0 // not named
	for v := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(v, ";")
		q := 1.0
		if k, val, ok := strings.Cut(params, "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			q = f
			if err != nil {
				q = 0
			}
		}
		switch strings.ToLower(strings.TrimSpace(coding)) {
		case "gzip", "x-gzip":
			gzipQ = q
		case "*":
			starQ = q
		}
	}
	if gzipQ < 0 {
		gzipQ = starQ
	}
	return gzipQ > 0
}
