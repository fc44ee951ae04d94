package static

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

//go:embed sw/sw.js
var serviceWorker string

// shell is what the service worker keeps so the page opens offline: every
// asset the chat page loads, and the icons a notification shows.
var shell = []string{"app.js", "style.css", "favicon.svg", "icon-192.png"}

// ServiceWorker serves /sw.js: the worker that keeps the app shell for
// offline use, shows Web Push notifications and opens their messages. Its
// text names this build's asset hashes, so a new NoChat is a new worker:
// the browser installs it, it takes over at once and drops the old shell,
// and the page offers a reload (sw.js and app.js, "update").
//
// It is served from the root so that its scope is the whole site, and is
// never cached by HTTP: the browser must see a new version at once.
func (a *Assets) ServiceWorker() http.Handler {
	urls := make([]string, 0, len(shell))
	for _, name := range shell {
		urls = append(urls, a.URL(name))
	}
	var version strings.Builder
	for _, name := range slices.Sorted(maps.Keys(a.hashes)) {
		version.WriteString(a.hashes[name])
	}
	list, _ := json.Marshal(urls)
	body := []byte(fmt.Sprintf("'use strict';\nconst VERSION = %q;\nconst SHELL = %s;\nconst ICON = %q;\n\n%s",
		hash([]byte(version.String()+serviceWorker)), list, a.URL("icon-192.png"), serviceWorker))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		w.Write(body)
	})
}

// Manifest serves /manifest.webmanifest: what a browser needs to install
// NoChat as an app, with its name, icons (one maskable, for launchers that
// cut icons to a shape) and colours.
func (a *Assets) Manifest() http.Handler {
	type icon struct {
		Src     string `json:"src"`
		Sizes   string `json:"sizes"`
		Type    string `json:"type"`
		Purpose string `json:"purpose"`
	}
	type colours struct {
		Theme      string `json:"theme_color"`
		Background string `json:"background_color"`
	}
	m := struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		ShortName   string `json:"short_name"`
		Description string `json:"description"`
		StartURL    string `json:"start_url"`
		Scope       string `json:"scope"`
		Display     string `json:"display"`
		colours
		// Chromium's colours for a dark system theme; others use the
		// page's theme-color meta tags, which have both.
		Preferences map[string]colours `json:"user_preferences"`
		Icons       []icon             `json:"icons"`
	}{
		ID: "/", Name: "NoChat", ShortName: "NoChat",
		Description: "Chat with your family, club or makerspace, served from your own machine.",
		StartURL:    "/", Scope: "/", Display: "standalone",
		colours:     colours{Theme: "#ffffff", Background: "#ffffff"},
		Preferences: map[string]colours{"color_scheme_dark": {Theme: "#181b21", Background: "#181b21"}},
		Icons: []icon{
			{a.URL("icon-192.png"), "192x192", "image/png", "any"},
			{a.URL("icon-512.png"), "512x512", "image/png", "any"},
			{a.URL("icon-maskable-512.png"), "512x512", "image/png", "maskable"},
			{a.URL("favicon.svg"), "any", "image/svg+xml", "any"},
		},
	}
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err) // a fixed struct of strings always marshals
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/manifest+json")
		h.Set("Cache-Control", "no-cache")
		w.Write(body)
	})
}
