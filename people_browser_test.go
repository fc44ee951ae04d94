package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The first run as its admin goes through it, in Chromium: the set-up link
// from the log, the form, and landing signed in.

// browserSetUp makes the tab's browser the admin Ann through the set-up
// link and waits for the chat page.
func browserSetUp(t *testing.T, tab context.Context, link string) {
	t.Helper()
	do(t, tab, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("name")))
	do(t, tab,
		chromedp.SendKeys(chromedp.ID("name"), "Ann"),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse"),
		chromedp.Submit(chromedp.ID("password")),
	)
	waitPage(t, tab, "the chat page", `location.pathname === "/" && !!document.getElementById("messages")`)
}

// writesAs checks that the signed-in page's composer writes under name,
// read-only, and that text sent from it is stored as name's, with id.
func writesAs(t *testing.T, tab context.Context, s *server, name string, id int, text string) {
	t.Helper()
	if got := eval[string](t, tab, `document.getElementById("name").readOnly ? document.getElementById("name").value : "(editable)"`); got != name {
		t.Fatalf("the name field = %q, want %s, read-only", got, name)
	}
	say(t, tab, text)
	waitMessages(t, tab, "the sent message", contains(text))
	if body := s.get(t, "/discussion/latest/1"); !strings.Contains(body, `"user":"`+name+`"`) || !strings.Contains(body, fmt.Sprintf(`"user_id":%d`, id)) {
		t.Fatalf("the stored message = %s, want %s's with user_id %d", body, name, id)
	}
}

func TestBrowserSetupLinkCreatesTheAdminAndSignsIn(t *testing.T) {
	browser := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")})
	link, _ := setupLink(t, s)

	// Each new page, at a phone's width and a laptop's, without sideways
	// scrolling.
	for _, width := range []int64{390, 1280} {
		for name, path := range map[string]string{"setup-help": "/setup", "signin": "/signin", "setup": link[len(s.url):]} {
			do(t, browser, chromedp.EmulateViewport(width, 800), chromedp.Navigate(s.url+path), chromedp.WaitVisible(chromedp.CSS("main.card")))
			if eval[bool](t, browser, `document.documentElement.scrollWidth > window.innerWidth`) {
				t.Fatalf("%s scrolls sideways at %d px", path, width)
			}
			screenshot(t, browser, fmt.Sprintf("%s-%d.png", name, width))
		}
	}

	do(t, browser, chromedp.EmulateViewport(390, 800))
	browserSetUp(t, browser, link)
	// Signed in: the composer writes under the account's name, and a
	// message sent from the page is stored as Ann's, with her id.
	connected(t, browser)
	writesAs(t, browser, s, "Ann", 1, "my first message as the admin")
	for _, width := range []int64{390, 1280} {
		do(t, browser, chromedp.EmulateViewport(width, 800))
		screenshot(t, browser, fmt.Sprintf("chat-signed-in-%d.png", width))
		if eval[bool](t, browser, `document.documentElement.scrollWidth > window.innerWidth`) {
			t.Fatalf("the signed-in chat page scrolls sideways at %d px", width)
		}
	}
	// The account's own page, from the name in the header.
	do(t, browser, chromedp.Click(chromedp.CSS("a.account")), chromedp.WaitVisible(chromedp.CSS("ul.sessions")))
	for _, width := range []int64{390, 1280} {
		do(t, browser, chromedp.EmulateViewport(width, 800))
		screenshot(t, browser, fmt.Sprintf("account-%d.png", width))
		if eval[bool](t, browser, `document.documentElement.scrollWidth > window.innerWidth`) {
			t.Fatalf("the account page scrolls sideways at %d px", width)
		}
	}
	do(t, browser, chromedp.Navigate(s.url+"/admin"), chromedp.WaitVisible(chromedp.ID("live")))
	// The link is spent: opened again, it says so.
	do(t, browser, chromedp.Navigate(link))
	waitPage(t, browser, "that set-up is done", `document.body.innerText.includes("NoChat is set up")`)
}
