package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// hide makes tab's page believe it is in the background, as when another
// tab or window is in front. (Headless Chromium shows every tab; the page
// reads document.hidden and the visibilitychange event, which this sets.)
func hide(t *testing.T, tab context.Context, hidden bool) {
	t.Helper()
	do(t, tab, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		Object.defineProperty(document, 'hidden', {configurable: true, get: () => %[1]t});
		Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => %[1]t ? 'hidden' : 'visible'});
		document.dispatchEvent(new Event('visibilitychange'));
	})()`, hidden)))
}

// noTabInFront waits until no tab of tab's browser context holds the lock
// that says one of its tabs is in front (app.js holdFront): a tab sent to
// the background lets go of it a moment later, and a message arriving in
// that moment is rightly not announced.
func noTabInFront(t *testing.T, tab context.Context) {
	t.Helper()
	waitPage(t, tab, "no tab in front", `(navigator.locks.query().then((q) => {
		window.nochatFront = q.held.filter((l) => l.name.startsWith('nochat-front:')).length;
	}), window.nochatFront === 0)`)
}

// flick brings tab to the front and sends it back at once, as a person
// leafing through tabs does: the page's hold on "a tab of ours is in
// front" is still being granted when it goes to the background again.
func flick(t *testing.T, tab context.Context) {
	t.Helper()
	do(t, tab, chromedp.Evaluate[chromedp.Void](`(() => {
		for (const hidden of [true, false, true]) {
			Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
			Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => hidden ? 'hidden' : 'visible'});
			document.dispatchEvent(new Event('visibilitychange'));
		}
	})()`))
}

// recordShown makes a tab keep, in window.shown, the body of every
// notification it asks the browser to show. Each tab keeps its own list:
// a count kept in localStorage would itself lose increments when two tabs
// write at once.
const recordShown = `(() => {
	window.shown = [];
	const show = ServiceWorkerRegistration.prototype.showNotification;
	ServiceWorkerRegistration.prototype.showNotification = function (title, opts) {
		window.shown.push(opts.body);
		return show.apply(this, arguments);
	};
})()`

// shownBy lists what tabs asked to show, all together.
func shownBy(t *testing.T, tabs ...context.Context) []string {
	t.Helper()
	var all []string
	for _, tab := range tabs {
		all = append(all, eval[[]string](t, tab, `window.shown`)...)
	}
	return all
}

type shownNotification struct {
	Title, Body, Tag, URL string
}

// notifications lists what the browser shows for NoChat now.
func notifications(t *testing.T, tab context.Context) []shownNotification {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.serviceWorker.ready
		.then(r => r.getNotifications())
		.then(ns => JSON.stringify(ns.map(n => ({title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url}))))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	var ns []shownNotification
	if err := json.Unmarshal([]byte(raw), &ns); err != nil {
		t.Fatal(err)
	}
	return ns
}

func waitNotification(t *testing.T, tab context.Context, body string) shownNotification {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var ns []shownNotification
	for time.Now().Before(deadline) {
		ns = notifications(t, tab)
		for _, n := range ns {
			if n.Body == body {
				return n
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no notification %q; shown: %+v", body, ns)
	return shownNotification{}
}

// Bob, with two tabs in the background, hears of what his setting asks
// for, once, never of his own messages; the title and favicon count; the
// notification leads to the message.
func TestBrowserNotifiesAsTheRoomSettingAsks(t *testing.T) {
	s, ann, invite := startWithAdmin(t)
	bob := newTab(t, ann, chromedp.WithNewBrowserContext())
	allowNotifications(t, bob, s.url)
	joinAs(t, bob, invite, "Bob")
	bob2 := newTab(t, bob)
	do(t, bob2, chromedp.Navigate(s.url+"/"))
	do(t, ann, chromedp.Navigate(s.url+"/"))
	connected(t, ann)
	for _, tab := range []context.Context{bob, bob2} {
		connected(t, tab)
		workerReady(t, tab)
		do(t, tab, chromedp.Evaluate[chromedp.Void](recordShown))
	}
	do(t, bob, chromedp.Click(`#room-menu summary`))
	waitPage(t, bob, "the notification settings", `document.getElementById('notify-browser').textContent === 'Browser notifications are on'
		&& document.querySelector('.notify-level[data-level="mentions"]').getAttribute('aria-pressed') === 'true'`)
	screenshots(t, bob, "notify-menu")
	do(t, bob, chromedp.Click(`#room-menu summary`))

	hide(t, bob, true)
	hide(t, bob2, true)
	noTabInFront(t, bob)
	say(t, ann, "anyone up for chess?")
	say(t, ann, "@Bob your move")
	n := waitNotification(t, bob, "@Bob your move")
	if n.Title != "Ann in Lobby" || !strings.HasPrefix(n.URL, "/r/lobby/") || n.Tag == "" {
		t.Fatalf("the mention's notification: %+v", n)
	}
	waitPage(t, bob, "the count in the title and on the favicon", `document.title === '(2) NoChat'
		&& document.querySelector('link[rel="icon"]').href.startsWith('data:image/png')`)
	time.Sleep(500 * time.Millisecond) // time for a second tab to announce it too, were it to
	if ns := notifications(t, bob); len(ns) != 1 {
		t.Fatalf("Bob is notified of %+v; his setting asks for mentions only", ns)
	}
	if shown := shownBy(t, bob, bob2); len(shown) != 1 {
		t.Fatalf("Bob's two tabs showed %q, want the mention once", shown)
	}

	// Back in front: the count is gone. Bob asks for every message.
	hide(t, bob, false)
	waitPage(t, bob, "the title without a count", `document.title === 'NoChat' && document.querySelector('link[rel="icon"]').href.includes('favicon.svg')`)
	do(t, bob, chromedp.Click(`#room-menu summary`), chromedp.Click(`.notify-level[data-level="all"]`))
	waitPage(t, bob, "every message chosen", `document.querySelector('.notify-level[data-level="all"]').getAttribute('aria-pressed') === 'true'`)
	do(t, bob, chromedp.Click(`#room-menu summary`))
	flick(t, bob)
	say(t, bob2, "my own words") // from his other tab: never announced to him
	say(t, ann, "plain words")
	waitNotification(t, bob, "plain words")
	for _, n := range notifications(t, bob) {
		if n.Body == "my own words" {
			t.Fatal("Bob was notified of his own message")
		}
	}

	// Nothing: nothing more, not even a mention.
	hide(t, bob, false)
	do(t, bob, chromedp.Click(`#room-menu summary`), chromedp.Click(`.notify-level[data-level="none"]`))
	waitPage(t, bob, "nothing chosen", `document.querySelector('.notify-level[data-level="none"]').getAttribute('aria-pressed') === 'true'`)
	do(t, bob, chromedp.Click(`#room-menu summary`))
	hide(t, bob, true)
	say(t, ann, "@Bob are you there?")
	waitMessages(t, bob, "the last mention", contains("@Bob are you there?"))
	time.Sleep(500 * time.Millisecond)
	if ns := notifications(t, bob); len(ns) != 2 {
		t.Fatalf("Bob, who asked for nothing, has %+v", ns)
	}

	// The notification's address opens the room at the message.
	do(t, bob, chromedp.Navigate(s.url+n.URL))
	waitPage(t, bob, "the mention in focus", `document.querySelector('li.msg.focus .text')?.innerText === '@Bob your move'`)
}

