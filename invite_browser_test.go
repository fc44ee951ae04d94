package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// An invitation as it happens: the admin reads the invite link off the
// dashboard in one browser, and a person opens it in another (a second
// Chromium profile, so nothing of the admin's session is shared), joins,
// and chats under their new account.

func TestBrowserInviteLinkJoinsAMemberInAnotherProfile(t *testing.T) {
	admin := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")})
	link, _ := setupLink(t, s)
	browserSetUp(t, admin, link)

	do(t, admin, chromedp.Navigate(s.url+"/admin"), chromedp.WaitVisible(chromedp.CSS("#invite svg.qr")))
	invite := eval[string](t, admin, `document.getElementById("invite-link").href`)
	if !strings.HasPrefix(invite, s.url+"/join/") {
		t.Fatalf("the dashboard's invite link = %q, want one under %s/join/", invite, s.url)
	}
	for _, width := range []int64{390, 1280} {
		do(t, admin, chromedp.EmulateViewport(width, 900), chromedp.ScrollIntoView(chromedp.ID("invite")))
		if eval[bool](t, admin, `document.documentElement.scrollWidth > window.innerWidth`) {
			t.Fatalf("the dashboard scrolls sideways at %d px", width)
		}
		// The QR code must stay large enough to scan.
		if side := eval[float64](t, admin, `document.querySelector("#invite svg.qr").getBoundingClientRect().width`); side < 150 {
			t.Fatalf("the QR code is %.0f px wide at %d px, want at least 150", side, width)
		}
		screenshot(t, admin, fmt.Sprintf("admin-invite-%d.png", width))
	}

	guest := newBrowser(t) // a second profile: its own cookies
	for _, width := range []int64{390, 1280} {
		do(t, guest, chromedp.EmulateViewport(width, 800), chromedp.Navigate(invite), chromedp.WaitVisible(chromedp.ID("name")))
		if eval[bool](t, guest, `document.documentElement.scrollWidth > window.innerWidth`) {
			t.Fatalf("the join page scrolls sideways at %d px", width)
		}
		screenshot(t, guest, fmt.Sprintf("join-%d.png", width))
	}
	do(t, guest,
		chromedp.SendKeys(chromedp.ID("name"), "Bea"),
		chromedp.SendKeys(chromedp.ID("password"), "bea's password"),
		chromedp.Submit(chromedp.ID("password")),
	)
	waitPage(t, guest, "the chat page", `location.pathname === "/" && !!document.getElementById("messages")`)
	connected(t, guest)
	writesAs(t, guest, s, "Bea", 2, "hello, I joined by the link")

	// The admin resets the link, after a question; the card shows the
	// new one, and the old one opens nothing (a refusal comes before the
	// signed-in check, so Bea's browser sees it too).
	do(t, admin, chromedp.Click(chromedp.CSS(`form[action="/admin/invite/reset"] button`)), chromedp.WaitVisible(chromedp.ID("confirm")))
	screenshot(t, admin, "admin-invite-reset-confirm.png")
	do(t, admin, chromedp.Click(chromedp.ID("confirm-ok")))
	waitPage(t, admin, "a new invite link", `document.getElementById("invite-link") && document.getElementById("invite-link").href !== `+strconv.Quote(invite))
	if n := eval[int](t, admin, `document.querySelectorAll("#invite").length`); n != 1 {
		t.Fatalf("%d invite cards after the reset, want 1", n)
	}
	fresh := eval[string](t, admin, `document.getElementById("invite-link").href`)
	if !strings.HasPrefix(fresh, s.url+"/join/") {
		t.Fatalf("the new invite link = %q", fresh)
	}
	do(t, guest, chromedp.Navigate(invite))
	waitPage(t, guest, "the old link refused", `document.body.innerText.includes("This invite link does not work")`)
}
