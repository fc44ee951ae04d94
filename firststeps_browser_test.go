package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// The first minutes of a new NoChat, in Chromium: the admin who set it up
// lands in an empty lobby that says so, finds the dashboard (where people
// are invited) from the room list, and is not offered to invite anyone to
// the lobby, where everyone is. A guest who types a member's name is told
// so when sending, and the message waits in the box instead of going out
// under another name.
func TestBrowserFirstStepsOfAnAdminAndAGuest(t *testing.T) {
	browser := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")})
	link, _ := setupLink(t, s)
	browserSetUp(t, browser, link)
	connected(t, browser)

	for _, width := range []int64{390, 1280} {
		do(t, browser, chromedp.EmulateViewport(width, 844))
		waitPage(t, browser, "the empty lobby saying so", `(() => {
			const p = document.querySelector('#scroller .empty');
			return !!p && getComputedStyle(p).display !== 'none' && p.innerText.includes('No messages yet. Say hello!') &&
				p.innerText.includes('Invite your people with the link on the Admin dashboard') && p.querySelector('a').getAttribute('href') === '/admin#people' &&
				p.innerText.includes('may also read and post here without an account, as a guest');
		})()`)
		screenshot(t, browser, "first-lobby-"+map[int64]string{390: "phone", 1280: "desktop"}[width]+".png")
	}
	if !eval[bool](t, browser, `document.getElementById('room-invite').hidden`) {
		t.Fatal("the lobby's menu offers to invite someone, and everyone is in the lobby")
	}
	// On a phone the room list is a drawer: open it, then the dashboard.
	do(t, browser, chromedp.EmulateViewport(390, 844), chromedp.Click(chromedp.ID("drawer-open")), chromedp.WaitVisible(chromedp.ID("side-admin")))
	waitPage(t, browser, "the drawer open", `document.getElementById('sidebar').getBoundingClientRect().left >= 0`)
	screenshot(t, browser, "first-drawer-phone.png")
	do(t, browser, chromedp.Click(chromedp.ID("side-admin")), chromedp.WaitVisible(chromedp.ID("invite-link")))

	// A mistyped current password on the account page: the page comes
	// back with the reason in view, not at its top with the reason below
	// the fold.
	do(t, browser, chromedp.EmulateViewport(390, 844), chromedp.Navigate(s.url+"/account"), chromedp.WaitVisible(chromedp.ID("current")),
		chromedp.SendKeys(chromedp.ID("current"), "not my password"),
		chromedp.SendKeys(chromedp.ID("new"), "a long new password"),
		chromedp.Submit(chromedp.ID("new")))
	waitPage(t, browser, "the refusal in view", `(() => {
		const p = document.querySelector('p.problem');
		if (!p || !p.textContent.includes('not your current password')) return false;
		const r = p.getBoundingClientRect();
		return r.top >= 0 && r.bottom <= innerHeight;
	})()`)
	screenshot(t, browser, "first-account-wrong-password-phone.png")

	// A guest, in a browser context of their own, takes Ann's name.
	guest := newTab(t, browser, chromedp.WithNewBrowserContext())
	do(t, guest, chromedp.EmulateViewport(390, 844), chromedp.Navigate(s.url+"/"))
	connected(t, guest)
	if got := eval[string](t, guest, `document.querySelector('#scroller .empty').innerText.trim()`); got != "No messages yet. Say hello!" {
		t.Fatalf("a guest's empty lobby says %q, want no more than hello (the invitation is the admin's to give)", got)
	}
	setName(t, guest, "ann")
	waitPage(t, guest, "the name refused", `document.getElementById('name').getAttribute('aria-invalid') === 'true'`)
	do(t, guest, chromedp.SendKeys(chromedp.ID("message"), "hello from a guest"), chromedp.Click(chromedp.ID("send")))
	waitPage(t, guest, "a notice to choose another name", `document.getElementById('notice').textContent.includes('Choose another name')`)
	if got := eval[string](t, guest, `document.getElementById('message').value`); got != "hello from a guest" {
		t.Fatalf("the message box holds %q after the refused send, want the text kept", got)
	}
	screenshot(t, guest, "first-guest-name-refused-phone.png")
	if got := s.stored(t); len(got) != 0 {
		t.Fatalf("stored %q: the guest's message went out under another name", got)
	}
	// Another name, and it goes.
	setName(t, guest, "Gus")
	waitPage(t, guest, "the name taken", `document.getElementById('name').getAttribute('aria-invalid') !== 'true'`)
	do(t, guest, chromedp.Click(chromedp.ID("send")))
	waitMessages(t, guest, "the guest's message", contains("hello from a guest"))
}

// setName types name into a guest's name field, as a person does (the
// page sends it when the field changes).
func setName(t *testing.T, tab context.Context, name string) {
	t.Helper()
	eval[bool](t, tab, fmt.Sprintf(`(() => {
		const n = document.getElementById('name');
		n.value = %q;
		n.dispatchEvent(new Event('input'));
		n.dispatchEvent(new Event('change'));
		return true;
	})()`, name))
}
