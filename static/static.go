// Package static embeds the browser assets (script, styles, icons) and serves
// them under content-hashed URLs so browsers may cache them forever; and
// what makes NoChat an installable app: its manifest and service worker.
package static

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
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
}

// New hashes every embedded file once, at start-up, and draws the icons.
func New() *Assets { return NewFS(files) }

// NewFS is New for the files of fsys instead of the embedded ones: another
// build's, as a test has it.
func NewFS(fsys fs.FS) *Assets {
	a := &Assets{fsys: fsys, hashes: make(map[string]string), drawn: icons()}
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
	}
	for name, b := range a.drawn {
		a.hashes[name] = hash(b)
	}
	return a
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
		if b, ok := a.drawn[name]; ok {
			http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
			return
		}
		fileServer.ServeHTTP(w, r)
	})
}
