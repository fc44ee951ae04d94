package handlers

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/db"
)

// newSession is the session cookie resp sets, or "" if it sets none.
func newSession(resp *http.Response) string {
	for _, c := range resp.Cookies() {
		if c.Name == personCookie && c.MaxAge > 0 {
			return c.Value
		}
	}
	return ""
}

// signInAs signs in with a user agent and returns the session cookie's
// value.
func signInAs(t *testing.T, srv *httptest.Server, name, password, agent string) string {
	t.Helper()
	resp := post(t, srv, "/signin", "192.0.2.1", url.Values{"name": {name}, "password": {password}}, map[string]string{"User-Agent": agent})
	session := newSession(resp)
	if session == "" {
		t.Fatalf("signing in as %s: %d and no session", name, resp.StatusCode)
	}
	return session
}

// as sends a request with a session and returns the status, Location
// and body.
func as(t *testing.T, srv *httptest.Server, method, path, session string, form url.Values) (int, string, string) {
	t.Helper()
	header := map[string]string{}
	if session != "" {
		header["Cookie"] = personCookie + "=" + session
	}
	resp, body := request(t, srv, method, path, form, header)
	return resp.StatusCode, resp.Header.Get("Location"), body
}

// openSocket opens the chat page's socket with a session, as the page does.
func openSocket(t *testing.T, srv *httptest.Server, session string) *websocket.Conn {
	t.Helper()
	return dialPage(t, srv, "/", session)
}

