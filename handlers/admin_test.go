package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"nochat/chat"
	"nochat/handlers"
)

// browser is an HTTP client with cookies that does not follow redirects,
// so tests see each answer.
type browser struct {
	t      *testing.T
	a      *app
	client *http.Client
}

func (a *app) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, a: a, client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browser) do(method, path string, form url.Values, header http.Header) response {
	b.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, b.a.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(data)}
}

var htmlAccept = http.Header{"Accept": {"text/html,application/xhtml+xml"}}

func (b *browser) login() {
	b.t.Helper()
	r := b.do("POST", "/admin/login", url.Values{"password": {adminPassword}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/admin" {
		b.t.Fatalf("login: %d to %q, want 303 to /admin", r.status, r.header.Get("Location"))
	}
}

func TestAdminLoginFlow(t *testing.T) {
	a := newApp(t)
	b := a.browser(t)

	if r := b.do("GET", "/admin", nil, htmlAccept); r.status != http.StatusSeeOther || r.header.Get("Location") != "/admin/login" {
		t.Fatalf("a browser without a session: %d to %q, want 303 to the login", r.status, r.header.Get("Location"))
	}
	for _, path := range []string{"/admin", "/admin/live", "/admin/anything"} {
		if r := b.do("GET", path, nil, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("GET %s without a session and not asking for HTML: %d, want 401", path, r.status)
		}
	}
	if r := b.do("POST", "/admin/errors/clear", url.Values{}, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("an action without a session: %d, want 401", r.status)
	}
	r := b.do("GET", "/admin/login", nil, htmlAccept)
	if r.status != 200 || !strings.Contains(r.body, `name="password"`) {
		t.Fatalf("login form: %d", r.status)
	}
	r = b.do("POST", "/admin/login", url.Values{"password": {"wrong"}}, nil)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, `name="password"`) || !strings.Contains(r.body, "not right") {
		t.Fatalf("wrong password: %d, want 401 and the form with a reason", r.status)
	}

	b.login()
	u, _ := url.Parse(a.srv.URL + "/admin")
	var session *http.Cookie
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "nochat_admin" {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie after logging in")
	}
	r = b.do("GET", "/admin", nil, htmlAccept)
	if r.status != 200 || !strings.Contains(r.body, "Live connections") {
		t.Fatalf("dashboard with a session: %d", r.status)
	}
	// The dashboard's address takes GET only: not sent on to /admin/.
	for _, method := range []string{"POST", "PUT", "DELETE"} {
		if r := b.do(method, "/admin", url.Values{}, nil); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
			t.Fatalf("%s /admin with a session: %d, Allow %q; want 405 naming GET, HEAD", method, r.status, r.header.Get("Allow"))
		}
	}

	if r := b.do("POST", "/admin/logout", url.Values{}, nil); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	if r := b.do("GET", "/admin", nil, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("after logout: %d, want 401", r.status)
	}
	// The old cookie, replayed, no longer works either.
	other := a.browser(t)
	other.client.Jar.SetCookies(u, []*http.Cookie{{Name: session.Name, Value: session.Value, Path: "/"}})
	if r := other.do("GET", "/admin", nil, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("a logged-out session replayed: %d, want 401", r.status)
	}
}

func TestAdminSessionCookieIsHardened(t *testing.T) {
	a := newApp(t)
	b := a.browser(t)
	r := b.do("POST", "/admin/login", url.Values{"password": {adminPassword}}, nil)
	cookie := r.header.Get("Set-Cookie")
	// Path=/: the chat page too must know an admin (to offer Delete).
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Max-Age=", "Path=/;"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("Set-Cookie %q lacks %s", cookie, want)
		}
	}
	if strings.Contains(cookie, "Secure") {
		t.Errorf("Set-Cookie %q is Secure over plain HTTP: the browser would not send it back", cookie)
	}
	// Forged cookies are refused: the old signed format, a well-formed
	// token nobody was given, garbage.
	u, _ := url.Parse(a.srv.URL + "/admin")
	for _, v := range []string{
		fmt.Sprint(time.Now().Add(time.Hour).Unix()) + ".AAAA",
		strings.Repeat("A", 43),
		"not a token",
	} {
		forged := a.browser(t)
		forged.client.Jar.SetCookies(u, []*http.Cookie{{Name: "nochat_admin", Value: v, Path: "/"}})
		if r := forged.do("GET", "/admin", nil, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("forged cookie %q: %d, want 401", v, r.status)
		}
	}
}

