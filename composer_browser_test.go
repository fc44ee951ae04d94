package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// paste puts text into the message box as a paste or an IME would: in one
// insertion, through the browser's editing, so any maxlength applies.
func paste(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	do(t, ctx, chromedp.Focus(chromedp.ID("message")))
	if _, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: text}); err != nil {
		t.Fatal(err)
	}
}

// clearBox empties the message box as deleting its text would.
func clearBox(t *testing.T, ctx context.Context) {
	t.Helper()
	eval[bool](t, ctx, `(() => {
		const m = document.getElementById('message');
		m.value = '';
		m.dispatchEvent(new Event('input'));
		return true;
	})()`)
}

// composer is what the writer sees of the message box.
type composer struct {
	Length   int    // UTF-16 units in the box, trimmed, as JavaScript counts
	Counter  string // the counter's text, "" while it is hidden
	Disabled bool   // the send button
}

func composerState(t *testing.T, ctx context.Context) composer {
	t.Helper()
	return eval[composer](t, ctx, `(() => {
		const c = document.getElementById('counter');
		return {Length: document.getElementById('message').value.trim().length,
			Counter: c.hidden ? '' : c.textContent,
			Disabled: document.getElementById('send').disabled};
	})()`)
}

func TestBrowserLongPasteIsCountedAndRefusedNotCut(t *testing.T) {
	browser := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")})
	do(t, browser, chromedp.EmulateViewport(390, 800), chromedp.Navigate(s.url+"/"))
	connected(t, browser)

	// Short: no counter.
	paste(t, browser, "hello")
	if got := composerState(t, browser); got.Counter != "" || got.Disabled {
		t.Fatalf("a short message shows %+v, want no counter and the button enabled", got)
	}

	// 2,500 characters: all kept, the overshoot said, sending refused.
	clearBox(t, browser)
	paste(t, browser, strings.Repeat("x", 2500))
	got := composerState(t, browser)
	if got.Length != 2500 {
		t.Fatalf("the box holds %d of the 2,500 characters pasted: cut silently", got.Length)
	}
	if !got.Disabled || !strings.Contains(got.Counter, "500 characters over") {
		t.Fatalf("a 2,500-character message shows %+v, want the button disabled and \"500 characters over\"", got)
	}
	screenshot(t, browser, "composer-over-390.png")
	// (chromedp's Enter inserts a newline even when the page prevents the
	// key, as the composer does: Length is counted trimmed.)
	do(t, browser, chromedp.SendKeys(chromedp.ID("message"), "\r"))
	do(t, browser, chromedp.EmulateViewport(1280, 800))
	screenshot(t, browser, "composer-over-1280.png")
	if n := eval[int](t, browser, `document.querySelectorAll('#messages li.msg').length`); n != 0 {
		t.Fatalf("Enter with a message over the limit put %d messages on the page", n)
	}
	if got := composerState(t, browser); got.Length != 2500 {
		t.Fatalf("Enter with a message over the limit left %d characters in the box, want all 2,500", got.Length)
	}

	// Counted as the server counts: 2,000 emoji are 4,000 UTF-16 units but
	// 2,000 characters; the white space around them is trimmed, a CRLF
	// inside is one character. Within the limit: sendable, and stored whole.
	clearBox(t, browser)
	text := "  " + strings.Repeat("😀", 1000) + "\r\n" + strings.Repeat("😀", 999) + " \n"
	paste(t, browser, text)
	got = composerState(t, browser)
	if got.Disabled || !strings.Contains(got.Counter, "2,000 / 2,000") {
		t.Fatalf("2,000 characters as the server counts them show %+v, want \"2,000 / 2,000\" and the button enabled", got)
	}
	do(t, browser, chromedp.Click(chromedp.ID("send")))
	waitMessages(t, browser, "the 2,000-emoji message stored", func(msgs []string) bool {
		return len(msgs) == 1 && !strings.HasPrefix(msgs[0], "…")
	})
	var stored []struct{ Message string }
	if err := json.Unmarshal([]byte(s.get(t, "/discussion/latest/1")), &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || utf8.RuneCountInString(stored[0].Message) != 2000 {
		t.Fatalf("stored %d messages; want one of 2,000 characters", len(stored))
	}
	if got := composerState(t, browser); got.Length != 0 || got.Counter != "" || got.Disabled {
		t.Fatalf("after sending, the composer shows %+v, want it empty", got)
	}
}

func TestBrowserLoadOlderOnlyWhenThereIsSomethingOlder(t *testing.T) {
	browser := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db"), "NOCHAT_MSG_RATE": "0"})
	for i := range 50 {
		s.post(t, "ann", fmt.Sprint("m", i+1))
	}
	olderShown := `!document.getElementById('load-older').hidden`

	// Exactly one page, nothing older: no button.
	do(t, browser, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(s.url+"/"))
	connected(t, browser)
	waitMessages(t, browser, "the 50 messages", func(m []string) bool { return len(m) == 50 })
	if eval[bool](t, browser, olderShown) {
		t.Fatal("50 messages and nothing older, yet the page offers to load older messages")
	}

	// One more: the first is older than the page.
	s.post(t, "ann", "m51")
	do(t, browser, chromedp.Reload())
	connected(t, browser)
	waitMessages(t, browser, "m2 to m51", func(m []string) bool { return len(m) == 50 && m[0] == "m2" && m[49] == "m51" })
	if !eval[bool](t, browser, olderShown) {
		t.Fatal("51 messages, 50 shown, but no way to load the older one")
	}
	do(t, browser, chromedp.Click(chromedp.ID("load-older")))
	waitMessages(t, browser, "m1 loaded", func(m []string) bool { return len(m) == 51 && m[0] == "m1" })
	waitPage(t, browser, "the button gone once nothing is older", `document.getElementById('load-older').hidden`)
	screenshot(t, browser, "history-1280.png")
}

func TestChatPageTakesTheMessageLimitFromTheFlag(t *testing.T) {
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")}, "-max-message", "300")
	page := s.get(t, "/")
	if !strings.Contains(page, `data-max-length="300"`) || strings.Contains(page, `maxlength="2000"`) {
		t.Fatal(`with -max-message 300 the page's message box does not carry data-max-length="300"`)
	}
}

// Loading older messages keeps the message the reader was looking at where
// it was on the screen, to the pixel.
func TestBrowserLoadingOlderKeepsTheReadersPlace(t *testing.T) {
	browser := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db"), "NOCHAT_MSG_RATE": "0"})
	// Runs of messages by one person, as a chat has: a run split by a page's
	// edge joins into one group once the older part loads.
	for i := range 130 {
		s.post(t, []string{"ann", "bob"}[i/4%2], fmt.Sprint("m", i+1))
	}
	for _, width := range []int64{390, 1280} {
		do(t, browser, chromedp.EmulateViewport(width, 800), chromedp.Navigate(s.url+"/"))
		connected(t, browser)
		waitMessages(t, browser, "the newest page", func(m []string) bool { return len(m) == 50 && m[49] == "m130" })
		for round := range 2 {
			// The reader scrolls to the top and looks at the oldest message shown.
			first := eval[string](t, browser, `(() => {
				document.querySelector('#messages li[id^="m-"]').scrollIntoView({block: 'start'});
				return document.querySelector('#messages li[id^="m-"]').id;
			})()`)
			time.Sleep(200 * time.Millisecond) // scroll events settle
			top := func() float64 {
				return eval[float64](t, browser, `document.querySelector('#`+first+` .text').getBoundingClientRect().top`)
			}
			before := top()
			// Clicked as the reader does, without scrolling to the button first.
			eval[bool](t, browser, `(document.getElementById('load-older').click(), true)`)
			want := 50 * (round + 2)
			waitMessages(t, browser, "older messages loaded", func(m []string) bool { return len(m) == min(want, 130) })
			time.Sleep(300 * time.Millisecond)
			if after := top(); math.Abs(after-before) > 1 {
				t.Errorf("at %d px, round %d: loading older messages moved %s from %.0f to %.0f px", width, round+1, first, before, after)
			}
		}
	}
}