// The page's side of Web Push, up to what this closed network allows:
// "Turn on browser notifications" asks the browser's permission and, once
// it is given, subscribes with the server's VAPID key and gives the
// server the subscription, kept with the session. (A real subscription
// needs the browser's push service on the internet: the browser's
// subscribe is stood in for by one returning a subscription with a real
// P-256 key, as Chromium would.)
// With three tabs in the background, each of many messages is announced
// by exactly one of them: a tab's copy of localStorage learns of another
// tab's claim a moment late, so the claim must not rest on it alone.
func TestBrowserOneTabOfManyAnnouncesEachMessage(t *testing.T) {
	s, ann, invite := startWithAdmin(t)
	bob := newTab(t, ann, chromedp.WithNewBrowserContext())
	allowNotifications(t, bob, s.url)
	joinAs(t, bob, invite, "Bob")
	tabs := []context.Context{bob, newTab(t, bob), newTab(t, bob)}
	for _, tab := range tabs[1:] {
		do(t, tab, chromedp.Navigate(s.url+"/"))
	}
	do(t, ann, chromedp.Navigate(s.url+"/"))
	connected(t, ann)
	do(t, bob, chromedp.Click(`#room-menu summary`), chromedp.Click(`.notify-level[data-level="all"]`))
	waitPage(t, bob, "every message chosen", `document.querySelector('.notify-level[data-level="all"]').getAttribute('aria-pressed') === 'true'`)
	for _, tab := range tabs {
		connected(t, tab)
		workerReady(t, tab)
		do(t, tab, chromedp.Evaluate[chromedp.Void](recordShown))
		hide(t, tab, true)
	}

	const n = 15
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("move %d", i+1))
		say(t, ann, want[i])
	}
	deadline := time.Now().Add(15 * time.Second)
	shown := shownBy(t, tabs...)
	for len(shown) < n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		shown = shownBy(t, tabs...)
	}
	time.Sleep(time.Second) // time for a late second announcement, were there one
	shown = shownBy(t, tabs...)
	count := map[string]int{}
	for _, body := range shown {
		count[body]++
	}
	for _, body := range want {
		if count[body] != 1 {
			t.Errorf("%q was announced %d times across Bob's three tabs, want once (all shown: %q)", body, count[body], shown)
		}
	}
	if len(shown) != n {
		t.Errorf("the tabs announced %d notifications for %d messages: %q", len(shown), n, shown)
	}
}

