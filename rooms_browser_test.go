package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// annAndBob starts NoChat with Ann its first admin, in a browser, and
// Bob, who joined through her invite link, in a browser context of his own.
func annAndBob(t *testing.T) (s *server, ann, bob context.Context) {
	t.Helper()
	ann = newBrowser(t)
	s = start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db"), "NOCHAT_MSG_RATE": "1000"})
	link, _ := setupLink(t, s)
	invite := setUpAdmin(t, ann, link, s.url)
	bob = newTab(t, ann, chromedp.WithNewBrowserContext())
	joinAs(t, bob, invite, "Bob")
	return s, ann, bob
}

// roomLinks is the sidebar's rooms as "list:title:unread" strings.
const roomLinks = `Array.from(document.querySelectorAll('#sidebar a.room-link')).map(a =>
	a.closest('ul').id + ':' + a.querySelector('.room-link-name').textContent + ':' + (a.dataset.unread || '0'))`

// clickRoom clicks the sidebar's link to the room with this title.
func clickRoom(t *testing.T, tab context.Context, title string) {
	t.Helper()
	if !eval[bool](t, tab, fmt.Sprintf(`(() => {
		const a = Array.from(document.querySelectorAll('#sidebar a.room-link')).find(a => a.querySelector('.room-link-name').textContent === %q);
		if (!a) return false;
		a.click();
		return true;
	})()`, title)) {
		t.Fatalf("no room %q in the sidebar: %v", title, eval[[]string](t, tab, roomLinks))
	}
}

// fillDialog opens a dialog with the button opener, fills its fields and
// submits it with its OK button.
func fillDialog(t *testing.T, tab context.Context, opener, dialog string, fields map[string]string, choices ...string) {
	t.Helper()
	do(t, tab, chromedp.Click(chromedp.ID(opener)), chromedp.WaitVisible(chromedp.ID(dialog)))
	for name, v := range fields {
		do(t, tab, chromedp.SetValue(fmt.Sprintf(`#%s [name=%q]`, dialog, name), v))
	}
	for _, c := range choices {
		do(t, tab, chromedp.Click(fmt.Sprintf(`#%s %s`, dialog, c)))
	}
	do(t, tab, chromedp.Click(fmt.Sprintf(`#%s button[value="ok"]`, dialog)))
}

