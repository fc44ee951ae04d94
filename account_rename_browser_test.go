package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// A rename as people see it, in Chromium: Ann has the chat open in two
// tabs (one entry in presence) and renames herself on /account in a third;
// both of her tabs, and Bob's page in another profile, show the new name
// at once: in the header, the composer, presence, and on the messages
// already on the page (rendered by the server and by app.js alike).

// colorScheme emulates prefers-color-scheme: "light" or "dark".
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	})
}

// screenshots takes the tab at a phone's and a desktop's size, light and
// dark, as name-WIDTH-SCHEME.png, and fails if the page scrolls sideways.
func screenshots(t *testing.T, tab context.Context, name string) {
	t.Helper()
	for _, size := range []struct{ w, h int64 }{{390, 844}, {1280, 900}} {
		for _, scheme := range []string{"light", "dark"} {
			do(t, tab, chromedp.EmulateViewport(size.w, size.h), colorScheme(scheme))
			if eval[bool](t, tab, `document.documentElement.scrollWidth > window.innerWidth`) {
				t.Errorf("%s scrolls sideways at %d px", name, size.w)
			}
			screenshot(t, tab, fmt.Sprintf("%s-%d-%s.png", name, size.w, scheme))
		}
	}
	do(t, tab, chromedp.EmulateViewport(1000, 760), colorScheme("light"))
}

// authorsOf is what the page shows as the author of each message of the
// account with id, and the initials of their avatars.
func authorsOf(id int) string {
	return fmt.Sprintf(`[...document.querySelectorAll('li.msg[data-user-id="%d"]')].map(li => li.querySelector('.user').textContent + '/' + li.querySelector('.avatar').dataset.initials).join(' ')`, id)
}

// guestColor is the colour class number of a guest's name: FNV-1a, as
// views and app.js pick it.
func guestColor(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	return strconv.Itoa(int(h.Sum32() % 8))
}

// presencePopup is the presence list as text, and the count.
const presencePopup = `[...document.querySelectorAll('#online-users li')].map(li => li.textContent).join(' | ') + ' / ' + document.querySelector('#online-count').textContent`

