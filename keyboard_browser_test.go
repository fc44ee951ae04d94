package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// focused describes the element with the keyboard's focus.
const focused = `(() => { const a = document.activeElement; return a ? (a.id || a.getAttribute('aria-label') || a.className || a.tagName) : ''; })()`

// Someone who uses the keyboard alone: Enter in a dialog's field does what
// the dialog is for; a dialog gives the focus back to what opened it; Tab
// out of the room's menu or the reaction picker closes it; a search result
// takes the focus to its message, and older results to the first of them;
// another's delete of the message one is on moves the focus on, not to the
// page's start; on a phone the drawer keeps Tab in it and gives the focus
// back as it closes.
func TestBrowserKeyboardAlone(t *testing.T) {
	s, ann, bob := annAndBob(t)
	do(t, ann, chromedp.Navigate(s.url+"/"))
	connected(t, ann)

	// Enter in the name of a new room makes it, and the keyboard is in
	// its message box (Cancel came first in the form, and Enter took it).
	do(t, ann, chromedp.Focus(chromedp.ID("new-room")), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("new-room-dialog")))
	do(t, ann, chromedp.SendKeys(`#new-room-dialog [name="name"]`, "Printers"+kb.Enter))
	waitPage(t, ann, "Printers made with Enter, its message box focused", `document.getElementById("room-name-text").textContent === "Printers" && document.activeElement.id === "message"`)
	viewShot(t, ann, "keys-message-box-1280.png")
	// Cancel with the keys sends nothing and gives the focus back.
	do(t, ann, chromedp.Focus(chromedp.ID("new-room")), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("new-room-dialog")))
	do(t, ann, chromedp.SendKeys(`#new-room-dialog [name="name"]`, "Not this one"), chromedp.Focus(`#new-room-dialog button[data-close]`), chromedp.KeyEvent(kb.Enter))
	waitPage(t, ann, "the dialog cancelled, the focus on its opener", `!document.getElementById("new-room-dialog").open && document.activeElement.id === "new-room"`)
	if got := eval[[]string](t, ann, roomLinks); fmt.Sprint(got) != "[room-list:Lobby:0 room-list:Printers:0]" {
		t.Fatalf("rooms after a made and a cancelled one: %v", got)
	}
	// A name a room in sight has already, in another case, is refused in
	// the dialog, which stays open with the words and the name to mend.
	do(t, ann, chromedp.Focus(chromedp.ID("new-room")), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("new-room-dialog")))
	do(t, ann, chromedp.Evaluate[chromedp.Void](`document.querySelector('#new-room-dialog [name="name"]').value = ""`), chromedp.SendKeys(`#new-room-dialog [name="name"]`, "printers"+kb.Enter))
	waitPage(t, ann, "the taken name said in the open dialog", `document.getElementById("new-room-dialog").open && !document.querySelector("#new-room-dialog .form-error").hidden && document.querySelector("#new-room-dialog .form-error").textContent.includes("there is a room called “Printers” already") && document.activeElement.name === "name"`)
	viewShot(t, ann, "keys-room-name-taken-1280.png")
	do(t, ann, chromedp.KeyEvent(kb.Escape))
	waitPage(t, ann, "the refused dialog closed by Escape", `!document.getElementById("new-room-dialog").open && document.activeElement.id === "new-room"`)

	// A dialog from the room's menu gives the focus back to the menu's
	// button: the item that opened it is hidden with the menu.
	for _, close := range []chromedp.Action[chromedp.Void]{chromedp.KeyEvent(kb.Escape), chromedp.KeyEvent(kb.Enter)} {
		do(t, ann, chromedp.Focus(`#room-menu summary`), chromedp.KeyEvent(kb.Enter))
		waitPage(t, ann, "the room's menu open", `document.getElementById("room-menu").open`)
		do(t, ann, chromedp.Focus(chromedp.ID("room-people")), chromedp.KeyEvent(kb.Enter))
		waitPage(t, ann, "the people dialog", `document.getElementById("people-dialog").open && document.getElementById("room-people-status").textContent.includes("member")`)
		do(t, ann, close) // Escape, or Enter on its Close
		waitPage(t, ann, "the focus back on the room's menu button", `!document.getElementById("people-dialog").open && document.activeElement === document.querySelector("#room-menu summary")`)
	}
	// Tab past the menu's last item closes it.
	do(t, ann, chromedp.KeyEvent(kb.Enter))
	waitPage(t, ann, "the room's menu open again", `document.getElementById("room-menu").open`)
	eval[bool](t, ann, `(() => { const items = [...document.querySelectorAll('#room-menu button, #room-menu a, #room-menu input')].filter((el) => el.checkVisibility()); items[items.length - 1].focus(); return true; })()`)
	do(t, ann, chromedp.KeyEvent(kb.Tab))
	waitPage(t, ann, "the menu closed as the focus left it", `!document.getElementById("room-menu").open && !document.getElementById("room-menu").contains(document.activeElement)`)

	// Bob writes in the lobby; Ann is on his first message's ☺+.
	clickRoom(t, ann, "Lobby")
	waitPage(t, ann, "the lobby", `document.body.dataset.roomSlug === "lobby"`)
	for i := range 25 {
		say(t, bob, fmt.Sprintf("lathe note %d", i+1))
	}
	waitMessages(t, ann, "Bob's 25 lines", contains("lathe note 25"))
	first := eval[string](t, ann, `[...document.querySelectorAll('#messages li.msg')].find((li) => li.querySelector('.text')?.textContent === 'lathe note 24').id`)
	// Each action names the message it is for.
	if got := eval[string](t, ann, `document.querySelector("#`+first+` .act-react").getAttribute("aria-label")`); got != "React to Bob’s message “lathe note 24”" {
		t.Fatalf("the ☺+ of Bob's message is named %q", got)
	}
	// Focused without scrolling (a scroll closes the picker), and once the
	// page has settled: on a loaded machine the burst's last frames may
	// still redraw the list, which takes the focus with the line it drops.
	focusReact := `(() => { const b = document.querySelector("#` + first + ` .act-react"); b.focus({preventScroll: true}); return document.activeElement === b; })()`
	for try := 0; ; try++ {
		if eval[bool](t, ann, focusReact) {
			time.Sleep(200 * time.Millisecond)
			if eval[bool](t, ann, `document.activeElement === document.querySelector("#`+first+` .act-react")`) {
				break
			}
		}
		if try == 50 {
			t.Fatal("☺+ of Bob's message never kept the focus")
		}
		time.Sleep(100 * time.Millisecond)
	}
	do(t, ann, chromedp.KeyEvent(kb.Enter))
	waitPage(t, ann, "the picker open, the focus in it", `!document.getElementById("picker").hidden && document.getElementById("picker").contains(document.activeElement)`)
	do(t, ann, chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(1<<3))) // Shift+Tab off its first emoji
	waitPage(t, ann, "Shift+Tab out of the picker: closed, back on ☺+", fmt.Sprintf(`document.getElementById("picker").hidden && document.activeElement === document.querySelector("#%s .act-react")`, first))
	do(t, ann, chromedp.KeyEvent(kb.Enter))
	waitPage(t, ann, "the picker open again", `!document.getElementById("picker").hidden`)
	eval[bool](t, ann, `(() => { const stops = [...document.querySelectorAll('#picker button, #picker input')].filter((el) => el.checkVisibility()); stops[stops.length - 1].focus(); return true; })()`)
	do(t, ann, chromedp.KeyEvent(kb.Tab))
	waitPage(t, ann, "Tab out of the picker: closed, back on ☺+", fmt.Sprintf(`document.getElementById("picker").hidden && document.activeElement === document.querySelector("#%s .act-react")`, first))
	// With a mouse, ☺+ again closes the picker: a press focuses the button
	// (leaving the picker) before its click, which must still find it open.
	do(t, ann, chromedp.KeyEvent(kb.Enter))
	waitPage(t, ann, "the picker open for the mouse", `!document.getElementById("picker").hidden`)
	eval[bool](t, ann, `(() => { const b = document.querySelector("#`+first+` .act-react"); b.focus(); b.click(); return true; })()`)
	waitPage(t, ann, "the picker closed by its button pressed again", fmt.Sprintf(`document.getElementById("picker").hidden && document.activeElement === document.querySelector("#%s .act-react")`, first))

	// Bob deletes that message: Ann's focus goes to the next one's
	// actions, not to the page's start.
	id := first[len("m-"):]
	if status := postJSON(t, bob, "DELETE", "/rooms/lobby/messages/"+id, ""); status != 204 {
		t.Fatalf("Bob's delete: %v", status)
	}
	waitPage(t, ann, "the deleted line gone, the focus on the next", fmt.Sprintf(`!document.getElementById(%q) && document.activeElement.closest("li.msg")?.querySelector(".text")?.textContent === "lathe note 25"`, first))

	// The list is one stop of Tab: in at one message, ↑ and ↓ between
	// messages, Tab into one's links and actions and on out of the list,
	// Shift+Tab back in at the message last visited.
	text := `document.activeElement.matches("li.msg") ? document.activeElement.querySelector(".text").textContent : ""`
	do(t, ann, chromedp.Focus(chromedp.ID("scroller")), chromedp.KeyEvent(kb.Tab))
	if got := eval[string](t, ann, text); got != "lathe note 25" {
		t.Fatalf("Tab into the list is at %q (%s), want the newest message", got, eval[string](t, ann, focused))
	}
	do(t, ann, chromedp.KeyEvent(kb.ArrowUp), chromedp.KeyEvent(kb.ArrowUp))
	if got := eval[string](t, ann, text); got != "lathe note 22" {
		t.Fatalf("↑ twice from the newest: at %q, want lathe note 22 (24 is deleted)", got)
	}
	do(t, ann, chromedp.KeyEvent(kb.ArrowDown))
	if got := eval[string](t, ann, text); got != "lathe note 23" {
		t.Fatalf("↓ once: at %q, want lathe note 23", got)
	}
	// Its first stop is its time, its link: heard with whose message it
	// is. ↑ and ↓ go on from there, as from the message.
	do(t, ann, chromedp.KeyEvent(kb.Tab))
	if got := eval[string](t, ann, `document.activeElement.matches("a.permalink") ? document.activeElement.getAttribute("aria-label") : document.activeElement.outerHTML.slice(0, 120)`); got != eval[string](t, ann, `document.activeElement.textContent`)+", Bob’s message “lathe note 23”" {
		t.Fatalf("the first stop in a message is named %q, want its time as shown and whose message", got)
	}
	// Nothing of that name is text on the page, which a copy would carry.
	if got := eval[string](t, ann, `document.getElementById("messages").textContent`); strings.Contains(got, "Bob’s message") {
		t.Fatal("the list's text holds the messages' names for screen readers: a copy of the chat would carry them")
	}
	do(t, ann, chromedp.KeyEvent(kb.ArrowUp))
	if got := eval[string](t, ann, text); got != "lathe note 22" {
		t.Fatalf("↑ from a message's link: at %q, want lathe note 22", got)
	}
	do(t, ann, chromedp.KeyEvent(kb.ArrowDown))
	if got := eval[string](t, ann, text); got != "lathe note 23" {
		t.Fatalf("↓ back: at %q, want lathe note 23", got)
	}
	stops := 0
	for eval[bool](t, ann, `document.getElementById("messages").contains(document.activeElement)`) {
		if stops++; stops > 8 {
			t.Fatalf("8 Tabs from a message and still in the list, at %s", eval[string](t, ann, `document.activeElement.outerHTML.slice(0, 120)`))
		}
		do(t, ann, chromedp.KeyEvent(kb.Tab))
	}
	if stops < 3 {
		t.Fatalf("Tab left the message after %d stops: its link and actions were skipped", stops)
	}
	if got := eval[string](t, ann, focused); got == "BODY" || eval[bool](t, ann, `document.activeElement.closest("header.top") !== null`) {
		t.Fatalf("Tab out of the list went to %q", got)
	}
	do(t, ann, chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(1<<3)))
	if got := eval[string](t, ann, text); got != "lathe note 23" {
		t.Fatalf("Shift+Tab back into the list: at %q (%s), want the message last visited", got, eval[string](t, ann, focused))
	}

	// Typing @ offers names, and says so to those who do not see the list.
	do(t, ann, chromedp.Focus(chromedp.ID("message")), chromedp.SendKeys(chromedp.ID("message"), "@B"))
	viewShot(t, ann, "keys-mention-1280.png")
	waitPage(t, ann, "the names offered, and said", `!document.getElementById("mention-list").hidden && document.getElementById("message").getAttribute("aria-activedescendant") === "mention-0" && [...document.querySelectorAll('[role="status"]')].some((el) => el.textContent === "1 name to mention: arrows choose, Enter picks")`)
	// Enter picks (dispatched in the page: the protocol's key events type
	// the Enter's character into the box even when the page prevents it).
	do(t, ann, chromedp.Evaluate[chromedp.Void](`document.getElementById("message").dispatchEvent(new KeyboardEvent("keydown", {key: "Enter", bubbles: true, cancelable: true}))`))
	waitPage(t, ann, "Bob picked", `document.getElementById("message").value === "@Bob " && document.getElementById("mention-list").hidden`)
	eval[bool](t, ann, `(document.getElementById("message").value = "", true)`)

	// Search: Enter on a result puts the focus on its message; older
	// results put it on the first of them.
	do(t, ann, chromedp.Focus(chromedp.ID("scroller")), chromedp.KeyEvent("/"))
	waitPage(t, ann, "the search box", `document.getElementById("search-dialog").open && document.activeElement.id === "search-q"`)
	do(t, ann, chromedp.SendKeys(chromedp.ID("search-q"), "lathe"))
	waitPage(t, ann, "20 results and more", `document.querySelectorAll("#search-results li").length === 20 && !document.getElementById("search-more").hidden`)
	do(t, ann, chromedp.Focus(chromedp.ID("search-more")), chromedp.KeyEvent(kb.Enter))
	waitPage(t, ann, "the older results, the focus on the first of them", `document.querySelectorAll("#search-results li").length === 24 && document.activeElement === document.querySelector("#search-results li:nth-child(21) a")`)
	hit := eval[string](t, ann, `document.activeElement.dataset.id`)
	do(t, ann, chromedp.KeyEvent(kb.Enter))
	waitPage(t, ann, "the result's message focused", fmt.Sprintf(`!document.getElementById("search-dialog").open && document.activeElement.matches("li.msg") && document.activeElement.id === "m-%s"`, hit))
	do(t, ann, chromedp.KeyEvent(kb.ArrowDown))
	if got := eval[string](t, ann, `document.activeElement.matches("li.msg") ? document.activeElement.id : document.activeElement.tagName`); got == "m-"+hit || !strings.HasPrefix(got, "m-") {
		t.Fatalf("↓ from the result's message: at %s, want the message after m-%s", got, hit)
	}

	// On a phone the drawer keeps Tab in it; Escape gives the focus back
	// to its button; a room chosen in it gives it to the message box.
	do(t, ann, chromedp.EmulateViewport(390, 844))
	do(t, ann, chromedp.Focus(chromedp.ID("drawer-open")), chromedp.KeyEvent(kb.Enter))
	waitPage(t, ann, "the drawer open, the focus in it", `document.body.classList.contains("drawer") && document.getElementById("sidebar").contains(document.activeElement)`)
	viewShot(t, ann, "keys-drawer-390.png")
	for i := range 14 {
		do(t, ann, chromedp.KeyEvent(kb.Tab))
		if where := eval[string](t, ann, `document.activeElement.closest("header.top, main, footer.bottom, .skip") ? document.activeElement.outerHTML.slice(0, 80) : ""`); where != "" {
			t.Fatalf("Tab %d left the open drawer for %s", i+1, where)
		}
	}
	// Escape in a dialog opened from the drawer closes the dialog alone.
	do(t, ann, chromedp.Focus(chromedp.ID("new-room")), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("new-room-dialog")))
	do(t, ann, chromedp.KeyEvent(kb.Escape))
	waitPage(t, ann, "the dialog closed, the drawer open, the focus on +", `!document.getElementById("new-room-dialog").open && document.body.classList.contains("drawer") && document.activeElement.id === "new-room"`)
	do(t, ann, chromedp.KeyEvent(kb.Escape))
	waitPage(t, ann, "Escape: the drawer closed, the focus on its button", `!document.body.classList.contains("drawer") && document.activeElement.id === "drawer-open"`)
	do(t, ann, chromedp.KeyEvent(kb.Enter))
	waitPage(t, ann, "the drawer open again", `document.body.classList.contains("drawer")`)
	do(t, ann, chromedp.Focus(`#sidebar a.room-link[data-slug="printers"]`), chromedp.KeyEvent(kb.Enter))
	waitPage(t, ann, "Printers chosen: the drawer closed, the focus in the message box", `document.body.dataset.roomSlug === "printers" && !document.body.classList.contains("drawer") && document.activeElement.id === "message"`)
	if got := eval[string](t, ann, focused); got != "message" {
		t.Fatalf("focus on %q", got)
	}
	// A drawer left open as the window widens past a phone's closes: the
	// page behind it must not stay inert.
	do(t, ann, chromedp.Focus(chromedp.ID("drawer-open")), chromedp.KeyEvent(kb.Enter))
	waitPage(t, ann, "the drawer open once more", `document.body.classList.contains("drawer") && document.getElementById("scroller").inert`)
	do(t, ann, chromedp.EmulateViewport(1280, 844))
	waitPage(t, ann, "wide: the drawer closed, nothing inert", `!document.body.classList.contains("drawer") && !document.getElementById("scroller").inert && !document.querySelector("footer.bottom").inert`)
}

