package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"nochat/db"
)

// Time in the list, as a person coming back sees it: a separator for each
// day (yesterday's messages under "Yesterday", today's under "Today"); a
// "New" divider above the first message since they last read, with the
// room opened there; recent times relative; the message box focused; and
// Page Up, Page Down, Home and End scrolling the list from the box.
func TestBrowserDaysNewDividerAndKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nochat.db")
	// Two messages from yesterday, before the server starts.
	store, err := db.Open(context.Background(), path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Insert(context.Background(), []db.Draft{{User: "old", Message: "yesterday one"}, {User: "old", Message: "yesterday two"}}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	y := time.Now().Add(-24 * time.Hour)
	if _, err := raw.Exec("UPDATE messages SET timestamp = ?", y.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	browser := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": path, "NOCHAT_MSG_RATE": "1000"})
	link, _ := setupLink(t, s)
	ann := newTab(t, browser)
	browserSetUp(t, ann, link)
	connected(t, ann)
	say(t, ann, "read up to here")
	waitMessages(t, ann, "Ann's line", contains("read up to here"))
	time.Sleep(500 * time.Millisecond) // the page marks it read (at the bottom, shown)
	cancelTab(t, ann)

	// While Ann is away, 60 lines.
	for i := range 60 {
		s.post(t, "bob", fmt.Sprintf("while you were away %d", i+1))
	}
	ann = newTab(t, browser)
	do(t, ann, chromedp.EmulateViewport(1000, 700), chromedp.Navigate(s.url+"/"))
	connected(t, ann)
	// 63 messages: yesterday's two, Ann's, Bob's 60. The page shows the
	// newest 50, Bob's 11th to 60th, all new to Ann, so it loads the page
	// before them too: Yesterday, Today, Ann's line, New, then Bob's 60.
	waitPage(t, ann, "the page before the unread ones loaded", `document.querySelector('#messages li.sep.new')?.nextElementSibling?.querySelector('.text')?.innerText === "while you were away 1"`)
	items := eval[[]string](t, ann, `Array.from(document.querySelectorAll('#messages > li')).map(li =>
		li.classList.contains('sep') ? '[' + li.textContent + ']' : li.querySelector('.text').innerText)`)
	if len(items) != 66 || items[0] != "[Yesterday]" || items[3] != "[Today]" || items[4] != "read up to here" || items[5] != "[New]" ||
		items[6] != "while you were away 1" || items[65] != "while you were away 60" {
		t.Fatalf("the list is %q", items)
	}
	// Opened where the new ones begin, not at the bottom.
	if !eval[bool](t, ann, `(() => {
		const s = document.getElementById('scroller'), d = document.querySelector('#messages li.sep.new');
		const y = d.getBoundingClientRect().top - s.getBoundingClientRect().top;
		return y >= 0 && y < 60 && s.scrollHeight - s.scrollTop - s.clientHeight > 100;
	})()`) {
		t.Fatalf("the room did not open at its first unread message: %s", eval[string](t, ann, `(() => { const s = document.getElementById('scroller'); return s.scrollTop + ' of ' + s.scrollHeight + ' in ' + s.clientHeight; })()`))
	}

	// Fewer unread: load the page after reading, then three more.
	eval[bool](t, ann, `(document.getElementById('scroller').scrollTop = 1e9, true)`)
	time.Sleep(600 * time.Millisecond)
	cancelTab(t, ann)
	for i := range 3 {
		s.post(t, "bob", fmt.Sprintf("new %d", i+1))
	}
	ann = newTab(t, browser)
	do(t, ann, chromedp.EmulateViewport(1000, 700), chromedp.Navigate(s.url+"/"))
	connected(t, ann)
	if got := eval[string](t, ann, `(() => {
		const d = document.querySelector('#messages li.sep.new');
		return d ? d.nextElementSibling.querySelector('.text').innerText : 'no divider';
	})()`); got != "new 1" {
		t.Fatalf("the New divider is above %q, want above \"new 1\"", got)
	}
	if got := eval[string](t, ann, `document.querySelector('#messages li.msg:last-child time').textContent`); got != "now" && !strings.Contains(got, "min") {
		t.Fatalf("a message of just now shows its time as %q, want a relative time", got)
	}
	if !eval[bool](t, ann, `document.activeElement === document.getElementById('message')`) {
		t.Fatal("the message box does not have focus on load")
	}
	// The keys scroll the list from the box.
	top := func() int { return eval[int](t, ann, `Math.round(document.getElementById('scroller').scrollTop)`) }
	eval[bool](t, ann, `(document.getElementById('scroller').scrollTop = 1e9, true)`)
	bottom := top()
	do(t, ann, chromedp.KeyEvent(kb.PageUp))
	if up := top(); up >= bottom {
		t.Fatalf("Page Up from the message box: scrollTop %d, was %d", up, bottom)
	}
	do(t, ann, chromedp.KeyEvent(kb.Home))
	waitPage(t, ann, "Home at the top", `document.getElementById('scroller').scrollTop === 0`)
	do(t, ann, chromedp.KeyEvent(kb.End))
	waitPage(t, ann, "End at the bottom", `(() => { const s = document.getElementById('scroller'); return s.scrollHeight - s.scrollTop - s.clientHeight < 2; })()`)
	// Yesterday's messages, when loaded, sit under Yesterday.
	do(t, ann, chromedp.Click(chromedp.ID("load-older"))) // the 13 older: all of them
	waitPage(t, ann, "yesterday's lines under Yesterday", `(() => {
		const seps = Array.from(document.querySelectorAll('#messages li.sep.day')).map(s => s.textContent);
		return seps[0] === 'Yesterday' && seps.includes('Today');
	})()`)
	eval[bool](t, ann, `(document.getElementById('scroller').scrollTop = 0, true)`)
	screenshots(t, ann, "days") // and the page never scrolls sideways
}