func TestBrowserTwoTabsAreOnePresenceEntryAndARenameReachesBoth(t *testing.T) {
	browser := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")})
	link, _ := setupLink(t, s)
	browserSetUp(t, browser, link)
	connected(t, browser)
	say(t, browser, "hello from Ann")
	waitMessages(t, browser, "Ann's message", contains("hello from Ann"))
	// Sign-up open, so that Bob can join without the invite link.
	status, err := chromedp.Run(browser, chromedp.Evaluate[int](`fetch("/admin/join-policy", {method: "POST", body: new URLSearchParams({policy: "open"})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || status != 200 {
		t.Fatalf("opening sign-up: %d %v", status, err)
	}

	second := newTab(t, browser)
	do(t, second, chromedp.Navigate(s.url+"/"))
	connected(t, second)

	bob := newBrowser(t) // another profile: another person
	do(t, bob, chromedp.Navigate(s.url+"/join"), chromedp.WaitVisible(chromedp.ID("name")))
	do(t, bob,
		chromedp.SendKeys(chromedp.ID("name"), "Bob"),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse"),
		chromedp.Submit(chromedp.ID("password")),
	)
	waitPage(t, bob, "Bob's chat page", `location.pathname === "/" && !!document.getElementById("messages")`)
	connected(t, bob)
	say(t, bob, "hi from Bob")
	waitMessages(t, second, "Bob's message", contains("hi from Bob"))
	// A guest too, marked as one.
	s.post(t, "zed", "a guest's hello")
	waitMessages(t, bob, "the guest's message", contains("a guest's hello"))
	if got := eval[string](t, bob, `[...document.querySelectorAll('li.msg[data-guest]')].map(li => li.querySelector('.by').textContent + '/' + li.querySelector('.avatar').className).join(' ')`); got != "zed guest/avatar guest c"+guestColor("zed") {
		t.Fatalf("the guest's message shows %q, want zed with a guest tag and a hollow avatar", got)
	}

	do(t, bob, chromedp.Click(chromedp.CSS("#presence summary")))
	waitPage(t, bob, "Ann once with two devices", presencePopup+` === 'Ann2 devices | Bobyou / 2'`)
	do(t, second, chromedp.Click(chromedp.CSS("#presence summary")))
	waitPage(t, second, "Ann once with two devices, as you", presencePopup+` === 'Annyou2 devices | Bob / 2'`)
	screenshots(t, bob, "chat-before-rename")
	// On a phone the header shows the avatar alone, and the link still
	// says whose account it is.
	do(t, bob, chromedp.EmulateViewport(390, 844))
	if got := eval[string](t, bob, `(() => { const a = document.getElementById("account"); return a.querySelector(".account-name").getBoundingClientRect().width <= 1 ? a.textContent.trim() : "the name shown" })()`); got != "Bob" {
		t.Fatalf("the phone's account link = %q, want no visible name and Bob as its text", got)
	}
	do(t, bob, chromedp.EmulateViewport(1000, 760))

	// The rename, on /account in a third tab of Ann's.
	account := newTab(t, browser)
	do(t, account, chromedp.Navigate(s.url+"/account"), chromedp.WaitVisible(chromedp.ID("new-name")))
	screenshots(t, account, "account")
	// Bob's name, in capitals: refused, saying why, what was typed kept.
	eval[bool](t, account, `(document.getElementById("new-name").value = "", true)`)
	do(t, account,
		chromedp.SendKeys(chromedp.ID("new-name"), "BOB"),
		chromedp.Submit(chromedp.ID("new-name")),
	)
	waitPage(t, account, "the refusal", `document.querySelector(".problem")?.textContent === "That name is taken: pick another." && document.getElementById("new-name").value === "BOB" && document.querySelector("h1").textContent === "Ann"`)
	screenshots(t, account, "account-refused")
	eval[bool](t, account, `(document.getElementById("new-name").value = "", true)`)
	do(t, account,
		chromedp.SendKeys(chromedp.ID("new-name"), "Annie Hall"),
		chromedp.Submit(chromedp.ID("new-name")),
	)
	waitPage(t, account, "the rename done, at /account", `document.querySelector(".done")?.textContent.includes("Your name is now Annie Hall") && document.querySelector("h1").textContent === "Annie Hall" && location.pathname === "/account"`)
	if got := eval[string](t, account, `document.querySelector(".who-am-i .avatar").dataset.initials`); got != "AH" {
		t.Fatalf("the account page's avatar shows %q, want AH", got)
	}
	// A reload shows the page as it is, without saying the change again.
	do(t, account, chromedp.Reload())
	waitPage(t, account, "the account page reloaded, without the note", `document.readyState === "complete" && document.querySelector("h1")?.textContent === "Annie Hall" && !document.querySelector(".done") && location.href.endsWith("/account")`)

	for _, tab := range []struct {
		name string
		ctx  context.Context
	}{{"Ann's first tab", browser}, {"Ann's second tab", second}} {
		waitPage(t, tab.ctx, tab.name+" with the new name in the header and composer",
			`document.querySelector("#account .account-name").textContent === "Annie Hall" && document.getElementById("name").value === "Annie Hall" && document.querySelector("#account .avatar").dataset.initials === "AH"`)
		waitPage(t, tab.ctx, tab.name+" with Annie Hall on her message", authorsOf(1)+` === "Annie Hall/AH"`)
	}
	waitPage(t, second, "presence with Annie Hall once", presencePopup+` === 'Annie Hallyou2 devices | Bob / 2'`)
	waitPage(t, bob, "Bob's page with Annie Hall on her message", authorsOf(1)+` === "Annie Hall/AH"`)
	waitPage(t, bob, "Bob's presence with Annie Hall once", presencePopup+` === 'Annie Hall2 devices | Bobyou / 2'`)
	// What Bob sees as authors (his own lines show none).
	if got := eval[string](t, bob, `[...document.querySelectorAll('#messages .by')].filter(e => e.offsetParent).map(e => e.innerText.replace(/\s+/g, ' ')).join(' | ')`); got != "Annie Hall | zed guest" {
		t.Fatalf("Bob's page shows authors %q, want Annie Hall and the guest zed", got)
	}

	// After the rename, Ann writes under the new name, and a reload of
	// Bob's page (history from the server) agrees.
	writesAs(t, second, s, "Annie Hall", 1, "now as Annie Hall")
	// A guest whose initials need Unicode: app.js draws them as the server
	// does (compared after the reload below).
	s.post(t, "e\u0301mile zola", "bonjour")
	waitMessages(t, bob, "the second guest's message", contains("bonjour"))
	const guests = `[...document.querySelectorAll('li.msg[data-guest]')].map(li => li.querySelector('.by').textContent + '/' + li.querySelector('.avatar').className + '/' + li.querySelector('.avatar').dataset.initials).join(' | ')`
	live := eval[string](t, bob, guests)
	if want := "zed guest/avatar guest c" + guestColor("zed") + "/Z | e\u0301mile zola guest/avatar guest c" + guestColor("e\u0301mile zola") + "/E\u0301Z"; live != want {
		t.Fatalf("guests' messages drawn by app.js: %q, want %q", live, want)
	}
	do(t, bob, chromedp.Reload())
	connected(t, bob)
	waitPage(t, bob, "the reloaded page with both messages under Annie Hall", authorsOf(1)+` === "Annie Hall/AH Annie Hall/AH"`)
	do(t, bob, chromedp.Click(chromedp.CSS("#presence summary")))
	waitPage(t, bob, "the reloaded presence", presencePopup+` === 'Annie Hall2 devices | Bobyou / 2'`)
	if got := eval[string](t, bob, guests); got != live {
		t.Fatalf("guests' messages rendered by the server: %q, want what app.js drew, %q", got, live)
	}
	screenshots(t, bob, "chat-after-rename")
	screenshots(t, second, "chat-own-tab")
}

// A page whose sign-in ended elsewhere (Sign out everywhere else, on the
// laptop) stops and says so: it came back as a guest, still showing the
// person's name, and what was typed there went out as a guest's. Away
// while it ended, it finds out when it is back, and sends nothing.
func TestBrowserAPageSignedOutElsewhereStops(t *testing.T) {
	phone := newBrowser(t)
	env := map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")}
	s := start(t, env)
	link, _ := setupLink(t, s)
	browserSetUp(t, phone, link)
	connected(t, phone)
	laptop := newTab(t, phone, chromedp.WithNewBrowserContext())
	signInAnn := func() {
		do(t, laptop, chromedp.Navigate(s.url+"/signin"), chromedp.WaitVisible(chromedp.ID("name")))
		do(t, laptop, chromedp.SendKeys(chromedp.ID("name"), "Ann"), chromedp.SendKeys(chromedp.ID("password"), "correct horse"), chromedp.Submit(chromedp.ID("password")))
		waitPage(t, laptop, "Ann signed in on the laptop", `!!document.getElementById("messages")`)
	}
	endOthers := func() {
		do(t, laptop, chromedp.Navigate(s.url+"/account"), chromedp.WaitVisible(`form[action="/account/sessions/end-others"] button`))
		do(t, laptop, chromedp.Click(`form[action="/account/sessions/end-others"] button`))
		waitPage(t, laptop, "the others signed out", `location.pathname === "/account"`)
	}
	const stopped = `document.getElementById("status").dataset.state === "ended" && document.getElementById("message").disabled &&
		!document.getElementById("notice").hidden && document.getElementById("notice").textContent.startsWith("You were signed out")`

	signInAnn()
	endOthers()
	waitPage(t, phone, "the phone's page stopped, saying why", stopped)
	screenshots(t, phone, "signed-out-elsewhere")

	// Again, with the phone away as it happens (the server down, its
	// session gone meanwhile: here its cookie): back, it stops, and what
	// it had queued is not sent as a guest's.
	do(t, phone, chromedp.Navigate(s.url+"/signin"), chromedp.WaitVisible(chromedp.ID("name")))
	do(t, phone, chromedp.SendKeys(chromedp.ID("name"), "Ann"), chromedp.SendKeys(chromedp.ID("password"), "correct horse"), chromedp.Submit(chromedp.ID("password")))
	waitPage(t, phone, "the phone's chat page", `!!document.getElementById("messages") && document.body.hasAttribute("data-signed-in")`)
	connected(t, phone)
	addr := strings.TrimPrefix(s.url, "http://")
	s.shutdown(t)
	waitPage(t, phone, "the phone away", `document.getElementById("status").dataset.state !== "connected"`)
	say(t, phone, "typed while the server was away")
	waitMessages(t, phone, "the queued line", contains("…typed while the server was away"))
	do(t, phone, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, network.DeleteCookies, network.DeleteCookiesParams{Name: "nochat_session", URL: s.url})
		return chromedp.Void{}, err
	})
	s = start(t, env, "-addr", addr)
	waitPageFor(t, phone, 40*time.Second, "the phone's page, back, stopped", stopped)
	time.Sleep(time.Second) // what a page that went on would have sent by now
	if got := s.stored(t); slices.Contains(got, "typed while the server was away") {
		t.Fatalf("stored %q: the signed-out page sent its queue as a guest: %s", got, s.get(t, "/rooms/lobby/messages/latest/10"))
	}
}
