package main

import (
	"database/sql"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"
)

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// page is one answer: status, body, Location and the cookies set.
type page struct {
	status   int
	body     string
	location string
	cookies  map[string]string
}

// fetch sends a request with the cookies given as "name=value; ..." and
// reads the whole answer.
func fetch(t *testing.T, method, u, cookie string, form url.Values) page {
	t.Helper()
	return fetchWith(t, method, u, cookie, form, nil)
}

// fetchWith is fetch with more headers.
func fetchWith(t *testing.T, method, u, cookie string, form url.Values, header http.Header) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, body: string(b), location: resp.Header.Get("Location"), cookies: map[string]string{}}
	for _, c := range resp.Cookies() {
		if c.MaxAge >= 0 {
			p.cookies[c.Name] = c.Value
		}
	}
	return p
}

var setupLinkRe = regexp.MustCompile(`setup="?(http://[^"\s]+/setup\?token=([A-Za-z0-9_-]+))`)

// setupLink is the set-up link in a server's log, with its token.
func setupLink(t *testing.T, s *server) (link, token string) {
	t.Helper()
	m := setupLinkRe.FindStringSubmatch(s.logs.String())
	if m == nil {
		t.Fatalf("no set-up link in the log:\n%s", s.logs)
	}
	return m[1], m[2]
}