// dialPage opens a nochat.v1 socket at path from the page's origin, with
// the session if there is one; it is closed when the test ends.
func dialPage(t *testing.T, srv *httptest.Server, path, session string) *websocket.Conn {
	t.Helper()
	h := http.Header{"Origin": {srv.URL}}
	if session != "" {
		h.Set("Cookie", personCookie+"="+session)
	}
	c, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial("ws"+strings.TrimPrefix(srv.URL, "http")+path, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedSignedOut reads c until it closes, and fails unless it was closed
// as signed out.
func closedSignedOut(t *testing.T, c *websocket.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 100 {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || !strings.Contains(ce.Text, "signed out") {
			t.Fatalf("%s: %v, want a close 1008 saying signed out", what, err)
		}
		return
	}
	t.Fatalf("%s: still open after 100 frames", what)
}

var sessionRowRe = regexp.MustCompile(`(?s)<p class="device">(.*?)</p>.*?/account/sessions/(\d+)/end`)

// sessionIDs maps the device names on an account page to their session ids.
func sessionIDs(page string) map[string]string {
	ids := map[string]string{}
	for _, m := range sessionRowRe.FindAllStringSubmatch(page, -1) {
		device := strings.TrimSpace(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(m[1], " "))
		ids[strings.Join(strings.Fields(device), " ")] = m[2]
	}
	return ids
}

const (
	firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	phone   = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36"
)

func TestPeopleSeeAndEndTheirOwnSessionsOnly(t *testing.T) {
	srv, clock, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember})
	laptop := signInAs(t, srv, "Ann", "password of Ann", firefox)
	mobile := signInAs(t, srv, "Ann", "password of Ann", phone)
	curl := signInAs(t, srv, "Ann", "password of Ann", "curl/8.5")
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)

	status, _, page := as(t, srv, "GET", "/account", laptop, nil)
	ids := sessionIDs(page)
	if status != 200 || len(ids) != 3 || ids["Firefox on Linux this device"] == "" || ids["Chrome on Android"] == "" || ids["curl"] == "" {
		t.Fatalf("Ann's account page: %d, sessions %v; want her three, this one marked", status, ids)
	}
	if strings.Count(page, "Last seen") != 2 || strings.Count(page, "In use now") != 1 {
		t.Fatal("the page does not say when each other session was last seen, and this one in use now")
	}

	t.Run("guests and other people cannot", func(t *testing.T) {
		if status, loc, _ := as(t, srv, "GET", "/account", "", nil); status != http.StatusSeeOther || loc != "/signin?next=/account" {
			t.Fatalf("a guest's GET /account: %d to %q, want 303 to sign in", status, loc)
		}
		for _, path := range []string{"/account/sessions/" + ids["Chrome on Android"] + "/end", "/account/sessions/end-others", "/account/password"} {
			if status, _, _ := as(t, srv, "POST", path, "", url.Values{}); status != http.StatusUnauthorized {
				t.Fatalf("a guest's POST %s: %d, want 401", path, status)
			}
		}
		if status, _, _ := as(t, srv, "POST", "/account/sessions/"+ids["Chrome on Android"]+"/end", bob, url.Values{}); status != http.StatusNotFound {
			t.Fatalf("Bob ending Ann's session: %d, want 404", status)
		}
		cross := post(t, srv, "/account/sessions/end-others", "192.0.2.1", url.Values{}, map[string]string{"Cookie": personCookie + "=" + laptop, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
		if cross.StatusCode != http.StatusForbidden {
			t.Fatalf("another site ending Ann's sessions: %d, want 403", cross.StatusCode)
		}
		if status, _, _ := as(t, srv, "GET", "/account", mobile, nil); status != 200 {
			t.Fatalf("Ann's phone after those attempts: %d, want 200", status)
		}
	})

	t.Run("sign out one", func(t *testing.T) {
		phoneSocket := openSocket(t, srv, mobile)
		frame(t, phoneSocket, "hello") // the hub has it: a session ended now must close it
		ended, _ := request(t, srv, "POST", "/account/sessions/"+ids["Chrome on Android"]+"/end", url.Values{}, map[string]string{"Cookie": personCookie + "=" + laptop})
		if loc := ended.Header.Get("Location"); ended.StatusCode != http.StatusSeeOther || loc != "/account" {
			t.Fatalf("ending the phone's session: %d to %q", ended.StatusCode, loc)
		}
		// The page it goes back to says so, once.
		note := ""
		for _, c := range ended.Cookies() {
			if c.Name == doneCookie {
				note = c.Value
			}
		}
		if _, page := request(t, srv, "GET", "/account", nil, map[string]string{"Cookie": personCookie + "=" + laptop + "; " + doneCookie + "=" + note}); !strings.Contains(page, "That session is signed out") || strings.Contains(page, "Chrome on Android") {
			t.Fatalf("the account page after ending the phone's session does not say so, or lists it still (note cookie %q)", note)
		}
		if status, _, _ := as(t, srv, "GET", "/account", mobile, nil); status != http.StatusSeeOther {
			t.Fatalf("the ended phone session: %d, want 303 to sign in", status)
		}
		closedSignedOut(t, phoneSocket, "the phone's open page")
	})

	t.Run("changing the password ends the other sessions", func(t *testing.T) {
		for form, want := range map[string]int{"wrong current": http.StatusUnauthorized, "short new": http.StatusBadRequest} {
			current, next := "password of Ann", "short"
			if form == "wrong current" {
				current, next = "not it", "a long new password"
			}
			if status, _, _ := as(t, srv, "POST", "/account/password", laptop, url.Values{"current": {current}, "new": {next}}); status != want {
				t.Fatalf("%s: %d, want %d", form, status, want)
			}
		}
		clock.add(time.Minute) // past the account's limit
		curlSocket, laptopSocket := openSocket(t, srv, curl), openSocket(t, srv, laptop)
		frame(t, curlSocket, "hello")
		frame(t, laptopSocket, "hello")
		changed, _ := request(t, srv, "POST", "/account/password", url.Values{"current": {"password of Ann"}, "new": {"a long new password"}}, map[string]string{"Cookie": personCookie + "=" + laptop})
		where := changed.Header.Get("Location")
		if changed.StatusCode != http.StatusSeeOther || where != "/account" ||
			!slices.ContainsFunc(changed.Cookies(), func(c *http.Cookie) bool {
				return c.Name == doneCookie && c.Value == "password-1" && c.Path == "/account" && c.MaxAge > 0
			}) {
			t.Fatalf("the change: %d to %q with cookies %v, want 303 to the account page saying the other session ended", changed.StatusCode, where, changed.Cookies())
		}
		// The account page says what was done, once: it clears the note's
		// cookie, so a reload of its address neither sends anything again
		// nor says it again.
		resp, page := request(t, srv, "GET", where, nil, map[string]string{"Cookie": personCookie + "=" + laptop + "; " + doneCookie + "=password-1"})
		if resp.StatusCode != 200 || !strings.Contains(page, "Your password is changed. Your other session is signed out.") ||
			!regexp.MustCompile(`In use now\s+· signed in <time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d UTC">(just now|\d+ minutes? ago)</time>`).MatchString(page) {
			t.Fatalf("the account page after the change: %d, want 200 saying the other session ended", resp.StatusCode)
		}
		if cleared := slices.ContainsFunc(resp.Cookies(), func(c *http.Cookie) bool { return c.Name == doneCookie && c.MaxAge < 0 && c.Path == "/account" }); !cleared {
			t.Fatalf("the account page left its note's cookie: %v", resp.Cookies())
		}
		if status, _, page := as(t, srv, "GET", where, laptop, nil); status != 200 || strings.Contains(page, "password is changed") {
			t.Fatalf("a reload of the account page: %d, and it says the change again", status)
		}
		for _, form := range []string{"/account/password", "/account/name"} {
			if status, to, _ := as(t, srv, "GET", form, laptop, nil); status != http.StatusSeeOther || to != "/account" {
				t.Fatalf("GET %s: %d to %q, want 303 to /account", form, status, to)
			}
		}
		if status, _, _ := as(t, srv, "GET", "/account", curl, nil); status != http.StatusSeeOther {
			t.Fatalf("the other session after the change: %d, want 303 to sign in", status)
		}
		closedSignedOut(t, curlSocket, "the other session's open socket")
		// This device's socket goes on: a send is acknowledged.
		laptopSocket.WriteJSON(map[string]any{"type": "send", "data": map[string]any{"message": "still here", "cid": "k1"}})
		laptopSocket.SetReadDeadline(time.Now().Add(10 * time.Second))
		for i := 0; ; i++ {
			var f struct{ Type string }
			if err := laptopSocket.ReadJSON(&f); err != nil || i > 50 {
				t.Fatalf("this device's socket after the change: %v, want an ack", err)
			}
			if f.Type == "ack" {
				break
			}
		}
		if status, _, _ := as(t, srv, "GET", "/account", laptop, nil); status != 200 {
			t.Fatalf("this session after the change: %d, want 200", status)
		}
		if status, _, _ := as(t, srv, "GET", "/account", bob, nil); status != 200 {
			t.Fatalf("Bob after Ann's change: %d, want 200", status)
		}
		clock.add(time.Minute)
		if got := signIn(t, srv, "192.0.2.2", "Ann", "password of Ann"); got != http.StatusUnauthorized {
			t.Fatalf("the old password: %d, want 401", got)
		}
		clock.add(time.Minute)
		if got := signIn(t, srv, "192.0.2.3", "Ann", "a long new password"); got != http.StatusSeeOther {
			t.Fatalf("the new password: %d, want 303", got)
		}
	})

	t.Run("signing out closes this device's open pages", func(t *testing.T) {
		socket := openSocket(t, srv, laptop)
		frame(t, socket, "hello")
		resp, _ := request(t, srv, "POST", "/signout", url.Values{}, map[string]string{"Cookie": personCookie + "=" + laptop})
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/" {
			t.Fatalf("sign out: %d to %q, want 303 to /", resp.StatusCode, loc)
		}
		// The browser forgets the pages the app kept for offline reading.
		if got := resp.Header.Get("Clear-Site-Data"); got != `"cache", "storage"` {
			t.Fatalf("sign out: Clear-Site-Data %q", got)
		}
		closedSignedOut(t, socket, "the signed-out device's socket")
	})
}