// Two people in two browser profiles: Ann creates a private room from the
// sidebar and invites Bob from its menu; Bob's list shows it at once, with
// the unread count of what Ann wrote; opening it (no reload) shows the
// messages and clears the count; his reply reaches Ann live. A third
// person's page never shows the room. Screenshots at phone and desktop width.
func TestBrowserRoomsCreateInviteAndSwitch(t *testing.T) {
	s, ann, invite := startWithAdmin(t)

	bob := newTab(t, ann, chromedp.WithNewBrowserContext())
	joinAs(t, bob, invite, "Bob")
	cleo := newTab(t, ann, chromedp.WithNewBrowserContext())
	joinAs(t, cleo, invite, "Cleo")

	do(t, ann, chromedp.Navigate(s.url+"/"))
	connected(t, ann)
	say(t, ann, "hello lobby")
	// The header's height at a phone's width and a desktop's.
	headerHeights := func() (h [2]float64) {
		for i, w := range []int64{390, 1280} {
			do(t, ann, chromedp.EmulateViewport(w, 844))
			h[i] = eval[float64](t, ann, `document.querySelector('header.top').getBoundingClientRect().height`)
		}
		return h
	}
	lobbyHeader := headerHeights()
	fillDialog(t, ann, "new-room", "new-room-dialog", map[string]string{"name": "Family", "topic": "dinner plans"}, `input[value="private"]`)
	waitPage(t, ann, "Ann in #family", `location.pathname === "/r/family" && document.getElementById("room-name-text").textContent === "Family"`)
	if got := eval[string](t, ann, `document.getElementById("room-topic").textContent`); got != "dinner plans" {
		t.Fatalf("the room's topic shows %q", got)
	}
	// A topic's line does not make the header taller: switching rooms, the
	// messages do not jump.
	if got := headerHeights(); got != lobbyHeader {
		t.Fatalf("the header is %v px with a topic, %v px without (at 390 and 1280 px)", got, lobbyHeader)
	}
	do(t, ann, chromedp.Click(`#room-menu summary`))
	fillDialog(t, ann, "room-invite", "invite-dialog", map[string]string{"user": "bob"})
	waitPage(t, ann, "the invitation confirmed", `document.getElementById("notice").textContent.includes("Bob is in the room")`)
	// Who is in the room: Ann and Bob, not Cleo, who is not invited.
	do(t, ann, chromedp.Click(`#room-menu summary`))
	eval[bool](t, ann, `(document.getElementById("room-people").click(), true)`)
	waitPage(t, ann, "the room's people", `document.getElementById("room-people-status").textContent.startsWith("2 members, ")`)
	if got := eval[[]string](t, ann, `[...document.querySelectorAll('#room-people-list li')].map((li) => li.innerText.replace(/\s+/g, ' ').trim())`); !slices.Contains(got, "Ann you") || !slices.Contains(got, "Bob") || len(got) != 2 {
		t.Fatalf("Family's people: %q, want Ann (you) and Bob", got)
	}
	viewShot(t, ann, "room-people-1280.png")
	do(t, ann, chromedp.EmulateViewport(390, 844))
	viewShot(t, ann, "room-people-390.png")
	do(t, ann, chromedp.EmulateViewport(1280, 844))
	do(t, ann, chromedp.KeyEvent(kb.Escape))
	waitPage(t, ann, "the people dialog closed", `!document.getElementById("people-dialog").open`)
	say(t, ann, "dinner at seven")
	say(t, ann, "bring bread")
	waitMessages(t, ann, "Ann's two lines in Family", contains("bring bread"))

	// Bob's page learns of the room and counts what he has not read.
	waitPage(t, bob, "Family in Bob's list with 2 unread", `(() => {
		const a = document.querySelector('#room-list a.room-link[data-slug="family"]');
		return !!a && a.dataset.unread === "2";
	})()`)
	// The lobby's page shows none of Family's messages.
	if got := waitMessages(t, bob, "the lobby", contains("hello lobby")); len(got) != 1 {
		t.Fatalf("Bob's lobby shows %q, want only the lobby's line", got)
	}
	clickRoom(t, bob, "Family")
	waitPage(t, bob, "Family open without a reload", `location.pathname === "/r/family" && document.getElementById("room-name-text").textContent === "Family"`)
	waitMessages(t, bob, "Family's history", func(m []string) bool {
		return len(m) == 2 && m[0] == "dinner at seven" && m[1] == "bring bread"
	})
	waitPage(t, bob, "the count cleared", `!document.querySelector('#room-list a.room-link[data-slug="family"]').dataset.unread`)
	say(t, bob, "I'll bring dessert")
	waitMessages(t, ann, "Bob's reply, live", contains("I'll bring dessert"))

	// Read on Bob's page means read on every page of his: a new tab of his
	// opens with no unread in Family.
	bob2 := newTab(t, bob)
	do(t, bob2, chromedp.Navigate(s.url+"/"))
	connected(t, bob2)
	waitPage(t, bob2, "Family read in Bob's second tab", `(() => {
		const a = document.querySelector('#room-list a.room-link[data-slug="family"]');
		return !!a && !a.dataset.unread;
	})()`)

	// Cleo is not in it: not in her list, and its address is not found.
	do(t, cleo, chromedp.Navigate(s.url+"/"))
	connected(t, cleo)
	if rooms := eval[[]string](t, cleo, roomLinks); len(rooms) != 1 || rooms[0] != "room-list:Lobby:0" {
		t.Fatalf("Cleo's list is %q, want the lobby alone", rooms)
	}
	if status := getWithCookies(t, cleo, s.url+"/r/family"); status != 404 {
		t.Fatalf("Cleo opening /r/family: %d, want 404", status)
	}

	// Reload keeps the room: every room has a real address.
	do(t, bob, chromedp.Reload())
	waitMessages(t, bob, "Family after a reload", contains("I'll bring dessert"))

	screenshots(t, bob, "rooms")
	do(t, bob, chromedp.EmulateViewport(390, 844))
	do(t, bob, chromedp.Click(chromedp.ID("drawer-open")))
	// Open, and done sliding in (a 0.2 s transition): a click meanwhile
	// lands where the link is not yet.
	waitPage(t, bob, "the drawer open", `document.body.classList.contains("drawer") && getComputedStyle(document.querySelector("#sidebar")).transform === "none"`)
	viewShot(t, bob, "rooms-drawer-390.png")
	// Clicked in the page, in one step: a refresh of the list (a read in
	// Bob's other tab) may replace the link between finding it and
	// clicking it, as chromedp's Click does in several.
	clickRoom(t, bob, "Lobby")
	waitPage(t, bob, "the lobby, drawer closed", `location.pathname === "/r/lobby" && !document.body.classList.contains("drawer")`)
	// Leaving asks first, in the page's own dialog, saying how one comes
	// back to a private room.
	do(t, bob, chromedp.EmulateViewport(1280, 900))
	clickRoom(t, bob, "Family")
	waitPage(t, bob, "Family again", `location.pathname === "/r/family"`)
	do(t, bob, chromedp.EmulateViewport(390, 844), chromedp.Click(`#room-menu summary`), chromedp.Click(chromedp.ID("room-leave")))
	waitPage(t, bob, "the leave question", `document.getElementById("room-ask").open && document.getElementById("room-ask-title").textContent === "Leave Family?" && document.getElementById("room-ask-text").textContent.includes("must invite you again")`)
	viewShot(t, bob, "room-leave-ask-390.png")
	do(t, bob, chromedp.Click(`#room-ask button[value="ok"]`))
	waitPage(t, bob, "Bob out of Family, in the lobby", `location.pathname === "/r/lobby" && document.getElementById("notice").textContent === "You left Family." && !document.querySelector('#room-list a.room-link[data-slug="family"]')`)
	do(t, ann, chromedp.EmulateViewport(1280, 900), chromedp.Click(chromedp.ID("new-room")), chromedp.WaitVisible(chromedp.ID("new-room-dialog")))
	viewShot(t, ann, "rooms-new-room-1280.png")
}