func TestSetupLinkMakesTheFirstAdminOnceAndSignInsSurviveRestarts(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "nochat.db")
	env := map[string]string{"NOCHAT_DB": dbPath}
	s := start(t, env)
	link, token := setupLink(t, s)
	if !strings.HasPrefix(link, s.url+"/setup?token=") {
		t.Fatalf("set-up link %s is not on the server's address %s", link, s.url)
	}
	if strings.Contains(s.logs.String(), "generated an admin password") {
		t.Fatal("a new database still generates an admin password")
	}

	// Without the token, or with another, /setup says where the link is
	// and creates nothing.
	for _, u := range []string{s.url + "/setup", s.url + "/setup?token=" + strings.Repeat("A", len(token))} {
		if p := fetch(t, "GET", u, "", nil); p.status != http.StatusForbidden || !strings.Contains(p.body, "journalctl -u nochat | grep setup") {
			t.Fatalf("GET %s: %d, want 403 and how to find the link", u, p.status)
		}
	}
	if p := fetch(t, "POST", s.url+"/setup", "", url.Values{"token": {"nope"}, "name": {"Mallory"}, "password": {"long enough password"}}); p.status != http.StatusForbidden || len(p.cookies) > 0 {
		t.Fatalf("POST /setup without the token: %d %v, want 403 and no session", p.status, p.cookies)
	}
	// A provoked error, to find on the dashboard later.
	if _, _, err := (&websocket.Dialer{Subprotocols: []string{"chat"}}).Dial(wsURL(s.url), nil); err == nil {
		t.Fatal("an unknown subprotocol was accepted")
	}

	// A restart keeps the link working, without logging it again.
	s.shutdown(t)
	s = start(t, env)
	if strings.Contains(s.logs.String(), token) || !strings.Contains(s.logs.String(), "journalctl -u nochat | grep setup") {
		t.Fatalf("the second start should point to the first start's link, not show it again:\n%s", s.logs)
	}
	if p := fetch(t, "GET", s.url+"/setup?token="+token, "", nil); p.status != 200 || !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("the link after a restart: %d, want the form", p.status)
	}
	// Lost, the link is replaced by a new one, and stops working.
	s.shutdown(t)
	s = start(t, env, "-new-setup-link")
	lost := token
	if _, token = setupLink(t, s); token == lost {
		t.Fatal("-new-setup-link logged the same token")
	}
	if p := fetch(t, "GET", s.url+"/setup?token="+lost, "", nil); p.status != http.StatusForbidden {
		t.Fatalf("the replaced link: %d, want 403", p.status)
	}

	// Clear refusals for passwords too short or too long.
	for pw, want := range map[string]string{"short": "at least 8 characters", strings.Repeat("x", 1025): "at most 1024 characters"} {
		p := fetch(t, "POST", s.url+"/setup", "", url.Values{"token": {token}, "name": {"Ann"}, "password": {pw}})
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, want) {
			t.Fatalf("a %d-character password: %d, want 400 saying %q", len(pw), p.status, want)
		}
	}
	p := fetch(t, "POST", s.url+"/setup", "", url.Values{"token": {token}, "name": {"Ann"}, "password": {"correct horse"}})
	session := p.cookies["nochat_session"]
	if p.status != http.StatusSeeOther || p.location != "/" || session == "" {
		t.Fatalf("creating the admin: %d to %q with cookies %v, want 303 to / signed in", p.status, p.location, p.cookies)
	}
	cookie := "nochat_session=" + session
	if dash := fetch(t, "GET", s.url+"/admin/live", cookie, nil); dash.status != 200 || !strings.Contains(dash.body, "offered: chat") {
		t.Fatalf("the new admin's dashboard: %d, want 200 with the error from before the restart", dash.status)
	}
	// The link is spent.
	if p := fetch(t, "GET", s.url+"/setup?token="+token, "", nil); p.status != http.StatusGone {
		t.Fatalf("the used link: %d, want 410", p.status)
	}
	if p := fetch(t, "POST", s.url+"/setup", "", url.Values{"token": {token}, "name": {"Bob"}, "password": {"correct horse"}}); p.status != http.StatusGone || len(p.cookies) > 0 {
		t.Fatalf("the used link again: %d, want 410 and no session", p.status)
	}

	// A new link, asked for once an admin exists, is not made.
	s.shutdown(t)
	s = start(t, env, "-new-setup-link")
	if strings.Contains(s.logs.String(), "setup?token=") || !strings.Contains(s.logs.String(), "-new-setup-link is not used") {
		t.Fatalf("-new-setup-link with an admin:\n%s", s.logs)
	}

	// A restart signs nobody out and logs no link.
	s.shutdown(t)
	s = start(t, env)
	if strings.Contains(s.logs.String(), "setup") {
		t.Fatalf("a set-up line after the first admin exists:\n%s", s.logs)
	}
	if dash := fetch(t, "GET", s.url+"/admin/live", cookie, nil); dash.status != 200 {
		t.Fatalf("the admin's session after a restart: %d, want 200", dash.status)
	}
	// Names compare as one: "ann" signs in to Ann.
	in := fetch(t, "POST", s.url+"/signin", "", url.Values{"name": {"ann"}, "password": {"correct horse"}})
	if in.status != http.StatusSeeOther || in.cookies["nochat_session"] == "" {
		t.Fatalf("signing in: %d %v, want 303 and a session", in.status, in.cookies)
	}
	if out := fetch(t, "POST", s.url+"/signout", cookie, url.Values{}); out.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d, want 303", out.status)
	}
	if dash := fetch(t, "GET", s.url+"/admin/live", cookie, nil); dash.status != http.StatusUnauthorized {
		t.Fatalf("a signed-out session: %d, want 401", dash.status)
	}
	s.shutdown(t)

	// The database keeps neither the token nor the password nor a session.
	raw, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, secret := range []string{token, "correct horse", in.cookies["nochat_session"]} {
		var n int
		if err := raw.QueryRow(`SELECT (SELECT count(*) FROM settings WHERE instr(value, ?) > 0)
			+ (SELECT count(*) FROM accounts WHERE instr(password_hash, ?) > 0)
			+ (SELECT count(*) FROM sessions WHERE instr(token_hash, ?) > 0)`, secret, secret, secret).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%q is stored as it is", secret)
		}
	}
}

