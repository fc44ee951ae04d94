package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// An admin bans a member from the dashboard, with their messages, while
// others watch: the messages leave the open pages, and the banned
// person's page stops and says why.

// joinAs opens an invite link in tab and joins as name.
func joinAs(t *testing.T, tab context.Context, invite, name string) {
	t.Helper()
	do(t, tab, chromedp.Navigate(invite), chromedp.WaitVisible(chromedp.ID("name")))
	do(t, tab,
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("password"), name+"'s password"),
		chromedp.Submit(chromedp.ID("password")),
	)
	waitPage(t, tab, "the chat page", `location.pathname === "/" && !!document.getElementById("messages")`)
	connected(t, tab)
}

// personMenu opens the Manage menu of name's row on the dashboard.
func personMenu(t *testing.T, admin context.Context, name string) {
	t.Helper()
	do(t, admin, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#people-list tr[data-person=%q] summary`, name))))
}

// personButton clicks a button in name's open Manage menu by its text.
func personButton(t *testing.T, admin context.Context, name, text string) {
	t.Helper()
	if !eval[bool](t, admin, fmt.Sprintf(`(() => {
		const b = Array.from(document.querySelectorAll('#people-list tr[data-person=%q] .menu button')).find(b => b.textContent.trim().startsWith(%q));
		if (!b) return false;
		b.click();
		return true;
	})()`, name, text)) {
		t.Fatalf("no %q button for %s", text, name)
	}
}

// viewShot saves what the viewport shows now, where screenshot saves the
// whole page: at a phone's width the whole dashboard is too long to read.
func viewShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("NOCHAT_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBrowserBanDeletesMessagesFromOpenPages(t *testing.T) {
	admin := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")})
	link, _ := setupLink(t, s)
	// Ann sets up in a tab she then closes: a chat page left by navigating
	// away may keep its socket a while (Chromium's back/forward cache), and
	// the dashboard would count it.
	setup := newTab(t, admin)
	browserSetUp(t, setup, link)
	cancelTab(t, setup)
	do(t, admin, chromedp.Navigate(s.url+"/admin"), chromedp.WaitVisible(chromedp.ID("people")))
	invite := eval[string](t, admin, `document.getElementById("invite-link").href`)

	bob := newTab(t, admin, chromedp.WithNewBrowserContext())
	joinAs(t, bob, invite, "Bob")
	say(t, bob, "buy cheap watches")
	say(t, bob, "really cheap")
	waitMessages(t, bob, "Bob's messages", contains("really cheap"))
	s.post(t, "Cleo", "a guest's line stays")

	// Someone else watches the room, in a browser context of its own.
	watcher := newTab(t, admin, chromedp.WithNewBrowserContext())
	do(t, watcher, chromedp.Navigate(s.url+"/"))
	connected(t, watcher)
	waitMessages(t, watcher, "Bob's messages", func(m []string) bool {
		return slices.Contains(m, "buy cheap watches") && slices.Contains(m, "really cheap")
	})

	do(t, admin, chromedp.Navigate(s.url+"/admin"), chromedp.WaitVisible(chromedp.ID("people-list")))
	waitPage(t, admin, "Bob online with 2 messages", `(() => {
		const row = document.querySelector('#people-list tr[data-person="Bob"]');
		return !!row && row.querySelector('.msgs').textContent.includes('2') && row.querySelector('.online').textContent.includes('1');
	})()`)
	// The list is not reloaded, but who is online follows the live part:
	// Ann opens the chat in two tabs of her browser.
	for range 2 {
		tab := newTab(t, admin)
		do(t, tab, chromedp.Navigate(s.url+"/"))
		connected(t, tab)
	}
	waitPage(t, admin, "Ann's two open pages on the list", `document.querySelector('#people-list tr[data-person="Ann"] .online .n').textContent === "2"`)

	// A reset link first: shown once, with a copy button.
	personMenu(t, admin, "Bob")
	personButton(t, admin, "Bob", "Password reset link")
	waitPage(t, admin, "the reset link", `!!document.getElementById("reset-link") && document.getElementById("reset-link").value.includes("/reset/")`)
	waitPage(t, admin, "focus on the new link", `document.activeElement && document.activeElement.id === "reset-link"`)
	// The whole box is in sight: its heading is not above the screen.
	if top := eval[float64](t, admin, `document.querySelector(".reset-box").getBoundingClientRect().top`); top < 0 {
		t.Fatalf("the reset link's box starts %v px above the screen", -top)
	}
	// The link's page, as its holder sees it (opening it spends nothing).
	reset := eval[string](t, admin, `document.getElementById("reset-link").value`)
	holder := newTab(t, admin, chromedp.WithNewBrowserContext())
	for _, width := range []int64{390, 1280} {
		do(t, holder, chromedp.EmulateViewport(width, 800), chromedp.Navigate(reset), chromedp.WaitVisible(chromedp.ID("password")))
		if eval[bool](t, holder, `document.documentElement.scrollWidth > window.innerWidth`) {
			t.Fatalf("the reset page scrolls sideways at %d px", width)
		}
		screenshot(t, holder, fmt.Sprintf("reset-%d.png", width))
	}
	for _, dark := range []bool{false, true} {
		scheme := "light"
		if dark {
			scheme = "dark"
		}
		if _, err := chromedp.Call(admin, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}}); err != nil {
			t.Fatal(err)
		}
		for _, width := range []int64{390, 1280} {
			do(t, admin, chromedp.EmulateViewport(width, 900), chromedp.ScrollIntoView(chromedp.ID("people")))
			if eval[bool](t, admin, `document.documentElement.scrollWidth > window.innerWidth`) {
				t.Fatalf("the dashboard scrolls sideways at %d px", width)
			}
			personMenu(t, admin, "Bob")
			screenshot(t, admin, fmt.Sprintf("admin-people-%s-%d.png", scheme, width))
			viewShot(t, admin, fmt.Sprintf("admin-people-%s-%d-view.png", scheme, width))
			personMenu(t, admin, "Bob") // closed again
		}
	}

	// The menu by keyboard: Enter opens it, Tab reaches its buttons,
	// Escape closes it and gives focus back.
	do(t, admin, chromedp.Focus(chromedp.CSS(`#people-list tr[data-person="Bob"] summary`)), chromedp.KeyEvent("\r"))
	waitPage(t, admin, "Bob's menu open", `document.querySelector('#people-list tr[data-person="Bob"] details').open`)
	do(t, admin, chromedp.KeyEvent("\t"))
	if got := eval[string](t, admin, `document.activeElement.closest('.menu') ? document.activeElement.textContent.trim() : '(outside the menu)'`); got != "Make admin" {
		t.Fatalf("Tab from the open menu's button reaches %q, want Make admin", got)
	}
	do(t, admin, chromedp.KeyEvent(kb.Escape))
	waitPage(t, admin, "the menu closed, focus on its button", `!document.querySelector('#people-list tr[data-person="Bob"] details').open && document.activeElement.matches('#people-list tr[data-person="Bob"] summary')`)

	personMenu(t, admin, "Bob")
	personButton(t, admin, "Bob", "Ban and delete")
	do(t, admin, chromedp.WaitVisible(chromedp.ID("confirm")))
	if q := eval[string](t, admin, `document.getElementById("confirm-title").textContent`); !strings.Contains(q, "Ban Bob and delete their messages?") {
		t.Fatalf("the question = %q", q)
	}
	do(t, admin, chromedp.Click(chromedp.ID("confirm-ok")))

	waitMessages(t, watcher, "Bob's messages gone", func(m []string) bool {
		return !slices.Contains(m, "buy cheap watches") && !slices.Contains(m, "really cheap") && slices.Contains(m, "a guest's line stays")
	})
	waitPage(t, bob, "why Bob's page stopped", `document.getElementById("status").dataset.state === "ended" && document.getElementById("notice").textContent.includes("banned by an admin") && !document.getElementById("notice").hidden`)
	if !eval[bool](t, bob, `document.getElementById("message").disabled && document.getElementById("send").disabled`) {
		t.Fatal("the banned page still offers to send")
	}
	screenshot(t, bob, "banned-page.png")
	viewShot(t, bob, "banned-page-view.png")
	waitPage(t, admin, "Bob banned on the list and in the audit", `(() => {
		const row = document.querySelector('#people-list tr[data-person="Bob"]');
		const audit = document.querySelector('#audit');
		return !!row && row.classList.contains('person-banned') && !!audit && audit.textContent.includes('ban') && audit.textContent.includes('2 messages deleted') && audit.textContent.includes('reset link');
	})()`)
	if body := s.get(t, "/discussion/latest/10"); strings.Contains(body, "cheap") {
		t.Fatalf("history still holds Bob's messages: %s", body)
	}
	do(t, admin, chromedp.EmulateViewport(1280, 900), chromedp.ScrollIntoView(chromedp.ID("audit")))
	screenshot(t, admin, "admin-audit-1280.png")
}