// getWithCookies fetches u from inside the tab's page, with its cookies,
// and returns the status.
func getWithCookies(t *testing.T, tab context.Context, u string) int {
	t.Helper()
	return eval[int](t, tab, fmt.Sprintf(`(() => { const x = new XMLHttpRequest(); x.open("GET", %q, false); x.send(); return x.status; })()`, u))
}

// Bob finds an open room Ann made under "More rooms to join", looks in
// (its history, a Join button instead of the composer), joins, and from
// then on gets its messages live; when Ann archives it, his page says it is
// read-only and sends nothing.
func TestBrowserRoomsJoinLookInAndArchive(t *testing.T) {
	s, ann, bob := annAndBob(t)

	do(t, ann, chromedp.Navigate(s.url+"/"))
	connected(t, ann)
	fillDialog(t, ann, "new-room", "new-room-dialog", map[string]string{"name": "Garden"})
	waitPage(t, ann, "Ann in #garden", `location.pathname === "/r/garden"`)
	say(t, ann, "tomatoes are in")
	waitMessages(t, ann, "Ann's line", contains("tomatoes are in"))

	waitPage(t, bob, "Garden offered to Bob", `!!document.querySelector('#browse-list a.room-link[data-slug="garden"]')`)
	clickRoom(t, bob, "Garden")
	waitMessages(t, bob, "Garden's history", contains("tomatoes are in"))
	if !eval[bool](t, bob, `!document.getElementById("join-bar").hidden && document.getElementById("composer").hidden`) {
		t.Fatal("looking into an open room: want the Join button in place of the composer")
	}
	// Looking in is no error: the page marks nothing read in a room Bob
	// is not in (the server would refuse it, and the page say so), neither
	// from the list nor opened at its address.
	for i := range 2 {
		if i == 1 {
			do(t, bob, chromedp.Navigate(s.url+"/r/garden"))
			connected(t, bob)
			waitMessages(t, bob, "Garden's history at its address", contains("tomatoes are in"))
		}
		time.Sleep(time.Second) // the page marks what it shows read 300 ms after
		if shown := eval[string](t, bob, `document.getElementById("notice").hidden ? "" : document.getElementById("notice").textContent`); shown != "" {
			t.Fatalf("looking into Garden, Bob's page says %q", shown)
		}
	}
	do(t, bob, chromedp.Click(chromedp.ID("join-now")))
	waitPage(t, bob, "the composer after joining", `document.getElementById("join-bar").hidden && !document.getElementById("composer").hidden && !document.getElementById("message").disabled`)
	waitPage(t, bob, "Garden among Bob's rooms", `!!document.querySelector('#room-list a.room-link[data-slug="garden"]')`)
	say(t, ann, "and the beans")
	waitMessages(t, bob, "Ann's next line, live", contains("and the beans"))
	say(t, bob, "I'll water them")
	waitMessages(t, ann, "Bob's line", contains("I'll water them"))
	// Bob's browser keeps Garden for reading offline.
	workerReady(t, bob)
	do(t, bob, chromedp.Navigate(s.url+"/r/garden"))
	connected(t, bob)
	waitPageFor(t, bob, 20*time.Second, "Garden kept for offline on Bob's browser", keptCopy("garden", "", true))

	// Archiving asks first, in the page's own dialog: Cancel keeps the
	// room, and the focus goes back to the room's menu.
	do(t, ann, chromedp.Click(`#room-menu summary`), chromedp.Click(chromedp.ID("room-archive")))
	waitPage(t, ann, "the archive question", `document.getElementById("room-ask").open && document.getElementById("room-ask-title").textContent === "Archive Garden?" && document.querySelector('#room-ask button[value="ok"]').textContent === "Archive"`)
	viewShot(t, ann, "room-archive-ask-1280.png")
	do(t, ann, chromedp.Click(`#room-ask button[value="cancel"]`))
	waitPage(t, ann, "Cancel: still in Garden, the focus on the room's menu", `!document.getElementById("room-ask").open && location.pathname === "/r/garden" && document.activeElement === document.querySelector("#room-menu summary")`)
	do(t, ann, chromedp.Click(`#room-menu summary`), chromedp.Click(chromedp.ID("room-archive")))
	waitPage(t, ann, "the archive question again", `document.getElementById("room-ask").open`)
	do(t, ann, chromedp.Click(`#room-ask button[value="ok"]`))
	waitPage(t, ann, "Ann back in the lobby, told where the room went", `location.pathname === "/r/lobby" && document.getElementById("notice").textContent.startsWith("Garden is archived")`)
	waitPage(t, bob, "Bob's page read-only", `document.getElementById("message").disabled && document.getElementById("message").placeholder.includes("archived")`)
	waitPage(t, bob, "Garden gone from Bob's list", `!document.querySelector('#sidebar a.room-link[data-slug="garden"]')`)
	waitPageFor(t, bob, 20*time.Second, "Garden's copy gone from Bob's browser", keptCopy("garden", "", false))

	// Opened at its address (a bookmark, an old link), the archived room
	// says so from the start: no Join, no composer to write in, no edit
	// or delete, no Archive in its menu.
	const archivedPage = `document.getElementById("join-bar").hidden && document.getElementById("message").disabled &&
		document.getElementById("send").disabled && document.getElementById("attach").disabled &&
		document.getElementById("message").placeholder === "This room is archived: it is read-only." &&
		!document.querySelector("#messages .actions") && document.getElementById("room-archive").hidden`
	for _, who := range []struct {
		name string
		tab  context.Context
	}{{"Bob", bob}, {"Ann", ann}} {
		do(t, who.tab, chromedp.Navigate(s.url+"/r/garden"))
		waitMessages(t, who.tab, who.name+" at the archived Garden's address", contains("I'll water them"))
		waitPage(t, who.tab, who.name+"'s page of the archived Garden, read-only", archivedPage)
	}
	viewShot(t, bob, "room-archived-at-its-address-1280.png")
}