// A request may carry thousands of well-formed cookies of our name; only
// the first two are looked up (a stale one may sit beside the live one).
func TestSessionLookupsPerRequestAreBounded(t *testing.T) {
	a := newApp(t)
	b := a.browser(t)
	b.login()
	u, _ := url.Parse(a.srv.URL + "/")
	var live string
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "nochat_admin" {
			live = c.Value
		}
	}
	junk1, junk2 := strings.Repeat("A", 43), strings.Repeat("B", 43)
	send := func(method, path string, values ...string) int {
		req, _ := http.NewRequest(method, a.srv.URL+path, nil)
		for _, v := range values {
			req.AddCookie(&http.Cookie{Name: "nochat_admin", Value: v})
		}
		resp, err := a.srv.Client().Transport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send("GET", "/admin/live", junk1, live); got != 200 {
		t.Fatalf("the live session after a stale cookie: %d, want 200", got)
	}
	if got := send("GET", "/admin/live", junk1, junk2, live); got != http.StatusUnauthorized {
		t.Fatalf("the live session as third cookie: %d, want 401 (not looked up)", got)
	}
	if got := send("POST", "/admin/logout", junk1, junk2, live); got != http.StatusSeeOther {
		t.Fatalf("logout: %d", got)
	}
	if got := send("GET", "/admin/live", live); got != 200 {
		t.Fatalf("a logout whose live session came third ended it: %d, want 200 (not looked up)", got)
	}
}

// Behind the README's Caddy or nginx, the browser speaks HTTPS to the proxy
// and the proxy plain HTTP to NoChat: the cookie must still be Secure, or a
// browser tricked onto http:// would send the session in the clear.
func TestAdminCookieIsSecureBehindAnHTTPSProxy(t *testing.T) {
	https := http.Header{"X-Forwarded-Proto": {"https"}}
	for _, tc := range []struct {
		name       string
		trustProxy bool
		header     http.Header
		secure     bool
	}{
		{"trusted proxy says https", true, https, true},
		{"trusted proxy appended https", true, http.Header{"X-Forwarded-Proto": {"http, https"}}, true},
		{"trusted proxy says http", true, http.Header{"X-Forwarded-Proto": {"http"}}, false},
		{"trusted proxy says nothing", true, nil, false},
		{"header without -trust-proxy", false, https, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAppWith(t, func(d *handlers.Deps) { d.TrustProxy = tc.trustProxy })
			b := a.browser(t)
			for _, step := range []struct{ path, password string }{{"/admin/login", adminPassword}, {"/admin/logout", ""}} {
				r := b.do("POST", step.path, url.Values{"password": {step.password}}, tc.header)
				cookie := r.header.Get("Set-Cookie")
				if !strings.HasPrefix(cookie, "nochat_admin=") {
					t.Fatalf("POST %s: no session cookie (%d)", step.path, r.status)
				}
				if got := strings.Contains(cookie, "; Secure"); got != tc.secure {
					t.Errorf("POST %s: Set-Cookie %q: Secure %v, want %v", step.path, cookie, got, tc.secure)
				}
			}
		})
	}
}

// Logout looks a cookie up only if it can be a session token, and keeps
// nothing: 300 logouts with a 1 MB cookie once kept 300 MB.
func TestLogoutFloodWithHugeCookiesKeepsNothing(t *testing.T) {
	a := newApp(t)
	huge := strings.Repeat("a", 1_000_000)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	logout := func(value string) {
		req, _ := http.NewRequest("POST", a.srv.URL+"/admin/logout", nil)
		req.Header.Set("Cookie", "nochat_admin="+value)
		resp, err := a.srv.Client().Transport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout with a junk cookie: %d, want 303", resp.StatusCode)
		}
	}
	// 100 cookies of 1 MB: kept, they would be 100 MB, six times the
	// growth allowed.
	const n = 100
	logout(huge) // warm up: connections, buffers
	before := heap()
	for i := range n {
		logout(huge[:len(huge)-i]) // distinct values
	}
	for i := range n {
		logout(fmt.Sprintf("%043d", i)) // well-formed tokens nobody holds
	}
	after := heap()
	t.Logf("heap before %d KiB, after %d 1 MB logouts %d KiB", before>>10, n, after>>10)
	if after > before+16<<20 {
		t.Fatalf("the heap grew from %d MiB to %d MiB over %d junk logouts: logout keeps what it is sent", before>>20, after>>20, 2*n)
	}
	// A real session still works after the flood.
	b := a.browser(t)
	b.login()
	if r := b.do("GET", "/admin/live", nil, nil); r.status != 200 {
		t.Fatalf("the dashboard after the flood: %d", r.status)
	}
}

