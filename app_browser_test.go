package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// workerReady waits until the service worker controls tab's page.
func workerReady(t *testing.T, tab context.Context) {
	t.Helper()
	reloadAt := time.Now().Add(5 * time.Second)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(tab, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!navigator.serviceWorker.controller`))
		cancel()
		if err == nil && ok {
			return
		}
		// A page whose load began while the worker was activating can
		// miss its claim; the worker then takes the next load, as a
		// person's reload.
		if reloadAt.IsZero() || time.Now().Before(reloadAt) {
			continue
		}
		ctx, cancel = context.WithTimeout(tab, 5*time.Second)
		active, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`navigator.serviceWorker.getRegistration().then(r => !!(r && r.active && r.active.state === 'activated'))`, chromedp.EvalAwaitPromise))
		cancel()
		if err == nil && active {
			reloadAt = time.Time{}
			do(t, tab, chromedp.Reload())
			connected(t, tab)
		}
	}
	// Say how far the worker got: never registered, installing (its
	// shell's files still being fetched), or installed and never claiming.
	eval[any](t, tab, `navigator.serviceWorker.getRegistration().then(r => { window.workerState = r
		? JSON.stringify({installing: r.installing && r.installing.state, waiting: r.waiting && r.waiting.state, active: r.active && r.active.state})
		: 'no registration'; }), null`)
	time.Sleep(500 * time.Millisecond)
	t.Fatalf("the service worker never took control of the page: %s", eval[string](t, tab, `String(window.workerState)`))
}

// NoChat is an app Chromium offers to install; it opens with the network
// down showing the history it last had, and what is typed meanwhile is
// sent once the server is back, once.
func TestBrowserInstallableAndOpensOffline(t *testing.T) {
	tab := newBrowser(t)
	env := map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")}
	s := start(t, env)
	addr := strings.TrimPrefix(s.url, "http://")
	s.post(t, "ann", "said before the outage")

	do(t, tab, chromedp.Navigate(s.url+"/"))
	connected(t, tab)
	workerReady(t, tab)

	// Chromium's own verdict: the manifest parses, its icons fit, the
	// worker is there; nothing stands in the way of installing.
	do(t, tab, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		m, err := cdp.Call(ctx, tg, cdppage.GetAppManifest, cdppage.GetAppManifestParams{})
		if err != nil {
			return chromedp.Void{}, err
		}
		if len(m.Errors) > 0 || m.Manifest == nil || m.Manifest.Name != "NoChat" {
			return chromedp.Void{}, fmt.Errorf("manifest at %s: errors %v, parsed %+v", m.URL, m.Errors, m.Manifest)
		}
		res, err := cdp.Call(ctx, tg, cdppage.GetInstallabilityErrors, cdp.Empty{})
		if err != nil {
			return chromedp.Void{}, err
		}
		var errs []string
		for _, e := range res.InstallabilityErrors {
			errs = append(errs, e.ErrorID)
		}
		if len(errs) > 0 {
			return chromedp.Void{}, fmt.Errorf("Chromium would not install NoChat: %v", errs)
		}
		return chromedp.Void{}, nil
	})

	// The worker keeps the page as last loaded.
	do(t, tab, chromedp.Navigate(s.url+"/"))
	connected(t, tab)
	waitMessages(t, tab, "the history", contains("said before the outage"))

	s.shutdown(t)
	do(t, tab, chromedp.Navigate(s.url+"/"))
	waitMessages(t, tab, "the kept history, offline", contains("said before the outage"))
	if state := eval[string](t, tab, `document.getElementById('status').dataset.state`); state == "connected" {
		t.Fatal("the page says it is connected with the server down")
	}
	viewShot(t, tab, "offline-1280.png")
	say(t, tab, "typed offline")
	waitMessages(t, tab, "the queued send", contains("…typed offline"))

	s = start(t, env, "-addr", addr)
	connected(t, tab)
	waitMessages(t, tab, "the queued send, sent", func(shown []string) bool {
		return slices.Equal(shown, []string{"said before the outage", "typed offline"})
	})
	var stored []struct{ Message string }
	if err := json.Unmarshal([]byte(s.get(t, "/discussion/latest/10")), &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 || stored[1].Message != "typed offline" {
		t.Fatalf("stored %+v, want the queued send once after the history", stored)
	}
}

// Offline, a room opened in the page (no page load) reopens as last seen,
// and what is typed there goes to it; a room never opened on this device
// opens as a page saying so, never as another room under its address
// (the front page did: what was typed went to the Lobby, for everyone).
func TestBrowserRoomsOpenOfflineAsThemselves(t *testing.T) {
	tab := newBrowser(t)
	env := map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db"), "NOCHAT_MSG_RATE": "1000"}
	s := start(t, env)
	addr := strings.TrimPrefix(s.url, "http://")
	link, _ := setupLink(t, s)
	invite := setUpAdmin(t, tab, link, s.url)
	do(t, tab, chromedp.Navigate(s.url+"/"))
	connected(t, tab)
	workerReady(t, tab)
	say(t, tab, "in the lobby")
	waitMessages(t, tab, "the lobby's line", contains("in the lobby"))
	if code := postJSON(t, tab, "POST", "/rooms", `{"name":"Shed","kind":"open"}`); code != 201 {
		t.Fatalf("creating Shed: %d", code)
	}
	fillDialog(t, tab, "new-room", "new-room-dialog", map[string]string{"name": "Garden"})
	waitPage(t, tab, "Garden, opened in the page", `location.pathname === "/r/garden"`)
	say(t, tab, "tomatoes are in")
	waitMessages(t, tab, "Garden's line", contains("tomatoes are in"))
	// Left for the lobby, Garden is kept as it was left.
	clickRoom(t, tab, "Lobby")
	waitMessages(t, tab, "back in the lobby", contains("in the lobby"))
	waitPageFor(t, tab, 20*time.Second, "Garden's page kept for offline, with its line", keptCopy("garden", "tomatoes are in", true))

	// A copy kept for a sign-in that has run out is not shown (a shared
	// device: the next person is not to read it), and is dropped.
	do(t, tab, chromedp.Evaluate[chromedp.Void](`caches.open("nochat-pages").then(async c => {
		const html = (await (await c.match(location.origin + "/r/garden")).text()).replace(/ data-session-ends="\d+"/, ' data-session-ends="1"');
		await c.put(location.origin + "/r/ended", new Response(html, { headers: { "Content-Type": "text/html; charset=utf-8" } }));
		window.endedKept = true;
	})`))
	waitPage(t, tab, "a copy of a sign-in that has ended, kept", `window.endedKept === true`)

	// On a phone, a connection lost says so in words, not by its dot alone.
	do(t, tab, chromedp.EmulateViewport(390, 844))
	if eval[bool](t, tab, `getComputedStyle(document.getElementById("status-text")).display !== "none"`) {
		t.Fatal("at 390 px, connected, the connection's words show")
	}
	s.shutdown(t)
	waitPage(t, tab, "the lost connection in words at 390 px", `(e => getComputedStyle(e).display !== "none" && e.getBoundingClientRect().width > 300 && /Reconnecting|Connecting|Offline/.test(e.textContent))(document.getElementById("status-text"))`)
	screenshots(t, tab, "connection-lost")
	do(t, tab, chromedp.Navigate(s.url+"/r/garden"))
	waitMessages(t, tab, "Garden as last seen, offline", contains("tomatoes are in"))
	if got := eval[string](t, tab, `document.getElementById("room-name-text").textContent + " " + document.body.dataset.roomSlug`); got != "Garden garden" {
		t.Fatalf("offline at /r/garden the page shows %q, want Garden", got)
	}
	say(t, tab, "typed in Garden offline")
	waitMessages(t, tab, "the queued send", contains("…typed in Garden offline"))
	viewShot(t, tab, "offline-garden-1280.png")

	do(t, tab, chromedp.Navigate(s.url+"/r/shed"))
	waitPage(t, tab, "Shed, never opened here, offline", `document.querySelector("h1")?.textContent === "You are offline" && !document.getElementById("message")`)
	screenshots(t, tab, "offline-not-kept")
	do(t, tab, chromedp.Navigate(s.url+"/r/ended"))
	waitPage(t, tab, "the copy of an ended sign-in not shown, offline", `document.querySelector("h1")?.textContent === "You are offline" && !document.getElementById("message")`)
	waitPage(t, tab, "the copy of an ended sign-in dropped", keptCopy("ended", "", false))
	// The lobby by its address is the front page's room: kept.
	do(t, tab, chromedp.Navigate(s.url+"/r/lobby"))
	waitMessages(t, tab, "the lobby at its address, offline", contains("in the lobby"))

	s = start(t, env, "-addr", addr)
	do(t, tab, chromedp.Navigate(s.url+"/r/garden"))
	connected(t, tab)
	waitMessages(t, tab, "the queued send, sent to Garden", func(shown []string) bool {
		return slices.Equal(shown, []string{"tomatoes are in", "typed in Garden offline"})
	})
	lobby := eval[string](t, tab, `(() => { const x = new XMLHttpRequest(); x.open("GET", "/rooms/lobby/messages/latest/10", false); x.send(); return x.responseText; })()`)
	if strings.Contains(lobby, "typed in Garden offline") {
		t.Fatalf("the lobby holds what was typed in Garden: %s", lobby)
	}

	// Someone else signs in on this browser (a shared tablet: the admin's
	// session ran out, and signing out would have cleared them): the rooms
	// kept are the admin's, and go.
	do(t, tab, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, network.DeleteCookies, network.DeleteCookiesParams{Name: "nochat_session", URL: s.url})
		return chromedp.Void{}, err
	})
	joinAs(t, tab, invite, "Bob")
	waitPageFor(t, tab, 20*time.Second, "the admin's rooms no longer kept", keptCopy("garden", "", false))
}

// A new NoChat deployed while a page is open: the page offers a reload,
// and the reloaded page runs the new script, with no trace of the old
// shell left in the browser.
func TestBrowserNewVersionIsOfferedAndNothingStale(t *testing.T) {
	tab := newBrowser(t)
	env := map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")}
	s := start(t, env)
	addr := strings.TrimPrefix(s.url, "http://")
	do(t, tab, chromedp.Navigate(s.url+"/"))
	connected(t, tab)
	workerReady(t, tab)
	const scriptURL = `document.querySelector('script[src^="/static/app.js"]').getAttribute('src')`
	oldScript := eval[string](t, tab, scriptURL)

	// The next version: the same files, but for a line added to app.js.
	next := fstest.MapFS{}
	for _, pattern := range []string{"static/*.js", "static/*.css", "static/*.svg"} {
		names, _ := filepath.Glob(pattern)
		for _, name := range names {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(name) == "app.js" {
				b = append(b, "\n// the next version\n"...)
			}
			next[filepath.Base(name)] = &fstest.MapFile{Data: b}
		}
	}
	s.shutdown(t)
	s = startConfig(t, env, func(c *config) { c.addr = addr; c.assets = next })
	connected(t, tab)
	do(t, tab, chromedp.WaitVisible(chromedp.ID("update-banner")))
	viewShot(t, tab, "update-offered-1280.png")
	do(t, tab, chromedp.Click(`#update-banner button`))
	waitPage(t, tab, "the new script", scriptURL+` !== `+strconv.Quote(oldScript))
	connected(t, tab)
	if n := eval[int](t, tab, `document.querySelectorAll('#update-banner').length`); n != 0 {
		t.Fatal("the reloaded page still offers an update")
	}
	shells, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`caches.keys().then(ks => ks.filter(k => k.startsWith('nochat-shell-')))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if len(shells) != 1 {
		t.Fatalf("app shells kept: %q, want only the new one", shells)
	}
}