// postJSON sends a JSON request from inside the tab, with its cookies,
// and returns the status.
func postJSON(t *testing.T, tab context.Context, method, path, body string) int {
	t.Helper()
	return eval[int](t, tab, fmt.Sprintf(`(() => { const x = new XMLHttpRequest(); x.open(%q, %q, false);
		x.setRequestHeader("Content-Type", "application/json"); x.send(%q); return x.status; })()`, method, path, body))
}

// A room's page counts the other rooms' unread messages once: the server
// renders the counts, and the socket resumes after the newest message of
// any room, not after the newest of the room shown (which would hand the
// page the other rooms' messages again, counted twice). And the room shown,
// whose one message fits on the screen, counts as read once it has been
// looked at, though the page never scrolled.
func TestBrowserOtherRoomsCountedOnce(t *testing.T) {
	s, ann, bob := annAndBob(t)
	cancelTab(t, bob) // Bob is away

	do(t, ann, chromedp.Navigate(s.url+"/"))
	connected(t, ann)
	if code := postJSON(t, ann, "POST", "/rooms", `{"name":"Family Garden","topic":"Tomatoes, beans and who waters them","kind":"private","members":["Bob"]}`); code != 201 {
		t.Fatalf("Family: %d", code)
	}
	if code := postJSON(t, ann, "POST", "/rooms/family-garden/messages", `{"message":"in family"}`); code != 201 {
		t.Fatalf("a line in Family: %d", code)
	}
	for i := range 3 {
		if code := postJSON(t, ann, "POST", "/rooms/lobby/messages", fmt.Sprintf(`{"message":"lobby %d"}`, i)); code != 201 {
			t.Fatalf("a lobby line: %d", code)
		}
	}
	bob = newTab(t, ann, chromedp.WithNewBrowserContext())
	do(t, bob, chromedp.Navigate(s.url+"/signin"), chromedp.WaitVisible(chromedp.ID("name")))
	do(t, bob, chromedp.SendKeys(chromedp.ID("name"), "Bob"), chromedp.SendKeys(chromedp.ID("password"), "Bob's password"), chromedp.Submit(chromedp.ID("password")))
	waitPage(t, bob, "Bob signed in", `!!document.getElementById("messages")`)
	do(t, bob, chromedp.Navigate(s.url+"/r/family-garden"))
	connected(t, bob)
	time.Sleep(500 * time.Millisecond) // whatever the socket hands over
	if got := eval[string](t, bob, `document.querySelector('#sidebar a.room-link[data-slug="lobby"]').dataset.unread || '0'`); got != "3" {
		t.Fatalf("Bob's lobby shows %s unread on Family's page, want 3", got)
	}
	// On a phone the header shows the room's whole name, its padlock clear
	// of the rooms button's count.
	do(t, bob, chromedp.EmulateViewport(390, 844))
	if got := eval[string](t, bob, `(() => {
		const name = document.getElementById("room-name-text"), mark = document.querySelector("#room-name .room-mark");
		const badge = document.getElementById("drawer-badge");
		if (badge.hidden) return "no count on the rooms button";
		if (name.scrollWidth > name.clientWidth) return "the name is cut off: " + name.clientWidth + " of " + name.scrollWidth + " px";
		if (badge.getBoundingClientRect().right > mark.getBoundingClientRect().left) return "the count covers the padlock";
		return "";
	})()`); got != "" {
		t.Fatalf("Bob's header at 390 px: %s", got)
	}
	screenshots(t, bob, "rooms-unread")

	// Family's one message fits on Bob's screen: the page never scrolls,
	// and opening it must still count as reading it, for the server too.
	waitPage(t, bob, "Family read, as the server counts it", unreadOf("family-garden")+` === 0`)
	do(t, bob, chromedp.Navigate(s.url+"/r/lobby"))
	connected(t, bob)
	if got := eval[string](t, bob, `document.querySelector('#sidebar a.room-link[data-slug="family-garden"]').dataset.unread || '0'`); got != "0" {
		t.Fatalf("Bob's Family shows %s unread after he read it, want 0", got)
	}
}