func TestBrowserSubscribesForPushOnceAllowed(t *testing.T) {
	ann := newBrowser(t)
	path := filepath.Join(t.TempDir(), "nochat.db")
	s := start(t, map[string]string{"NOCHAT_DB": path})
	link, _ := setupLink(t, s)
	// The stand-in is in every document the tab opens, before its
	// scripts run: one set on the page as it is would be gone after any
	// later navigation, and Chromium's own subscribe, with no push
	// service to reach, fails.
	onEveryDocument(t, ann, `(() => {
		if (!window.PushManager) return;
		PushManager.prototype.subscribe = async function (opts) {
			const key = await crypto.subtle.generateKey({name: 'ECDH', namedCurve: 'P-256'}, true, ['deriveBits']);
			const raw = new Uint8Array(await crypto.subtle.exportKey('raw', key.publicKey));
			const b64 = (b) => btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
			window.subscribedWith = {userVisibleOnly: opts.userVisibleOnly, key: b64(new Uint8Array(opts.applicationServerKey))};
			const json = {endpoint: 'https://push.example.net/send/abc123', expirationTime: null, keys: {p256dh: b64(raw), auth: b64(crypto.getRandomValues(new Uint8Array(16)))}};
			return {endpoint: json.endpoint, toJSON: () => json};
		};
	})()`)
	browserSetUp(t, ann, link)
	connected(t, ann)
	workerReady(t, ann)
	if !eval[bool](t, ann, `PushManager.prototype.subscribe.toString().includes('subscribedWith')`) {
		t.Fatal("the page's PushManager is not the stand-in")
	}

	// Not yet allowed: the menu offers it.
	do(t, ann, chromedp.Click(`#room-menu summary`))
	waitPage(t, ann, "the offer", `document.getElementById('notify-browser').textContent === 'Turn on browser notifications' && !document.getElementById('notify-browser').disabled`)
	// Ann allows it, as in the browser's site settings (DevTools cannot
	// answer the prompt the button opens): the open page sees the change
	// and subscribes at once, with no click and no reload. (It once only
	// noticed at its next redraw, and never subscribed.)
	allowNotifications(t, ann, s.url)
	waitPage(t, ann, "notifications on", `document.getElementById('notify-browser').textContent === 'Browser notifications are on' && document.getElementById('notify-browser').disabled`)
	waitPage(t, ann, "the subscription made", `!!window.subscribedWith`)

	var key struct{ Key string }
	if err := json.Unmarshal([]byte(s.get(t, "/push/key")), &key); err != nil {
		t.Fatal(err)
	}
	got := eval[map[string]any](t, ann, `window.subscribedWith`)
	if got["userVisibleOnly"] != true || got["key"] != key.Key {
		t.Fatalf("subscribed with %v, want userVisibleOnly and the server's key %s", got, key.Key)
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var endpoint, owner string
		err := raw.QueryRow(`SELECT p.endpoint, a.name FROM push_subscriptions p JOIN accounts a ON a.id = p.account_id`).Scan(&endpoint, &owner)
		if err == nil && endpoint == "https://push.example.net/send/abc123" && owner == "Ann" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server has no subscription of Ann's: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Ann clicks "Turn on browser notifications" and allows them in the
// browser's prompt: the permission's change starts the subscription
// before the button's handler hears the answer, and joins it. When the
// subscription fails, Ann, who asked, is told why. (The button's handler
// once joined the quiet attempt and its failure went unsaid.)
func TestBrowserPushFailureIsToldToWhoAsked(t *testing.T) {
	ann := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")})
	link, _ := setupLink(t, s)
	// The browser's push service refuses when the test says so; the
	// prompt waits for the test to answer it.
	onEveryDocument(t, ann, `(() => {
		if (!window.PushManager) return;
		PushManager.prototype.subscribe = () => new Promise((_, fail) => {
			window.failPush = () => fail(new Error('the push service refused'));
		});
		Notification.requestPermission = () => new Promise((answer) => { window.answerPrompt = answer; });
	})()`)
	browserSetUp(t, ann, link)
	connected(t, ann)
	workerReady(t, ann)

	do(t, ann, chromedp.Click(`#room-menu summary`))
	waitPage(t, ann, "the offer", `document.getElementById('notify-browser').textContent === 'Turn on browser notifications' && !document.getElementById('notify-browser').disabled`)
	do(t, ann, chromedp.Click(`#notify-browser`))
	waitPage(t, ann, "the prompt", `typeof window.answerPrompt === 'function'`)
	// Ann allows: the permission changes, then the prompt answers.
	allowNotifications(t, ann, s.url)
	waitPage(t, ann, "notifications on", `document.getElementById('notify-browser').textContent === 'Browser notifications are on'`)
	// The change's quiet attempt is under way; the prompt's answer comes,
	// and the button's handler joins it; then the push service refuses.
	waitPage(t, ann, "the quiet attempt under way", `typeof window.failPush === 'function'`)
	eval[any](t, ann, `window.answerPrompt('granted'), null`)
	eval[any](t, ann, `window.failPush(), null`)
	waitPage(t, ann, "the failure told", `(n => !n.hidden && n.textContent.includes('could not be set up') && n.textContent.includes('the push service refused'))(document.getElementById('notice'))`)
	screenshots(t, ann, "push-failure-told")
}

// allowNotifications grants origin the notification permission in tab's
// browser context, as a person does in the browser's site settings
// (DevTools cannot answer the prompt a page opens).
func allowNotifications(t *testing.T, tab context.Context, origin string) {
	t.Helper()
	do(t, tab, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission:       &browser.PermissionDescriptor{Name: "notifications"},
			Setting:          browser.PermissionSettingGranted,
			Origin:           origin,
			BrowserContextID: chromedp.FromContext(tab).BrowserContextID,
		})
		return chromedp.Void{}, err
	})
}
