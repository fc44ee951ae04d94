package main

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"
)

// inView is whether the message with this id is on screen in the list,
// and marked as the one opened.
func inView(id int64) string {
	return fmt.Sprintf(`(() => {
		const li = document.getElementById("m-%d");
		if (!li || !li.classList.contains("focus")) return false;
		const r = li.getBoundingClientRect(), s = document.getElementById("scroller").getBoundingClientRect();
		return r.top >= s.top && r.bottom <= s.bottom;
	})()`, id)
}

// A person lists what one sender wrote (from: alone), then searches for an
// old message (far beyond the newest 50 the page shows), sees it
// highlighted among the results, and opens it: the room
// scrolls to it, marked, with the history around it; the permalink opened
// as an address does the same, and "jump to the newest" comes back to the
// present. Screenshots at phone and desktop width, light and dark.
func TestBrowserSearchAndPermalink(t *testing.T) {
	ann := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db"), "NOCHAT_MSG_RATE": "1000"})
	link, _ := setupLink(t, s)
	browserSetUp(t, ann, link)
	connected(t, ann)

	for i := range 120 {
		text := fmt.Sprintf("line %d of the day", i)
		if i == 10 {
			text = "Who still has the kayak from the trip? <b>asking</b> for a friend"
		}
		s.post(t, "zed", text)
	}
	do(t, ann, chromedp.Navigate(s.url+"/"))
	connected(t, ann)
	waitMessages(t, ann, "the newest lines", contains("line 119 of the day"))
	if got := eval[bool](t, ann, `!!Array.from(document.querySelectorAll("#messages .text")).find(e => e.textContent.includes("kayak"))`); got {
		t.Fatal("the kayak message is on the page before any search: the test needs it beyond the newest page")
	}

	do(t, ann, chromedp.Click(chromedp.ID("search-open")), chromedp.WaitVisible(chromedp.ID("search-q")))
	// A filter alone lists what it keeps, newest first.
	do(t, ann, chromedp.SendKeys(chromedp.ID("search-q"), "from:zed"))
	waitPage(t, ann, "zed's newest messages", `document.querySelectorAll("#search-results a.search-hit").length === 20 &&
		document.querySelector("#search-results .hit-text").textContent === "line 119 of the day" &&
		document.getElementById("search-status").textContent === "The 20 newest messages; there are older ones" &&
		!document.getElementById("search-more").hidden`)
	viewShot(t, ann, "search-older.png")
	// The older ones, a page at a time, to the first: every one once,
	// newest first.
	for page := 2; !eval[bool](t, ann, `document.getElementById("search-more").hidden`); page++ {
		if page > 8 {
			t.Fatal("Show older results never ends at 120 messages")
		}
		do(t, ann, chromedp.Click(chromedp.ID("search-more")))
		waitPage(t, ann, fmt.Sprintf("page %d of zed's messages", page), fmt.Sprintf(`document.querySelectorAll("#search-results a.search-hit").length === %d && !document.getElementById("search-status").textContent.startsWith("Loading")`, min(page*20, 120)))
	}
	hits := eval[[]int64](t, ann, `[...document.querySelectorAll("#search-results a.search-hit")].map(a => Number(a.dataset.id))`)
	if len(hits) != 120 || !slices.IsSortedFunc(hits, func(a, b int64) int { return cmp.Compare(b, a) }) || slices.Compact(slices.Clone(hits))[119] != hits[119] {
		t.Fatalf("all of zed's messages: %d results %v, want 120, newest first, each once", len(hits), hits)
	}
	if got := eval[string](t, ann, `document.getElementById("search-status").textContent`); got != "120 messages, newest first" {
		t.Fatalf("at the last page the search says %q", got)
	}
	eval[string](t, ann, `document.getElementById("search-q").value = ""`)
	do(t, ann, chromedp.SendKeys(chromedp.ID("search-q"), "kay"))
	waitPage(t, ann, "one result, highlighted", `document.querySelectorAll("#search-results a.search-hit").length === 1 &&
		document.querySelector("#search-results mark")?.textContent === "kayak"`)
	// The message's HTML is text in the snippet: no <b> element.
	if eval[bool](t, ann, `!!document.querySelector("#search-results b")`) || !eval[bool](t, ann, `document.querySelector("#search-results .hit-text").textContent.includes("<b>asking</b>")`) {
		t.Fatal("the snippet's text is not shown as text")
	}
	screenshots(t, ann, "search")
	id := int64(eval[float64](t, ann, `Number(document.querySelector("#search-results a.search-hit").dataset.id)`))

	do(t, ann, chromedp.Click(`#search-results a.search-hit`))
	waitPage(t, ann, "the message opened in its room", fmt.Sprintf(`location.pathname === "/r/lobby/%d" && !document.getElementById("search-dialog").open`, id))
	waitPage(t, ann, "the message in view and marked", inView(id))
	waitMessages(t, ann, "the history around it", func(m []string) bool { return len(m) > 20 && m[0] != "line 0 of the day" || len(m) > 20 })
	if eval[bool](t, ann, `document.getElementById("load-newer").hidden`) {
		t.Fatal("no way to the newest messages from the permalink's past")
	}

	// The permalink as an address: the server renders the same.
	do(t, ann, chromedp.Navigate(fmt.Sprintf("%s/r/lobby/%d", s.url, id)))
	connected(t, ann)
	waitPage(t, ann, "the permalink's page at the message", inView(id))
	screenshots(t, ann, "permalink")
	waitPage(t, ann, "still at the message after the screenshots", `!!document.querySelector("#messages li.msg.focus")`)

	// A live message meanwhile does not land below a gap: it is offered.
	s.post(t, "zed", "live while reading the past")
	waitPage(t, ann, "the newer button", `!document.getElementById("load-newer").hidden`)
	if eval[bool](t, ann, `document.getElementById("messages").textContent.includes("live while reading the past")`) {
		t.Fatal("a live message was appended below the permalink's history")
	}
	do(t, ann, chromedp.Click(chromedp.ID("load-newer")))
	waitMessages(t, ann, "back at the newest", contains("live while reading the past"))
	waitPage(t, ann, "the room's own address", `location.pathname === "/r/lobby" && document.getElementById("load-newer").hidden`)

	// Every message's time links to its permalink.
	href := eval[string](t, ann, `document.querySelector("#messages li.msg:last-of-type a.permalink").getAttribute("href")`)
	last := eval[float64](t, ann, `Number(document.querySelector("#messages li.msg:last-of-type").dataset.id)`)
	if want := fmt.Sprintf("/r/lobby/%d", int64(last)); href != want {
		t.Fatalf("the newest message's time links to %q, want %q", href, want)
	}
}