// unreadOf is a JavaScript expression: the unread count the server gives
// the page's person for the room slug (a synchronous request, so that
// waitPage can poll it).
func unreadOf(slug string) string {
	return fmt.Sprintf(`(() => {
		const x = new XMLHttpRequest();
		x.open('GET', '/rooms?include=open', false);
		x.setRequestHeader('Accept', 'application/json');
		x.send();
		const r = JSON.parse(x.responseText).find(r => r.slug === %q);
		return r ? r.unread : -1;
	})()`, slug)
}

// TestBrowserRoomListKeepsItsLinks: the room list is read again whenever
// another tab of the same person reads a room; a link that shows what it
// showed stays the node it was, so a tap at that instant lands on it
// (before, every link was built anew, and a tap could land on a node just
// taken out of the page).
func TestBrowserRoomListKeepsItsLinks(t *testing.T) {
	s, ann, bob := annAndBob(t)
	if code := postJSON(t, ann, "POST", "/rooms", `{"name":"Family Garden","kind":"private","members":["Bob"]}`); code != 201 {
		t.Fatalf("Family: %d", code)
	}
	do(t, ann, chromedp.Navigate(s.url+"/"))
	connected(t, ann)
	if code := postJSON(t, bob, "POST", "/rooms/family-garden/messages", `{"message":"the beans are up"}`); code != 201 {
		t.Fatalf("Bob's line in Family: %d", code)
	}
	family := `document.querySelector('#sidebar a.room-link[data-slug="family-garden"]')`
	lobby := `document.querySelector('#sidebar a.room-link[data-slug="lobby"]')`
	waitPage(t, ann, "Family's unread line on Ann's lobby page", family+`?.dataset.unread === '1'`)
	do(t, ann, chromedp.Evaluate[chromedp.Void](`(() => {
		const li = `+lobby+`.closest('li');
		li.nochatMark = true;
		window.lobbyLeft = false; // the link taken out of the page, if only for a moment
		new MutationObserver((ms) => { for (const m of ms) if ([...m.removedNodes].includes(li)) window.lobbyLeft = true; })
			.observe(li.parentElement, { childList: true });
	})()`))

	// Ann reads Family in another tab: this one hears of it, reads the list
	// again and shows Family read; the lobby's link has not changed.
	other := newTab(t, ann)
	do(t, other, chromedp.Navigate(s.url+"/r/family-garden"))
	connected(t, other)
	waitPage(t, ann, "Family read in the other tab", `!`+family+`.dataset.unread`)
	if !eval[bool](t, ann, lobby+`.closest('li').nochatMark === true`) {
		t.Fatal("the lobby's link, unchanged, was built anew when the list was read again")
	}
	// A new room joins the list: the links already there stay in the page.
	if code := postJSON(t, other, "POST", "/rooms", `{"name":"Allotment","kind":"open"}`); code != 201 {
		t.Fatalf("Allotment: %d", code)
	}
	waitPage(t, ann, "Allotment on the list", `!!document.querySelector('#sidebar a.room-link[data-slug="allotment"]')`)
	if !eval[bool](t, ann, lobby+`.closest('li').nochatMark === true && !window.lobbyLeft`) {
		t.Fatal("the lobby's link was taken out of the page when a room joined the list")
	}
}

