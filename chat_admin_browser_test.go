package main

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"
)

// An admin deletes a message from the chat page; a reader in another browser
// context (no admin cookie) has no delete control and sees it disappear.
func TestBrowserAdminDeletesFromTheChatPage(t *testing.T) {
	browser := newBrowser(t)
	s := startAdmin(t)
	s.post(t, "ann", "keep this")
	s.post(t, "spammer", "spam to delete")
	spam := s.idOf(t, "spam to delete")

	// A reader in a browser context of its own: no admin cookie.
	reader := newTab(t, browser, chromedp.WithNewBrowserContext())
	do(t, reader, chromedp.Navigate(s.url+"/"))
	connected(t, reader)
	waitMessages(t, reader, "the spam", contains("spam to delete"))
	if n := eval[int](t, reader, `document.querySelectorAll('button.delete, #delete-dialog').length`); n != 0 {
		t.Fatalf("a reader who is not an admin sees %d delete controls", n)
	}

	browserAdminLogin(t, browser, s)
	do(t, browser, chromedp.Navigate(s.url+"/"))
	connected(t, browser)
	waitMessages(t, browser, "the spam", contains("spam to delete"))
	li := fmt.Sprintf(`#m-%d`, spam)
	// A tap on the line shows its actions (headless Chromium has no
	// hovering pointer, as a phone has none).
	do(t, browser, chromedp.Click(chromedp.CSS(li+` .text`)), chromedp.Click(chromedp.CSS(li+` button.delete`)), chromedp.WaitVisible(chromedp.ID("delete-dialog")))
	if got := eval[string](t, browser, `document.getElementById('delete-text').textContent`); got != "spam to delete" {
		t.Fatalf("the dialog quotes %q", got)
	}
	do(t, browser, chromedp.EmulateViewport(390, 844))
	screenshot(t, browser, "chat-delete-phone.png")
	do(t, browser, chromedp.EmulateViewport(1280, 900))
	screenshot(t, browser, "chat-delete-desktop.png")
	do(t, browser, chromedp.Click(chromedp.CSS(`#delete-dialog button[value="ok"]`)))

	for _, tab := range []context.Context{browser, reader} {
		waitMessages(t, tab, "the spam gone", func(m []string) bool { return slices.Equal(m, []string{"keep this"}) })
	}
	if got := s.stored(t); !slices.Equal(got, []string{"keep this"}) {
		t.Fatalf("stored after the delete: %q", got)
	}
	// A message that arrives later gets the control too.
	s.post(t, "bob", "later")
	waitMessages(t, browser, "the later message", contains("later"))
	waitPage(t, browser, "its delete control", `[...document.querySelectorAll('#messages li.msg')].find(li => li.textContent.includes('later'))?.querySelector('button.delete') != null`)
}

// A keyboard-only admin is in the message box on load, and gets back to it
// in two keys from the top of the page, however many messages (each with
// its Delete button) the page shows: the first Tab brings up a "Skip to
// the message box" link, and Enter follows it.
func TestBrowserAdminSkipsToTheMessageBox(t *testing.T) {
	browser := newBrowser(t)
	s := startAdmin(t)
	for i := 1; i <= 20; i++ {
		s.post(t, "ann", fmt.Sprintf("line %d", i))
	}
	browserAdminLogin(t, browser, s)
	do(t, browser, chromedp.Navigate(s.url+"/"))
	connected(t, browser)
	waitPage(t, browser, "the delete controls", `document.querySelectorAll('#messages button.delete').length === 20`)

	if !eval[bool](t, browser, `document.activeElement.id === "message"`) {
		t.Fatal("the message box does not have focus on load")
	}
	// From the top of the page (focus nowhere), as after a click on its
	// background.
	do(t, browser, chromedp.Evaluate[chromedp.Void](`(b => { b.tabIndex = -1; b.focus(); b.removeAttribute('tabindex'); })(document.body)`))
	do(t, browser, chromedp.KeyEvent("\t"))
	link := `(() => { const f = document.activeElement; const r = f.getBoundingClientRect();
		return f.textContent + (r.top >= 0 && r.bottom <= innerHeight ? ' (in view)' : ' (out of view)'); })()`
	if got := eval[string](t, browser, link); got != "Skip to the message box (in view)" {
		t.Fatalf("the first Tab focuses %q, want the skip link, in view", got)
	}
	do(t, browser, chromedp.KeyEvent("\r"))
	waitPage(t, browser, "focus in the message box", `document.activeElement.id === "message"`)
	do(t, browser, chromedp.KeyEvent("typed without a pointer"), chromedp.KeyEvent("\r"))
	waitMessages(t, browser, "the typed message", contains("typed without a pointer"))

	// Out of the keyboard's way, the link is out of sight.
	do(t, browser, chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
	if eval[bool](t, browser, `document.querySelector('a.skip').getBoundingClientRect().bottom > 0`) {
		t.Fatal("the skip link shows without focus")
	}
}
