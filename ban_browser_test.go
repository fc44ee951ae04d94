package main

import (
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// proxyFrom is a reverse proxy in front of the server at target, as a Pi
// behind one runs NoChat (-trust-proxy): every request through it, a
// socket's too, comes from addr. It returns the proxy's URL.
func proxyFrom(t *testing.T, target, addr string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = r.In.Host // the page's own origin, as NoChat checks it
		r.Out.Header.Set("X-Forwarded-For", addr)
	}})
	t.Cleanup(p.Close)
	return p.URL
}

// An admin bans a guest who came back after every disconnect: a button on
// the guest's connection asks first, naming the address and what it
// does; the guest's page stops and says why; the address is listed under
// the guest's name, refused until the admin lifts it there.
func TestBrowserAdminBansAGuestsAddress(t *testing.T) {
	browser := newBrowser(t)
	s := start(t, map[string]string{
		"NOCHAT_DB":             filepath.Join(t.TempDir(), "nochat.db"),
		"NOCHAT_ADMIN_PASSWORD": adminPassword,
		"NOCHAT_TRUST_PROXY":    "true",
	})
	const address = "203.0.113.50"
	proxied := proxyFrom(t, s.url, address)
	guest := newTab(t, browser, chromedp.WithNewBrowserContext())
	do(t, guest, chromedp.Navigate(proxied+"/"))
	connected(t, guest)
	do(t, guest, chromedp.Evaluate[chromedp.Void](`document.getElementById('name').value = ''`), chromedp.SendKeys(chromedp.ID("name"), "Zed"))
	say(t, guest, "spam spam spam")

	admin := newTab(t, browser)
	browserAdminLogin(t, admin, s)
	row := fmt.Sprintf(`[...document.querySelectorAll('#connections tr[data-session]')].find(r => r.querySelector('.remote').textContent === %q)`, address)
	waitPage(t, admin, "Zed's connection", row+` !== undefined && `+row+`.closest('tbody').querySelector('.name').textContent === 'Zed'`)
	if eval[bool](t, admin, `document.getElementById('bans') !== null`) {
		t.Fatal("a list of bans before any ban")
	}
	do(t, admin, chromedp.ScrollIntoView(chromedp.ID("connections")))
	screenshots(t, admin, "admin-guest-connection")
	do(t, admin, chromedp.EmulateViewport(390, 844), chromedp.ScrollIntoView(chromedp.ID("connections")))
	viewShot(t, admin, "admin-guest-connection-390-view.png")
	do(t, admin, chromedp.EmulateViewport(1280, 900))
	// A disconnect first: the question says the page comes back, the page
	// says why it dropped, and it does come back.
	first := eval[string](t, admin, row+`.dataset.session`)
	do(t, admin, chromedp.Evaluate[chromedp.Void](row+`.querySelector('form[action*="/disconnect"] button').click()`))
	waitPage(t, admin, "the disconnect's question", `document.getElementById('confirm')?.open === true && document.getElementById('confirm-detail').textContent.includes("connects again by itself; to keep someone out, ban them")`)
	do(t, admin, chromedp.Click(chromedp.ID("confirm-ok")))
	waitPage(t, guest, "the guest told of the disconnect", `document.getElementById("notice").textContent === "Disconnected by an admin: connecting again."`)
	connected(t, guest)
	waitPage(t, admin, "Zed's page back, on a new connection", row+` !== undefined && `+row+`.dataset.session !== `+fmt.Sprintf("%q", first))
	do(t, admin, chromedp.Evaluate[chromedp.Void](row+`.querySelector('form[action^="/admin/bans"] button').click()`))
	waitPage(t, admin, "the question", `document.getElementById('confirm')?.open === true`)
	title := eval[string](t, admin, `document.getElementById('confirm-title').textContent`)
	detail := eval[string](t, admin, `document.getElementById('confirm-detail').textContent`)
	if title != "Ban the address "+address+"?" || !strings.Contains(detail, "refused until you lift the ban") || !strings.Contains(detail, "the page of Zed") {
		t.Fatalf("the dialog asks %q: %q", title, detail)
	}
	screenshot(t, admin, "admin-ban-address-question.png")
	do(t, admin, chromedp.Click(chromedp.ID("confirm-ok")))

	waitPage(t, guest, "why the guest's page stopped", `document.getElementById("status").dataset.state === "ended" && !document.getElementById("notice").hidden && document.getElementById("notice").textContent === "This address was banned from the chat by an admin."`)
	screenshot(t, guest, "guest-banned.png")
	waitPage(t, admin, "the address on the list of bans", fmt.Sprintf(`(() => {
		const row = document.querySelector('#bans tr[data-address="%s"]');
		return !!row && row.querySelector('.who').textContent === 'Zed (a guest)' && document.getElementById('audit').textContent.includes('ban address');
	})()`, address))
	do(t, admin, chromedp.ScrollIntoView(chromedp.ID("bans")))
	screenshots(t, admin, "admin-bans")
	do(t, admin, chromedp.EmulateViewport(390, 844), chromedp.ScrollIntoView(chromedp.ID("bans")))
	viewShot(t, admin, "admin-bans-390-view.png")
	do(t, admin, chromedp.ScrollIntoView(chromedp.ID("audit")))
	viewShot(t, admin, "admin-audit-390-view.png")

	// Coming back is refused, with the reason.
	do(t, guest, chromedp.Navigate(proxied+"/"))
	if h1 := eval[string](t, guest, `document.querySelector('h1')?.textContent || document.body.innerText`); h1 != "This address is banned" {
		t.Fatalf("the guest's page after the ban: %q, want a page saying the address is banned", h1)
	}
	if !eval[bool](t, guest, `getComputedStyle(document.querySelector('main')).borderTopLeftRadius === '14px'`) {
		t.Fatal("the banned page is unstyled: its style sheet was refused")
	}
	screenshots(t, guest, "guest-banned-reload")

	// Lifted, the address is served again.
	do(t, admin, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector('#bans tr[data-address="%s"] button').click()`, address)))
	waitPage(t, admin, "the question", `document.getElementById('confirm')?.open === true`)
	if q := eval[string](t, admin, `document.getElementById('confirm-title').textContent`); q != "Lift the ban on "+address+"?" {
		t.Fatalf("the lift's question = %q", q)
	}
	do(t, admin, chromedp.Click(chromedp.ID("confirm-ok")))
	waitPage(t, admin, "the list of bans gone", `document.getElementById('bans') === null && document.getElementById('audit').textContent.includes('lift address ban')`)
	do(t, guest, chromedp.Navigate(proxied+"/"))
	connected(t, guest)
}