// previousVersionDB builds a database as the version before accounts left
// it: migrations 0001 to 0005, two people's messages and a stored admin
// password.
func previousVersionDB(t *testing.T, path, adminPassword string) {
	t.Helper()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	names, err := filepath.Glob("db/migrations/000[1-5]_*.sql")
	if err != nil || len(names) != 5 {
		t.Fatalf("migrations 1-5: %v %v", names, err)
	}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(string(b)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(adminPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"INSERT INTO messages (user, message, timestamp) VALUES ('ann', 'hello from before', ?), ('Bob', 'hi ann', ?)", []any{now, now}},
		{"INSERT INTO settings (key, value) VALUES ('admin_password_hash', ?)", []any{string(hash)}},
		{"PRAGMA user_version = 5", nil},
	} {
		if _, err := raw.Exec(q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPreviousVersionKeepsItsMessagesAndAdminPasswordUntilTheFirstAdmin(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "nochat.db")
	previousVersionDB(t, dbPath, "old admin password")
	env := map[string]string{"NOCHAT_DB": dbPath}
	s := start(t, env)
	_, token := setupLink(t, s)

	resp, err := http.Get(s.url + "/discussion/latest/10")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := string(b); !strings.Contains(got, `"user":"ann","message":"hello from before"`) || !strings.Contains(got, `"user":"Bob","message":"hi ann"`) || strings.Count(got, `"user_id":null`) != 2 {
		t.Fatalf("history after the migration = %s, want both messages under their names, as guests'", got)
	}
	legacy, status := adminLogin(t, s.url, "old admin password")
	if legacy == "" {
		t.Fatalf("the stored admin password before any admin account: %d, want a session", status)
	}
	if got := withSession(t, "GET", s.url+"/admin/live", legacy); got != 200 {
		t.Fatalf("the admin password's session: %d, want 200", got)
	}

	p := fetch(t, "POST", s.url+"/setup", "", url.Values{"token": {token}, "name": {"Ann"}, "password": {"a new password"}})
	if p.status != http.StatusSeeOther || p.cookies["nochat_session"] == "" {
		t.Fatalf("creating the first admin: %d, want 303 and a session", p.status)
	}
	if !strings.Contains(s.logs.String(), "the admin password is retired") {
		t.Fatalf("the log does not say the admin password is retired:\n%s", s.logs)
	}
	if got := withSession(t, "GET", s.url+"/admin/live", legacy); got != http.StatusUnauthorized {
		t.Fatalf("the admin password's session after the first admin: %d, want 401", got)
	}
	if _, got := adminLogin(t, s.url, "old admin password"); got != http.StatusUnauthorized {
		t.Fatalf("the retired admin password: %d, want 401", got)
	}
	if p := fetch(t, "GET", s.url+"/admin/login", "", nil); p.status != http.StatusSeeOther || p.location != "/signin?next=/admin" {
		t.Fatalf("the admin login page once admins are accounts: %d to %q, want 303 to /signin?next=/admin", p.status, p.location)
	}

	// Given again with -admin-password, the old password stays retired.
	s.shutdown(t)
	env["NOCHAT_ADMIN_PASSWORD"] = "old admin password"
	s = start(t, env)
	if _, got := adminLogin(t, s.url, "old admin password"); got != http.StatusUnauthorized {
		t.Fatalf("-admin-password after the first admin: %d, want 401", got)
	}
	if !strings.Contains(s.logs.String(), "-admin-password is not used") {
		t.Fatalf("the log does not say -admin-password is not used:\n%s", s.logs)
	}
	resp, err = http.Get(s.url + "/discussion/latest/10")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := string(b); !strings.Contains(got, `"user":"ann","message":"hello from before"`) {
		t.Fatalf("history after the first admin = %s", got)
	}
}

// frame reads the next nochat.v1 frame of a type, skipping others.
func frame(t *testing.T, c *websocket.Conn, typ string) map[string]any {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 50 {
		var f struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := c.ReadJSON(&f); err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if f.Type == typ {
			return f.Data
		}
	}
	t.Fatalf("no %s frame in 50", typ)
	return nil
}

func TestGuestsSettingAndMembersOnTheSocketAndREST(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "nochat.db")
	env := map[string]string{"NOCHAT_DB": dbPath}
	s := start(t, env)
	_, token := setupLink(t, s)
	p := fetch(t, "POST", s.url+"/setup", "", url.Values{"token": {token}, "name": {"Ann"}, "password": {"correct horse"}})
	cookie := "nochat_session=" + p.cookies["nochat_session"]
	if p.cookies["nochat_session"] == "" {
		t.Fatalf("set-up: %d, no session", p.status)
	}
	// A member's socket, as the page opens it: the cookie, and the page's
	// own origin.
	member := func(s *server) http.Header { return http.Header{"Cookie": {cookie}, "Origin": {s.url}} }

	t.Run("guests on: the tutorial's client works; a member's name is refused to guests", func(t *testing.T) {
		echo, _, err := (&websocket.Dialer{Subprotocols: []string{"echo-protocol"}}).Dial(wsURL(s.url), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer echo.Close()
		echo.WriteMessage(websocket.TextMessage, []byte("hello from the tutorial"))
		echo.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, b, err := echo.ReadMessage(); err != nil || string(b) != "hello from the tutorial" {
			t.Fatalf("echo: %q %v", b, err)
		}
		// ?user=, nick and REST all compare names as accounts do.
		for _, name := range []string{"ANN", "\u0410nn" /* Cyrillic А */, "\uff41\uff4e\uff4e" /* full width */} {
			_, resp, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial(wsURL(s.url)+"?user="+url.QueryEscape(name), nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("a guest socket as ?user=%q: %v, want 400", name, err)
			}
		}
		guest, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial(wsURL(s.url), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer guest.Close()
		if hello := frame(t, guest, "hello"); hello["guest"] != true || hello["user_id"] != nil || hello["role"] != "guest" {
			t.Fatalf("a guest's hello = %v, want guest true, user_id null, role guest", hello)
		}
		guest.WriteJSON(map[string]any{"type": "nick", "data": map[string]any{"user": "ann"}})
		if e := frame(t, guest, "error"); e["code"] != "bad_name" || !strings.Contains(e["message"].(string), "member") {
			t.Fatalf("a guest's nick to a member's name: %v, want bad_name", e)
		}
		if status, body := postStatus(t, s.url+"/discussion/impostor?user=Ann"); status != http.StatusBadRequest || !strings.Contains(body, "member") {
			t.Fatalf("a REST send as Ann without her session: %d %s, want 400", status, body)
		}
	})

	t.Run("a member's socket and REST sends are theirs", func(t *testing.T) {
		c, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial(wsURL(s.url)+"?user=someone", member(s))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		hello := frame(t, c, "hello")
		if hello["user"] != "Ann" || hello["user_id"] != float64(1) || hello["role"] != "admin" || hello["guest"] != false {
			t.Fatalf("a member's hello = %v, want Ann, user_id 1, admin, not a guest", hello)
		}
		c.WriteJSON(map[string]any{"type": "send", "data": map[string]any{"message": "from Ann's socket", "cid": "c1"}})
		if m := frame(t, c, "message"); m["user"] != "Ann" || m["user_id"] != float64(1) {
			t.Fatalf("Ann's message = %v, want user Ann, user_id 1", m)
		}
		req, _ := http.NewRequest("POST", s.url+"/discussion", strings.NewReader(`{"user": "not Ann", "message": "from Ann over REST"}`))
		req.Header.Set("Cookie", cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || !strings.Contains(string(b), `"user":"Ann"`) || !strings.Contains(string(b), `"user_id":1`) {
			t.Fatalf("Ann's REST send: %d %s, want 201 under her name and id", resp.StatusCode, b)
		}
	})
	s.shutdown(t)

	t.Run("guests read: they read, and every way to send refuses them", func(t *testing.T) {
		env["NOCHAT_GUESTS"] = "read"
		s := start(t, env)
		before := len(s.stored(t))
		v1, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial(wsURL(s.url), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer v1.Close()
		frame(t, v1, "hello")
		v1.WriteJSON(map[string]any{"type": "send", "data": map[string]any{"message": "a guest's try", "cid": "g1"}})
		if e := frame(t, v1, "error"); e["code"] != "sign_in_required" || e["cid"] != "g1" {
			t.Fatalf("a guest's send: %v, want sign_in_required for g1", e)
		}
		echo, _, err := (&websocket.Dialer{Subprotocols: []string{"echo-protocol"}}).Dial(wsURL(s.url), nil)
		if err != nil {
			t.Fatalf("the tutorial's client may still connect and read: %v", err)
		}
		defer echo.Close()
		echo.WriteMessage(websocket.TextMessage, []byte("the tutorial's try"))
		echo.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err = echo.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || !strings.Contains(ce.Text, "sign in") {
			t.Fatalf("the tutorial client's send: %v, want a close 1008 saying to sign in", err)
		}
		if status, body := postStatus(t, s.url+"/discussion/a%20REST%20try"); status != http.StatusUnauthorized || !strings.Contains(body, `"error":"sign in`) {
			t.Fatalf("a guest's REST send: %d %s, want 401 saying to sign in", status, body)
		}
		if got := len(s.stored(t)); got != before {
			t.Fatalf("%d messages stored, want %d: nothing from guests", got, before)
		}
		// The member still sends.
		c, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial(wsURL(s.url), member(s))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		frame(t, c, "hello")
		c.WriteJSON(map[string]any{"type": "send", "data": map[string]any{"message": "Ann still writes", "cid": "c2"}})
		frame(t, c, "ack")
		s.shutdown(t)
	})

	t.Run("guests off: no socket, no history, the page asks to sign in", func(t *testing.T) {
		env["NOCHAT_GUESTS"] = "off"
		s := start(t, env)
		_, resp, err := (&websocket.Dialer{Subprotocols: []string{"echo-protocol"}}).Dial(wsURL(s.url), nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the tutorial's client with guests off: %v, want 401 before the upgrade", err)
		}
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), "sign in") {
			t.Fatalf("the refusal says %q, want why", b)
		}
		for _, path := range []string{"/discussion/latest/5", "/discussion"} {
			if p := fetch(t, "GET", s.url+path, "", nil); p.status != http.StatusUnauthorized || !strings.Contains(p.body, `"error"`) {
				t.Fatalf("GET %s as a guest: %d %s, want 401", path, p.status, p.body)
			}
			if p := fetch(t, "GET", s.url+path, cookie, nil); p.status != http.StatusOK || !strings.Contains(p.body, "Ann still writes") {
				t.Fatalf("GET %s as Ann: %d, want 200 and the history", path, p.status)
			}
		}
		if p := fetch(t, "GET", s.url+"/", "", nil); p.status != http.StatusSeeOther || p.location != "/signin" {
			t.Fatalf("the page as a guest: %d to %q, want 303 to /signin", p.status, p.location)
		}
		if p := fetch(t, "GET", s.url+"/", cookie, nil); p.status != http.StatusOK || !strings.Contains(p.body, `href="/account"`) {
			t.Fatalf("the page as Ann: %d, want 200 with her account's link", p.status)
		}
		if p := fetch(t, "POST", s.url+"/discussion/x", "", url.Values{}); p.status != http.StatusUnauthorized {
			t.Fatalf("a guest's REST send: %d, want 401", p.status)
		}
		c, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial(wsURL(s.url), member(s))
		if err != nil {
			t.Fatalf("Ann's socket with guests off: %v", err)
		}
		c.Close()
	})
}
