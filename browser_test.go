package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

// These tests drive a real headless Chromium against NoChat run through
// run(). Without Chromium they skip, except under CI=true, where they fail:
// CI installs it (apt-get install chromium).

func chromiumPath(t *testing.T) string {
	t.Helper()
	if raceEnabled {
		// They run in the plain `go test ./...`. Under the race detector
		// they took CI's run of this package from 8 to 11 minutes, while
		// the server code they drive is raced by the chat and handlers
		// packages' tests, with real WebSocket clients.
		t.Skip("skipping browser test under the race detector: the plain run has it")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is not installed; CI needs it for browser tests (apt-get install -y chromium)")
	}
	t.Skip("skipping browser test: Chromium not found (apt-get install -y chromium)")
	return ""
}

// newBrowser starts a headless Chromium and returns a context for its first
// tab, with extra options if given. Further tabs come from newTab.
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	// Chromium now and then dies as it starts on a loaded machine (the
	// last CI run saw it exit within a second, printing nothing of
	// note): a browser that never started is tried again, twice.
	var err error
	for range 3 {
		var ctx context.Context
		if ctx, err = startBrowser(t, extra); err == nil {
			return ctx
		}
		if !strings.Contains(err.Error(), "chrome failed to start") {
			break
		}
		t.Logf("starting Chromium again: %v", err)
	}
	t.Fatal(err)
	return nil
}

// startBrowser starts one Chromium, stopped when t ends.
func startBrowser(t *testing.T, extra []chromedp.ExecAllocatorOption) (context.Context, error) {
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 760),
		// This machine's network is closed: keep Chromium from calling home.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	opts = append(opts, extra...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Start the browser now, without a timeout.
	return ctx, chromedp.Do(ctx)
}

// newTab opens another tab of browser, with opts if given
// (chromedp.WithNewBrowserContext: a tab that shares no cookies).
func newTab(t *testing.T, browser context.Context, opts ...chromedp.ContextOption) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, opts...)
	t.Cleanup(cancel)
	// The first run opens the tab for the life of its context: no timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// onEveryDocument has the tab run src in every document it opens from now
// on, before the page's own scripts: a stand-in or a probe that no later
// navigation drops.
func onEveryDocument(t *testing.T, tab context.Context, src string) {
	t.Helper()
	do(t, tab, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: src})
		return chromedp.Void{}, err
	})
}

// do runs browser steps, failing the test after 20 s.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// shownMessages is the text of every message on the page, top to bottom,
// as a reader sees it (innerText: the rendered markup's words and line
// breaks), pending ones marked with a leading "…".
const shownMessages = `Array.from(document.querySelectorAll('#messages li.msg')).map(li =>
	(li.classList.contains('pending') ? '…' : '') + li.querySelector('.text').innerText)`

// waitMessages polls the page until its messages satisfy ok.
func waitMessages(t *testing.T, ctx context.Context, what string, ok func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		var err error
		if got, err = chromedp.Run(ctx, chromedp.Evaluate[[]string](shownMessages)); err == nil && ok(got) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("page never showed %s; it shows %q", what, got)
	return nil
}

func contains(s string) func([]string) bool {
	return func(msgs []string) bool { return slices.Contains(msgs, s) }
}

func connected(t *testing.T, ctx context.Context) {
	t.Helper()
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#status[data-state="connected"]`)))
}

func say(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	do(t, ctx, chromedp.SendKeys(chromedp.ID("message"), text+"\r"))
}