// TestBrowserOpensAtTheFirstUnreadPagesBack: a room opened with more
// unread messages than a page loads the older pages first, so that it
// opens at the first unread one under the "New" line, and marks nothing
// read until the reader has come down to the newest. With more unread than
// it loads, the line says that older unread ones sit above, and moves up
// to the first unread one as they load (before, it sat above the first
// message loaded, the older unread ones above it as if read).
func TestBrowserOpensAtTheFirstUnreadPagesBack(t *testing.T) {
	s, ann, bob := annAndBob(t)
	post := func(text string) {
		t.Helper()
		if code := postJSON(t, bob, "POST", "/rooms/lobby/messages", fmt.Sprintf(`{"message":%q}`, text)); code != 201 {
			t.Fatalf("Bob's line %q: %d", text, code)
		}
	}
	post("read before")
	do(t, ann, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(s.url+"/"))
	connected(t, ann)
	waitPage(t, ann, "the first line read, as the server counts it", unreadOf("lobby")+` === 0`)
	do(t, ann, chromedp.Navigate(s.url+"/account"))
	for i := range 120 {
		s.post(t, "zed", fmt.Sprintf("unread %d", i)) // a guest's, as fast as the tutorial's route goes
	}
	afterLine := `document.querySelector('#messages li.sep.new')?.nextElementSibling?.querySelector('.text')?.innerText`
	firstShown := `document.querySelector('#messages li.msg .text').innerText`
	label := `document.querySelector('#messages li.sep.new')?.textContent`
	lineInView := `(() => { const d = document.querySelector('#messages li.sep.new'), s = document.getElementById('scroller').getBoundingClientRect();
		const r = d?.getBoundingClientRect(); return !!r && r.top >= s.top && r.bottom <= s.bottom; })()`

	// 120 unread, more than the page's 50: it opens at unread 0.
	do(t, ann, chromedp.Navigate(s.url+"/"))
	connected(t, ann)
	waitPage(t, ann, "the room open at its first unread", afterLine+` === "unread 0" && `+lineInView)
	if got := eval[string](t, ann, label); got != "New" {
		t.Fatalf("the New line says %q, want New", got)
	}
	time.Sleep(time.Second) // a read would be marked 300 ms after
	if n := eval[int](t, ann, unreadOf("lobby")); n != 100 {
		t.Fatalf("opened at the first unread, the server counts %d unread, want all still (100: it counts to 99+)", n)
	}
	// Down to the newest: read.
	do(t, ann, chromedp.Evaluate[chromedp.Void](`document.getElementById('scroller').scrollTop = 1e9`))
	waitPage(t, ann, "all read once at the bottom", unreadOf("lobby")+` === 0`)

	// 300 unread: the 250 it loads leave 50 above, and the line says so;
	// once those load, the first loaded is the first unread, read ones
	// before it not loaded, and the line says New again (before, it went
	// on saying older unread ones were above).
	do(t, ann, chromedp.Navigate(s.url+"/account"))
	for i := range 300 {
		s.post(t, "zed", fmt.Sprintf("later %d", i))
	}
	do(t, ann, chromedp.Navigate(s.url+"/"))
	connected(t, ann)
	waitPage(t, ann, "250 loaded, the line above the first, saying older unread are above", `document.querySelectorAll('#messages li.msg').length === 250 && `+afterLine+` === `+firstShown+
		` && `+label+` === "New · older unread messages above"`)
	if got := eval[string](t, ann, firstShown); got != "later 50" {
		t.Fatalf("the first loaded is %q, want later 50", got)
	}
	viewShot(t, ann, "unread-above-1280.png")
	do(t, ann, chromedp.Evaluate[chromedp.Void](`document.getElementById('load-older').click()`))
	waitPage(t, ann, "the line above later 0 once it loads", afterLine+` === "later 0" && `+label+` === "New"`)

	if n := eval[int](t, ann, `document.querySelectorAll('#messages li.sep.new').length`); n != 1 {
		t.Fatalf("%d New lines, want 1", n)
	}
}