// A role given or taken on the dashboard reaches the person's open page at
// once: made an admin, Bob's page offers to delete others' messages and
// says so; a member again, the buttons go. (His page kept what it was
// opened with until a reload, and the server refused what it offered.)
func TestBrowserARoleReachesThePersonsOpenPage(t *testing.T) {
	s, ann, bob := annAndBob(t)
	do(t, bob, chromedp.Navigate(s.url+"/"))
	connected(t, bob)
	do(t, ann, chromedp.Navigate(s.url+"/"))
	connected(t, ann)
	say(t, ann, "Ann's line")
	waitMessages(t, bob, "Ann's line on Bob's page", contains("Ann's line"))
	deletable := msgLine("Ann's line") + `?.querySelector(".act-delete")`
	if eval[bool](t, bob, "!!"+deletable) {
		t.Fatal("Bob, a member, is offered to delete Ann's message")
	}
	role := func(button string) {
		t.Helper()
		do(t, ann, chromedp.Navigate(s.url+"/admin"), chromedp.WaitVisible(chromedp.ID("people")))
		personMenu(t, ann, "Bob")
		personButton(t, ann, "Bob", button)
		do(t, ann, chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.Click(chromedp.ID("confirm-ok")))
	}
	role("Make admin")
	waitPage(t, bob, "Bob's page, an admin's", `!!`+deletable+` && document.getElementById("notice").textContent.startsWith("You are an admin now")`)
	role("Remove admin")
	waitPage(t, bob, "Bob's page, a member's again", `!`+deletable+` && document.getElementById("notice").textContent === "You are no longer an admin."`)
}

// A person's Last seen on the dashboard ages as the page stays open: it
// said "3m 17s ago" for as long as the page was open.
func TestBrowserLastSeenAgesOnTheDashboard(t *testing.T) {
	s, ann, bob := annAndBob(t)
	do(t, bob, chromedp.Navigate("about:blank"))
	do(t, ann, chromedp.Navigate(s.url+"/admin"), chromedp.WaitVisible(chromedp.ID("people")))
	const seen = `document.querySelector('#people-list tr[data-person="Bob"] .seen').textContent`
	waitPageFor(t, ann, 20*time.Second, "Bob last seen some seconds ago", `/^\d+s ago$/.test(`+seen+`)`)
	first := eval[string](t, ann, seen)
	waitPageFor(t, ann, 20*time.Second, "Bob's Last seen older", fmt.Sprintf(`/^\d+s ago$/.test(%s) && parseInt(%s) >= parseInt(%q) + 2`, seen, seen, first))
}