// "Load older messages" pressed from the keyboard keeps the keyboard where
// it was: on the button while there are older ones still, then on the
// oldest message. (It was disabled while loading, which threw the focus
// to the top of the page.)
func TestBrowserLoadOlderKeepsTheKeyboard(t *testing.T) {
	tab := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db"), "NOCHAT_MSG_RATE": "1000"})
	for i := range 120 {
		s.post(t, "zed", fmt.Sprintf("line %d", i))
	}
	do(t, tab, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(s.url+"/"))
	connected(t, tab)
	waitPage(t, tab, "the button offered", `!document.getElementById("load-older").hidden`)
	do(t, tab, chromedp.Evaluate[chromedp.Void](`document.getElementById("load-older").focus()`))
	do(t, tab, chromedp.KeyEvent(kb.Enter))
	waitPage(t, tab, "a page more, the keyboard still on the button", `document.querySelectorAll("#messages li.msg[data-id]").length === 100 &&
		document.getElementById("load-older").getAttribute("aria-disabled") !== "true" && document.activeElement === document.getElementById("load-older")`)
	do(t, tab, chromedp.KeyEvent(kb.Enter))
	waitPage(t, tab, "the last page, the keyboard on the oldest message", `document.querySelectorAll("#messages li.msg[data-id]").length === 120 &&
		document.getElementById("load-older").hidden && document.activeElement === document.querySelector("#messages li.msg[data-id]") &&
		document.activeElement.textContent.includes("line 0")`)
}