// Ann opens a room with many unread messages and leaves it before its
// older pages have come (they answer slowly here): to another room, whose
// reads are still marked, and to a permalink, which stays in view, with no
// New line or pages of the room she left. (Before, the first room's
// loading went on in the next: nothing was marked read again, or the
// permalink was scrolled away.)
func TestBrowserLeavingARoomWhileItLoadsItsUnread(t *testing.T) {
	s, ann, bob := annAndBob(t)
	if code := postJSON(t, ann, "POST", "/rooms", `{"name":"Family","kind":"private","members":["Bob"]}`); code != 201 {
		t.Fatalf("Family: %d", code)
	}
	if code := postJSON(t, bob, "POST", "/rooms/family/messages", `{"message":"read before"}`); code != 201 {
		t.Fatalf("Bob's first line: %d", code)
	}
	do(t, ann, chromedp.Navigate(s.url+"/r/family"))
	connected(t, ann)
	waitPage(t, ann, "Family read", unreadOf("family")+` === 0`)
	do(t, ann, chromedp.Navigate(s.url+"/account"))
	for i := range 120 {
		if code := postJSON(t, bob, "POST", "/rooms/family/messages", fmt.Sprintf(`{"message":"unread %d"}`, i)); code != 201 {
			t.Fatalf("Bob's line %d: %d", i, code)
		}
	}
	for i := range 120 {
		s.post(t, "zed", fmt.Sprintf("lobby %d", i))
	}
	slowOlderPages := chromedp.Evaluate[chromedp.Void](`(() => { const f = window.fetch;
		window.fetch = (u, o) => String(u).includes('before=') ? new Promise((r) => setTimeout(r, 1500)).then(() => f(u, o)) : f(u, o); })()`)
	openFamily := func() {
		t.Helper()
		do(t, ann, chromedp.Evaluate[chromedp.Void](`document.querySelector('#sidebar a.room-link[data-slug="family"]').click()`))
		waitPage(t, ann, "Family shown", `document.body.dataset.roomSlug === "family" && document.querySelector('#load-older').getAttribute('aria-disabled') === 'true'`)
	}

	// To the lobby: read at its bottom, as ever.
	do(t, ann, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(s.url+"/"))
	connected(t, ann)
	waitPage(t, ann, "the lobby read", unreadOf("lobby")+` === 0`)
	do(t, ann, slowOlderPages)
	openFamily()
	clickRoom(t, ann, "Lobby")
	waitPage(t, ann, "the lobby shown", `document.body.dataset.roomSlug === "lobby"`)
	time.Sleep(2 * time.Second) // Family's older page comes, late
	s.post(t, "zed", "hello again")
	waitMessages(t, ann, "the new lobby line", contains("hello again"))
	waitPage(t, ann, "the new lobby line read", unreadOf("lobby")+` === 0`)
	if n := eval[int](t, ann, `document.querySelectorAll('#messages li.msg').length`); n != 51 {
		t.Fatalf("the lobby shows %d messages, want its newest 50 and the new line", n)
	}

	// To a permalink of the lobby: it stays in view.
	target := eval[int](t, ann, `Number(document.querySelectorAll('#messages li.msg')[10].dataset.id)`)
	do(t, ann, chromedp.Reload())
	connected(t, ann)
	do(t, ann, slowOlderPages)
	openFamily()
	do(t, ann, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`history.pushState({}, '', '/r/lobby/%d'); dispatchEvent(new PopStateEvent('popstate'))`, target)))
	inView := fmt.Sprintf(`(() => { const d = document.getElementById('m-%d'), s = document.getElementById('scroller').getBoundingClientRect();
		const r = d?.getBoundingClientRect(); return !!r && r.top >= s.top && r.bottom <= s.bottom; })()`, target)
	waitPage(t, ann, "the permalink in view", `document.body.dataset.roomSlug === "lobby" && `+inView)
	time.Sleep(2 * time.Second) // Family's older page comes, late
	if !eval[bool](t, ann, inView) || eval[bool](t, ann, `!!document.querySelector('#messages li.sep.new')`) {
		t.Fatal("Family's late page moved the lobby's permalink out of view, or drew a New line in the lobby")
	}
}

// keptCopy is a page condition: whether the room's page is kept for
// offline use in the service worker's cache (holding text, unless it is
// empty) is want. Each call's answers are its own: one left by an earlier
// condition on the page does not count.
func keptCopy(slug, text string, want bool) string {
	key := fmt.Sprintf("%s|%d", slug, keptChecks.Add(1))
	return fmt.Sprintf(`(() => {
		window.kept ||= {};
		window.checking ||= caches.open("nochat-pages").then(c => c.match(location.origin + "/r/%s")).then(r => r ? r.text() : null)
			.then(html => { window.kept[%q] = html !== null && html.includes(%q); }).finally(() => { window.checking = null; });
		return window.kept[%q] === %t;
	})()`, slug, key, text, key, want)
}

// keptChecks numbers keptCopy's conditions.
var keptChecks atomic.Int64
