package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// hookPost POSTs body to a webhook's URL with a plain Go client, as a
// tool would, and returns the status.
func hookPost(t *testing.T, url, contentType, body string) int {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// setHookName puts name in the dialog's name field as it is (past its
// maxlength, which typing would stop at) and leaves the focus there.
func setHookName(t *testing.T, tab context.Context, name string) {
	t.Helper()
	eval[bool](t, tab, fmt.Sprintf(`(() => { const i = document.querySelector('#hooks-form [name="name"]'); i.value = %q; i.focus(); return true; })()`, name))
}

// roomHooksShown is whether the room menu offers "Webhooks…".
const roomHooksShown = `!document.getElementById("room-hooks").hidden`

// Bob makes a room and, from its menu, alone with the keyboard, makes an
// incoming webhook: a name the server refuses is told in the dialog; the
// URL and curl lines are shown once; a plain POST and a Slack-shaped one
// to that URL land in the room on his page; Escape closes the dialog and
// focus goes back to the menu; he deletes it (asked first) and its URL is
// refused. Cleo, a member, is not offered the dialog; Ann, an admin, is.
func TestBrowserRoomHooksFromTheRoomMenu(t *testing.T) {
	s, ann, invite := startWithAdmin(t)
	bob := newTab(t, ann, chromedp.WithNewBrowserContext())
	joinAs(t, bob, invite, "Bob")
	cleo := newTab(t, ann, chromedp.WithNewBrowserContext())
	joinAs(t, cleo, invite, "Cleo")

	fillDialog(t, bob, "new-room", "new-room-dialog", map[string]string{"name": "Garage", "members": "Cleo"})
	waitPage(t, bob, "Bob in #garage", `location.pathname === "/r/garage" && document.getElementById("room-name-text").textContent === "Garage"`)
	waitPage(t, bob, "Webhooks… offered to the room's creator", roomHooksShown)

	// Keyboard: open the menu, choose Webhooks…, focus is in the dialog.
	do(t, bob, chromedp.Focus(`#room-menu summary`), chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.ID("room-hooks")))
	do(t, bob, chromedp.Focus(chromedp.ID("room-hooks")), chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.ID("hooks-dialog")))
	waitPage(t, bob, "focus in the dialog, the list read", `document.activeElement === document.querySelector('#hooks-form [name="name"]') && document.getElementById("hooks-status").textContent === "No webhooks yet."`)

	// A name the server refuses (longer than a name may be): its words
	// in the dialog, which stays open.
	setHookName(t, bob, strings.Repeat("w", 40))
	do(t, bob, chromedp.KeyEvent("\r"))
	waitPage(t, bob, "the refusal in the dialog", `!document.querySelector("#hooks-form .form-error").hidden && document.querySelector("#hooks-form .form-error").textContent.length > 5 && document.getElementById("hooks-dialog").open && document.getElementById("hooks-new").hidden`)
	do(t, bob, chromedp.EmulateViewport(390, 844))
	viewShot(t, bob, "roomhooks-refused-390.png")
	do(t, bob, chromedp.EmulateViewport(1000, 760))

	setHookName(t, bob, "")
	do(t, bob, chromedp.SendKeys(`#hooks-form [name="name"]`, "Garage door\r"))
	waitPage(t, bob, "the new webhook's URL", `document.getElementById("hook-url").value.includes("/hooks/") && !document.getElementById("hooks-new").hidden && document.querySelector("#hooks-form .form-error").hidden`)
	url := eval[string](t, bob, `document.getElementById("hook-url").value`)
	if !strings.HasPrefix(url, s.url+"/hooks/") {
		t.Fatalf("the dialog's URL is %q, want it on %s", url, s.url)
	}
	if curl := eval[string](t, bob, `document.getElementById("hook-curl").value + "\n" + document.getElementById("hook-curl-json").value`); strings.Count(curl, url) != 2 || !strings.HasPrefix(curl, "curl ") {
		t.Fatalf("the dialog's curl lines:\n%s\nwant both with %s", curl, url)
	}
	if got := eval[string](t, bob, `[...document.querySelectorAll("#hooks-list li.hook .hook-name")].map(e => e.textContent).join("|")`); got != "Garage door" {
		t.Fatalf("the dialog lists %q, want the new webhook", got)
	}
	do(t, bob, chromedp.Click(`button[data-copy="hook-url"]`))
	waitPage(t, bob, "the Copy button's answer", `["Copied", "Press Ctrl+C"].includes(document.querySelector('button[data-copy="hook-url"]').textContent)`)
	screenshots(t, bob, "roomhooks")

	if code := hookPost(t, url, "text/plain", "The garage door is open"); code != http.StatusOK {
		t.Fatalf("plain text to the webhook: %d", code)
	}
	if code := hookPost(t, url, "application/json", `{"text": "The garage door is closed", "username": "Door"}`); code != http.StatusOK {
		t.Fatalf("Slack's JSON to the webhook: %d", code)
	}
	waitMessages(t, bob, "both of the webhook's messages", func(m []string) bool {
		// The hook names a Slack payload's username in the line.
		return contains("The garage door is open")(m) && contains("Door: The garage door is closed")(m)
	})

	// Escape closes it; the URL leaves the page; focus is on the menu.
	do(t, bob, chromedp.KeyEvent(kb.Escape))
	waitPage(t, bob, "the dialog closed, focus on the room menu", `!document.getElementById("hooks-dialog").open && document.activeElement === document.querySelector("#room-menu summary") && document.getElementById("hook-url").value === ""`)

	// Again: listed, used; Delete asks first, Cancel keeps it.
	do(t, bob, chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.ID("room-hooks")), chromedp.Click(chromedp.ID("room-hooks")), chromedp.WaitVisible(chromedp.ID("hooks-dialog")))
	waitPage(t, bob, "the webhook listed, used", `(() => {
		const li = document.querySelector('#hooks-list li.hook[data-name="Garage door"]');
		return !!li && li.querySelector(".hook-when").textContent.includes("last used");
	})()`)
	do(t, bob, chromedp.Click(`#hooks-list li.hook .hook-delete`))
	waitPage(t, bob, "the question, Cancel focused", `document.querySelector("#hooks-list .hook-ask .hook-q").textContent === "Delete the webhook Garage door?" && document.activeElement.textContent === "Cancel"`)
	do(t, bob, chromedp.EmulateViewport(390, 844))
	viewShot(t, bob, "roomhooks-delete-390.png")
	do(t, bob, chromedp.EmulateViewport(1000, 760))
	do(t, bob, chromedp.KeyEvent("\r"))
	waitPage(t, bob, "kept after Cancel", `!document.querySelector("#hooks-list .hook-ask") && !document.querySelector("#hooks-list li.hook").hidden`)
	if code := hookPost(t, url, "text/plain", "still here"); code != http.StatusOK {
		t.Fatalf("the webhook after Cancel: %d, want 200", code)
	}
	do(t, bob, chromedp.Click(`#hooks-list li.hook .hook-delete`), chromedp.Click(`#hooks-list .hook-confirm`))
	waitPage(t, bob, "the webhook gone from the list", `!document.querySelector("#hooks-list li") && document.getElementById("hooks-status").textContent.includes("Deleted the webhook Garage door")`)
	if code := hookPost(t, url, "text/plain", "after delete"); code != http.StatusNotFound {
		t.Fatalf("the deleted webhook's URL: %d, want 404", code)
	}

	// Cleo is in the room but does not manage it: no Webhooks…, on the
	// page as served and after switching rooms in the page.
	do(t, cleo, chromedp.Navigate(s.url+"/r/garage"))
	connected(t, cleo)
	waitMessages(t, cleo, "the room's messages", contains("still here"))
	if eval[bool](t, cleo, roomHooksShown) {
		t.Fatal("Cleo, a member who does not manage the room, is offered its webhooks")
	}
	clickRoom(t, cleo, "Lobby")
	waitPage(t, cleo, "the lobby", `location.pathname === "/r/lobby"`)
	clickRoom(t, cleo, "Garage")
	waitPage(t, cleo, "Garage again, without Webhooks…", `location.pathname === "/r/garage" && document.getElementById("room-hooks").hidden`)
	if code := getWithCookies(t, cleo, s.url+"/rooms/garage/webhooks"); code != http.StatusForbidden {
		t.Fatalf("Cleo listing the room's webhooks: %d, want 403", code)
	}

	// Ann, an admin, manages every room: offered it.
	do(t, ann, chromedp.Navigate(s.url+"/r/garage"))
	connected(t, ann)
	waitPage(t, ann, "Webhooks… offered to an admin", roomHooksShown)
}