func TestAdminLoginAttemptsAreLimited(t *testing.T) {
	a := newApp(t)
	b := a.browser(t)
	var last int
	for range 8 {
		last = b.do("POST", "/admin/login", url.Values{"password": {"guess"}}, nil).status
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("8th wrong attempt in a row: %d, want 429", last)
	}
}

func TestAdminCrossOriginActionIsRefused(t *testing.T) {
	a := newApp(t)
	b := a.browser(t)
	b.login()
	evil := http.Header{"Origin": {"http://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}
	if r := b.do("POST", "/admin/errors/clear", url.Values{}, evil); r.status != http.StatusForbidden {
		t.Fatalf("cross-origin admin action: %d, want 403", r.status)
	}
	if r := b.do("POST", "/admin/login", url.Values{"password": {adminPassword}}, evil); r.status != http.StatusForbidden {
		t.Fatalf("cross-origin login: %d, want 403", r.status)
	}
	same := http.Header{"Origin": {a.srv.URL}, "Sec-Fetch-Site": {"same-origin"}}
	if r := b.do("POST", "/admin/errors/clear", url.Values{}, same); r.status != http.StatusSeeOther {
		t.Fatalf("same-origin admin action: %d, want 303", r.status)
	}
}

func TestDashboardListsConnectionsUntilTheyClose(t *testing.T) {
	a := newApp(t)
	b := a.browser(t)
	b.login()
	ws := "ws" + strings.TrimPrefix(a.srv.URL, "http") + "/"
	conn, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial(ws+"?user=zed", http.Header{"User-Agent": {"admin-test/2.0"}})
	if err != nil {
		t.Fatal(err)
	}
	// The upgrade's answer reaches the client a moment before the server
	// has registered the session: wait for it to show.
	waitFor(t, "the connection on the dashboard", func() bool {
		return strings.Contains(b.do("GET", "/admin/live", nil, nil).body, "admin-test/2.0")
	})
	r := b.do("GET", "/admin/live", nil, nil)
	for _, want := range []string{"admin-test/2.0", "zed", "nochat.v1", "127.0.0.1"} {
		if !strings.Contains(r.body, want) {
			t.Fatalf("dashboard lacks %q while the client is connected", want)
		}
	}
	conn.Close()
	waitFor(t, "the connection to leave the dashboard", func() bool {
		return !strings.Contains(b.do("GET", "/admin/live", nil, nil).body, "admin-test/2.0")
	})
}

// openSession opens a nochat.v1 socket and returns it with the session id
// its hello names; the socket is closed when the test ends.
func (a *app) openSession(t *testing.T) (*websocket.Conn, string) {
	t.Helper()
	conn, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial("ws"+strings.TrimPrefix(a.srv.URL, "http")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var session string
	for session == "" {
		var f struct {
			Type string
			Data struct{ Session string }
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := conn.ReadJSON(&f); err != nil {
			t.Fatal(err)
		}
		session = f.Data.Session
	}
	return conn, session
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAdminDisconnectAndDelete(t *testing.T) {
	a := newApp(t)
	b := a.browser(t)
	b.login()
	a.send(t, "keep me", "delete me")
	msgs := decodeMessages(t, a.do(t, "GET", "/discussion/latest/2", ""))

	conn, session := a.openSession(t)

	// Delete: gone from history, and the client is told.
	if r := b.do("POST", fmt.Sprintf("/admin/messages/%d/delete", msgs[1].ID), url.Values{}, nil); r.status != http.StatusSeeOther {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if got := joined(decodeMessages(t, a.do(t, "GET", "/discussion/latest/10", ""))); got != "keep me" {
		t.Fatalf("history after delete: %q", got)
	}
	if r := b.do("POST", fmt.Sprintf("/admin/messages/%d/delete", msgs[1].ID), url.Values{}, nil); r.status != http.StatusNotFound {
		t.Fatalf("deleting it again: %d, want 404", r.status)
	}
	for {
		var f struct {
			Type string
			Data struct{ ID int64 }
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := conn.ReadJSON(&f); err != nil {
			t.Fatalf("waiting for deleted: %v", err)
		}
		if f.Type == "deleted" {
			if f.Data.ID != msgs[1].ID {
				t.Fatalf("deleted %d, want %d", f.Data.ID, msgs[1].ID)
			}
			break
		}
	}
	if r := a.do(t, "GET", "/", ""); strings.Contains(r.body, "delete me") {
		t.Fatal("the chat page still shows the deleted message")
	}

	// Disconnect: the client gets a close frame with a reason.
	if r := b.do("POST", "/admin/sessions/"+session+"/disconnect", url.Values{}, http.Header{"HX-Request": {"true"}}); r.status != 200 || !strings.Contains(r.body, `id="live"`) {
		t.Fatalf("disconnect from the dashboard: %d, want 200 and the refreshed dashboard", r.status)
	}
	for {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || !strings.Contains(ce.Text, "admin") {
			t.Fatalf("disconnected with %v, want a close frame naming the admin", err)
		}
		break
	}
	if r := b.do("POST", "/admin/sessions/nope/disconnect", url.Values{}, nil); r.status != http.StatusNotFound {
		t.Fatalf("disconnecting an unknown session: %d, want 404", r.status)
	}
}

func TestErrorStormIsOneRowAndOneSmallWrite(t *testing.T) {
	a := newApp(t)
	b := a.browser(t)
	b.login()
	walSize := func() int64 {
		fi, err := os.Stat(a.store.Path() + "-wal")
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	time.Sleep(1100 * time.Millisecond) // let the login's errors (none) and setup settle
	before := walSize()
	for i := range 1000 {
		// The same error from a different client port each time.
		a.hub.RecordErrorAt(chat.KindRefusedUpgrade, "WebSocket upgrade", "unsupported WebSocket subprotocol (offered: chat)", fmt.Sprintf("127.0.0.1:%d", 20000+i))
	}
	waitFor(t, "the error log to be saved", func() bool {
		errs, _ := a.store.RecentErrors(context.Background(), 10)
		return len(errs) == 1 && errs[0].Count == 1000
	})
	// 1,000 one-row transactions would add at least 1,000 pages (4 MB) to
	// the WAL; one transaction adds a few.
	if grew := walSize() - before; grew > 64<<10 {
		t.Fatalf("the WAL grew %d bytes for one storm: more than one small write", grew)
	}
	r := b.do("GET", "/admin/live", nil, nil)
	if !strings.Contains(r.body, "×1,000") {
		t.Fatal("the dashboard does not show the storm as one row with its count")
	}
	if strings.Count(r.body, "refused upgrade") != 1 {
		t.Fatalf("the storm shows as %d rows", strings.Count(r.body, "refused upgrade"))
	}
}

func TestMetricsCountSentMessages(t *testing.T) {
	a := newApp(t)
	a.send(t, "counted")
	r := a.do(t, "GET", "/metrics", "")
	if r.status != 200 {
		t.Fatalf("metrics: %d", r.status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(r.body))
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	value := func(name string) float64 {
		f, ok := families[name]
		if !ok || len(f.Metric) == 0 {
			t.Fatalf("no metric %s", name)
		}
		m := f.Metric[0]
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
		return -1
	}
	if got := value("nochat_messages_broadcast_total"); got != 1 {
		t.Fatalf("nochat_messages_broadcast_total = %v, want 1", got)
	}
	if got := value("nochat_messages_stored"); got != 1 {
		t.Fatalf("nochat_messages_stored = %v, want 1", got)
	}
	if got := value("nochat_db_commit_seconds"); got < 1 {
		t.Fatalf("nochat_db_commit_seconds has %v samples", got)
	}
	if got := value("nochat_db_commit_sync_seconds"); got < 1 {
		t.Fatalf("nochat_db_commit_sync_seconds has %v samples", got)
	}
	for _, name := range []string{"nochat_connections", "nochat_broadcast_seconds", "go_goroutines",
		"nochat_db_checkpoints_total", "nochat_db_checkpoint_seconds_total", "nochat_db_wal_bytes"} {
		value(name)
	}
}

func TestAdminFormPostWithoutSessionGoesToLogin(t *testing.T) {
	a := newApp(t)
	b := a.browser(t)
	r := b.do("POST", "/admin/errors/clear", url.Values{}, htmlAccept)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/admin/login" {
		t.Fatalf("a browser's form post without a session: %d to %q, want 303 to the login", r.status, r.header.Get("Location"))
	}
}