// screenshot saves the page, as name, in the directory NOCHAT_SCREENSHOTS
// names, for a person to look at; without it, it takes none (the suite
// takes over a hundred, which nobody would see).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("NOCHAT_SCREENSHOTS")
	if dir == "" {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func TestBrowserTwoPagesChat(t *testing.T) {
	browser := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")})
	s.post(t, "server", "history before anyone came")

	ann, bob := browser, newTab(t, browser)
	for _, tab := range []context.Context{ann, bob} {
		do(t, tab, chromedp.Navigate(s.url+"/"))
		connected(t, tab)
		waitMessages(t, tab, "the stored history", contains("history before anyone came"))
	}
	// Each page shows who is here: both of them.
	for _, tab := range []context.Context{ann, bob} {
		waitPage(t, tab, "2 online", `document.getElementById('online-count').textContent === '2'`)
	}
	do(t, ann, chromedp.SendKeys(chromedp.ID("name"), "ann"))
	say(t, ann, "hello bob")
	waitMessages(t, bob, "ann's message", contains("hello bob"))
	say(t, bob, "hi ann, <script>alert(1)</script>")
	waitMessages(t, ann, "bob's reply", contains("hi ann, <script>alert(1)</script>"))

	// The payload is text: no script element came with it.
	if scripts := eval[int](t, ann, `document.querySelectorAll('#messages script').length`); scripts != 0 {
		t.Fatalf("%d script elements in the message list", scripts)
	}

	// A reload shows the history as the server rendered it, before any
	// script runs: read the HTML the server sent.
	html := s.get(t, "/")
	for _, want := range []string{"hello bob", "hi ann, &lt;script&gt;alert(1)&lt;/script&gt;"} {
		if !strings.Contains(html, want) {
			t.Fatalf("server-rendered page lacks %q", want)
		}
	}
	do(t, bob, chromedp.Reload())
	got := waitMessages(t, bob, "the history after a reload", contains("hello bob"))
	if want := []string{"history before anyone came", "hello bob", "hi ann, <script>alert(1)</script>"}; !slices.Equal(got, want) {
		t.Fatalf("after reload the page shows %q, want %q", got, want)
	}
	user := eval[string](t, ann, `[...document.querySelectorAll('#messages li.msg')].find(li => li.textContent.includes('hello bob')).querySelector('.user').textContent`)
	if user != "ann" {
		t.Fatalf("ann's message shows user %q", user)
	}
	screenshot(t, ann, "chat.png")
}

func TestBrowserPhoneWidth(t *testing.T) {
	browser := newBrowser(t)
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")})
	s.post(t, "ann", "a message on a small screen")
	do(t, browser, chromedp.EmulateViewport(360, 740), chromedp.Navigate(s.url+"/"))
	connected(t, browser)
	if eval[bool](t, browser, `document.documentElement.scrollWidth > window.innerWidth`) {
		t.Fatal("the page scrolls sideways at 360 px")
	}
	say(t, browser, "sent from a phone")
	waitMessages(t, browser, "the sent message", contains("sent from a phone"))
	screenshot(t, browser, "phone.png")
}

// post sends text as user through POST /discussion/{message} and fails the
// test unless it is accepted.
func (s *server) post(t *testing.T, user, text string) {
	t.Helper()
	if status, body := postStatus(t, s.url+"/discussion/"+url.PathEscape(text)+"?user="+url.QueryEscape(user)); status != 200 {
		t.Fatalf("POST %q: %d %s", text, status, body)
	}
}

// get returns the body at path, whatever the status.
func (s *server) get(t *testing.T, path string) string {
	t.Helper()
	_, body := getBody(t, s.url+path)
	return body
}

// getBody fetches URL u and returns the status and the whole body.
func getBody(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// postStatus posts an empty body to URL u and returns the status and the
// whole answer.
func postStatus(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Post(u, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestBrowserSurvivesServerRestartWithoutLossOrDuplicates(t *testing.T) {
	browser := newBrowser(t)
	env := map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")}
	s := start(t, env)
	addr := strings.TrimPrefix(s.url, "http://")
	s.post(t, "ann", "before the restart")

	do(t, browser, chromedp.Navigate(s.url+"/"))
	connected(t, browser)
	waitMessages(t, browser, "the first message", contains("before the restart"))

	s.shutdown(t)
	do(t, browser, chromedp.WaitNotPresent(chromedp.CSS(`#status[data-state="connected"]`)))
	// Typed while the server is away: kept as pending, sent after reconnect.
	say(t, browser, "typed during the outage")
	waitMessages(t, browser, "the pending message", contains("…typed during the outage"))

	s = start(t, env, "-addr", addr)
	for i := 1; i <= 3; i++ {
		s.post(t, "bob", fmt.Sprintf("posted while the page was away %d", i))
	}
	connected(t, browser)

	// The page ends up showing exactly what is stored, in order, once each,
	// nothing pending.
	stored := func() []string {
		var msgs []struct{ Message string }
		json.Unmarshal([]byte(s.get(t, "/discussion/latest/50")), &msgs)
		var texts []string
		for _, m := range msgs {
			texts = append(texts, m.Message)
		}
		return texts
	}
	got := waitMessages(t, browser, "every message once", func(shown []string) bool {
		return len(shown) == 5 && slices.Equal(shown, stored())
	})
	if n := strings.Count(strings.Join(stored(), "\n"), "typed during the outage"); n != 1 {
		t.Fatalf("the message typed during the outage is stored %d times", n)
	}
	t.Logf("after the restart the page shows %q", got)
	screenshot(t, browser, "after-restart.png")
}

func TestBrowserAdminDashboardUpdatesLive(t *testing.T) {
	browser := newBrowser(t)
	s := start(t, map[string]string{
		"NOCHAT_DB":             filepath.Join(t.TempDir(), "nochat.db"),
		"NOCHAT_ADMIN_PASSWORD": "correct horse battery staple",
	})
	s.post(t, "ann", "a message to moderate")

	do(t, browser, chromedp.Navigate(s.url+"/admin"))
	do(t, browser, chromedp.WaitVisible(chromedp.ID("password")))
	do(t, browser,
		chromedp.SendKeys(chromedp.ID("password"), "correct horse battery staple"),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("live")),
	)

	// A new connection appears without a reload.
	ws := "ws" + strings.TrimPrefix(s.url, "http") + "/"
	conn, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial(ws+"?user=zed", http.Header{"User-Agent": {"dashboard-test-client/1.0"}})
	if err != nil {
		t.Fatal(err)
	}
	waitPage(t, browser, "the new connection", `document.querySelector('#connections') !== null && document.querySelector('#connections').textContent.includes('dashboard-test-client/1.0')`)

	// An error appears too: an upgrade offering a subprotocol NoChat does not speak.
	if _, _, err := (&websocket.Dialer{Subprotocols: []string{"bogus"}}).Dial(ws, nil); err == nil {
		t.Fatal("bogus subprotocol accepted")
	}
	waitPage(t, browser, "the refused upgrade", `document.querySelector('#errors') !== null && document.querySelector('#errors').textContent.includes('refused upgrade')`)
	screenshot(t, browser, "admin.png")

	// And the connection goes when it closes.
	conn.Close()
	waitPage(t, browser, "the connection gone", `document.querySelector('#connections') === null || !document.querySelector('#connections').textContent.includes('dashboard-test-client/1.0')`)
}

// waitPage polls a JavaScript condition until it holds, for as long as
// waitMessages waits: the race detector on a loaded 2-core machine makes a
// page take seconds for what takes milliseconds alone.
func waitPage(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	waitPageFor(t, ctx, 20*time.Second, what, cond)
}

// waitPageFor is waitPage, waiting up to d. A page too busy to answer
// is asked again, never waited for past d.
func waitPageFor(t *testing.T, ctx context.Context, d time.Duration, what, cond string) {
	t.Helper()
	wait, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for wait.Err() == nil {
		if ok, err := chromedp.Run(wait, chromedp.Evaluate[bool](cond)); err == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	show, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	body, err := chromedp.Run(show, chromedp.Evaluate[string](`document.body.innerText.slice(0, 2000)`))
	if err != nil {
		body = "(no answer: " + err.Error() + ")"
	}
	t.Fatalf("the page never showed %s; it shows:\n%s", what, body)
}
