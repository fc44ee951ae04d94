package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

// One person in two tabs is one line in the presence popup, with its
// devices counted, and one person in the count; a guest beside them is
// marked as one. Closing a tab takes a device away.
func TestBrowserTwoTabsOfOnePersonAreOneInPresence(t *testing.T) {
	browser := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")})
	link, _ := setupLink(t, s)

	// The first tab becomes the admin Ann through the set-up link; the
	// second shares its sign-in, as a browser's tabs do.
	browserSetUp(t, browser, link)
	connected(t, browser)
	second := newTab(t, browser)
	do(t, second, chromedp.Navigate(s.url+"/"))
	connected(t, second)
	guest, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial(wsURL(s.url)+"?user=zed", http.Header{"User-Agent": {"presence-test-guest/1.0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer guest.Close()

	const popup = `[...document.querySelectorAll('#online-users li')].map(li => li.textContent).join(' | ') + ' / ' + document.querySelector('#online-count').textContent`
	do(t, browser, chromedp.Click(chromedp.CSS("#presence summary")))
	waitPage(t, browser, "Ann once with 2 devices", popup+` === 'Annyou2 devices | zedguest / 2'`)
	for _, w := range []struct {
		width, height int64
		name          string
	}{{390, 844, "presence-390.png"}, {1280, 900, "presence-1280.png"}} {
		do(t, browser, chromedp.EmulateViewport(w.width, w.height))
		screenshot(t, browser, w.name)
	}

	// The dashboard, with Ann's two tabs under her name.
	dash := newTab(t, browser)
	do(t, dash, chromedp.Navigate(s.url+"/admin"), chromedp.WaitVisible(chromedp.ID("connections")))
	for _, w := range []struct {
		width, height int64
		name          string
	}{{390, 844, "connections-390.png"}, {1280, 900, "connections-1280.png"}} {
		do(t, dash, chromedp.EmulateViewport(w.width, w.height), chromedp.ScrollIntoView(chromedp.ID("conns-title")))
		screenshot(t, dash, w.name)
	}
	heads := eval[[]string](t, dash, `[...document.querySelectorAll('#connections .who')].map(tr => tr.textContent.replace(/\s+/g, ' ').trim())`)
	if got, want := strings.Join(heads, " | "), "Ann admin 2 devices | zed guest 1 connection"; got != want {
		t.Fatalf("dashboard people %q, want %q", got, want)
	}

	cancelTab(t, second)
	waitPage(t, browser, "Ann with one device", popup+` === 'Annyou | zedguest / 2'`)
}

// cancelTab closes a browser tab.
func cancelTab(t *testing.T, tab context.Context) {
	t.Helper()
	if err := chromedp.Cancel(tab); err != nil {
		t.Fatal(err)
	}
}
