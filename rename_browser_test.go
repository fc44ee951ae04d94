package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A page re-sends its unacknowledged queue under the name each item first
// went under, not the name it has now: the server de-duplicates cids per
// sender name, so a message stored before a rename (its ack lost) would
// otherwise be stored a second time. The page's own name is kept for what
// it sends next.
func TestBrowserResendsUnderTheFirstName(t *testing.T) {
	browser := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")})

	// Two sends as ann that the server stored but whose acks the page
	// never saw: the first as this page writes its queue (with sentAs),
	// the second as an older page did (the name only in user).
	ann := dialV1(t, s.url, "ann")
	ann.sendOK("stored before the rename", "cid-before-rename-1")
	ann.sendOK("also stored before the rename", "cid-before-rename-2")
	queue, _ := json.Marshal([]map[string]any{
		{"cid": "cid-before-rename-1", "message": "stored before the rename", "user": "ann", "ts": 1, "sentAs": "ann"},
		{"cid": "cid-before-rename-2", "message": "also stored before the rename", "user": "ann", "ts": 2},
	})

	// The page comes back with the queue in its storage, renamed bob.
	do(t, browser, chromedp.Navigate(s.url+"/"))
	connected(t, browser)
	eval[bool](t, browser, fmt.Sprintf(`localStorage.setItem('nochat.name', 'bob'); localStorage.setItem('nochat.pending', %q); true`, queue))
	do(t, browser, chromedp.Reload())
	connected(t, browser)
	waitMessages(t, browser, "the queue resolved", func(shown []string) bool {
		return !slices.ContainsFunc(shown, func(m string) bool { return strings.HasPrefix(m, "…") })
	})
	say(t, browser, "after the rename")
	waitMessages(t, browser, "the new message", contains("after the rename"))

	var msgs []struct{ User, Message string }
	if err := json.Unmarshal([]byte(s.get(t, "/discussion/latest/100")), &msgs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		got = append(got, m.User+": "+m.Message)
	}
	want := []string{"ann: stored before the rename", "ann: also stored before the rename", "bob: after the rename"}
	if !slices.Equal(got, want) {
		t.Fatalf("stored %q, want %q: a re-send under the new name is stored twice", got, want)
	}
}
