package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
)

// accountID is the id of the account named name.
func accountID(t *testing.T, auth *Auth, name string) int64 {
	t.Helper()
	key, _ := chat.NameKey(name)
	a, err := auth.store.AccountByNameKey(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// peopleURL is the route of an action on name's account.
func peopleURL(t *testing.T, auth *Auth, name, action string) string {
	return fmt.Sprintf("/admin/people/%d/%s", accountID(t, auth, name), action)
}

// auditOf is the dashboard's audit rows, as "actor action target".
func auditOf(t *testing.T, auth *Auth) []string {
	t.Helper()
	log, err := auth.store.(*db.Store).AuditLog(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range log {
		out = append(out, e.Actor+" "+e.Action+" "+e.Target)
	}
	return out
}

// frame reads c until a frame of type typ, and returns its data.
func frame(t *testing.T, c *websocket.Conn, typ string) map[string]any {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
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
}

// closedWith reads c until it closes, and fails unless it was closed with
// code and a reason containing reason.
func closedWith(t *testing.T, c *websocket.Conn, code int, reason, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 1000 {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code || !strings.Contains(ce.Text, reason) {
			t.Fatalf("%s: %v, want a close %d saying %q", what, err, code, reason)
		}
		return
	}
	t.Fatalf("%s: still open after 1000 frames", what)
}

func TestPeopleRoutesAreForAdminsOnly(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Ann": db.RoleMember, "Bob": db.RoleMember})
	member := signInAs(t, srv, "Ann", "password of Ann", firefox)
	admin := signInAs(t, srv, "Ada", "password of Ada", firefox)
	for _, action := range []string{"role", "deactivate", "reactivate", "ban", "unban", "reset-link", "delete-messages"} {
		path := peopleURL(t, auth, "Bob", action)
		form := url.Values{"role": {"admin"}, "delete_messages": {"on"}}
		t.Run(action, func(t *testing.T) {
			if code, _, body := as(t, srv, "POST", path, member, form); code != http.StatusForbidden {
				t.Fatalf("a member's POST %s: %d %s, want 403", path, code, body)
			}
			if code, _, body := as(t, srv, "POST", path, "", form); code != http.StatusUnauthorized {
				t.Fatalf("a guest's POST %s: %d %s, want 401", path, code, body)
			}
			resp, body := request(t, srv, "POST", path, form, map[string]string{
				"Cookie": personCookie + "=" + admin, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site",
			})
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("another site's POST %s with an admin's cookie: %d %s, want 403", path, resp.StatusCode, body)
			}
			if code, _, _ := as(t, srv, "GET", path, admin, nil); code != http.StatusMethodNotAllowed && code != http.StatusNotFound {
				t.Fatalf("GET %s: %d, want 405 or 404", path, code)
			}
		})
	}
	bob, err := auth.store.AccountByID(context.Background(), accountID(t, auth, "Bob"))
	if err != nil || bob.Deactivated || bob.Role != db.RoleMember {
		t.Fatalf("Bob after refused actions: %+v, %v; want an active member", bob, err)
	}
	if lines := auditOf(t, auth); len(lines) != 0 {
		t.Fatalf("audit after refused actions: %q, want none", lines)
	}
	t.Run("bad input", func(t *testing.T) {
		for _, c := range []struct {
			path string
			form url.Values
			want int
		}{
			{"/admin/people/x/deactivate", nil, http.StatusBadRequest},
			{"/admin/people/0/deactivate", nil, http.StatusBadRequest},
			{"/admin/people/99999/deactivate", nil, http.StatusNotFound},
			{peopleURL(t, auth, "Bob", "role"), url.Values{"role": {"owner"}}, http.StatusBadRequest},
			{peopleURL(t, auth, "Bob", "role"), nil, http.StatusBadRequest},
		} {
			code, _, body := as(t, srv, "POST", c.path, admin, c.form)
			if code != c.want || !strings.Contains(body, `"error"`) {
				t.Errorf("POST %s %v: %d %s, want %d with an error", c.path, c.form, code, body, c.want)
			}
		}
	})
}

func TestAdminChangesRolesButNeverLocksThemselvesOut(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Ann": db.RoleMember})
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)

	for _, action := range []string{"role", "deactivate", "ban"} {
		code, _, body := as(t, srv, "POST", peopleURL(t, auth, "Ada", action), ada, url.Values{"role": {"member"}})
		if code != http.StatusForbidden || !strings.Contains(body, "your own") {
			t.Fatalf("Ada's %s on herself: %d %s, want 403 saying she cannot", action, code, body)
		}
	}
	if code, _, _ := as(t, srv, "GET", "/admin", ann, nil); code != http.StatusForbidden {
		t.Fatalf("a member's /admin: %d, want 403", code)
	}
	if code, loc, body := as(t, srv, "POST", peopleURL(t, auth, "Ann", "role"), ada, url.Values{"role": {"admin"}}); code != http.StatusSeeOther || loc != "/admin#people" {
		t.Fatalf("make Ann an admin: %d %s %s, want 303 to /admin#people", code, loc, body)
	}
	if code, _, _ := as(t, srv, "GET", "/admin", ann, nil); code != http.StatusOK {
		t.Fatalf("Ann's /admin as an admin: %d, want 200", code)
	}
	// Now Ann may take Ada's role; Ada then is refused the dashboard.
	if code, _, body := as(t, srv, "POST", peopleURL(t, auth, "Ada", "role"), ann, url.Values{"role": {"member"}}); code != http.StatusSeeOther {
		t.Fatalf("Ann removes Ada's admin role: %d %s", code, body)
	}
	if code, _, _ := as(t, srv, "GET", "/admin", ada, nil); code != http.StatusForbidden {
		t.Fatalf("Ada's /admin as a member: %d, want 403", code)
	}
	want := []string{"Ann role Ada", "Ada role Ann"}
	if got := auditOf(t, auth); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("audit = %q, want %q", got, want)
	}
	_, _, page := as(t, srv, "GET", "/admin", ann, nil)
	if !strings.Contains(page, "admin → member") || !strings.Contains(page, `id="people-list"`) {
		t.Fatal("the dashboard shows no audit line of the role change, or no list of people")
	}
}

func TestDeactivateClosesSocketsAtOnceAndRefusesSignIn(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Bob": db.RoleMember})
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", phone)
	socket := openSocket(t, srv, bob)
	frame(t, socket, "hello")

	code, _, body := as(t, srv, "POST", peopleURL(t, auth, "Bob", "deactivate"), ada, nil)
	if code != http.StatusSeeOther {
		t.Fatalf("deactivate: %d %s", code, body)
	}
	closedWith(t, socket, chat.CloseAccountEnded, "deactivated by an admin", "Bob's open page")
	if code, _, _ := as(t, srv, "GET", "/account", bob, nil); code != http.StatusSeeOther {
		t.Fatalf("Bob's old session: /account %d, want 303 to sign in", code)
	}
	resp, page := request(t, srv, "POST", "/signin", url.Values{"name": {"Bob"}, "password": {"password of Bob"}}, map[string]string{"X-Forwarded-For": "192.0.2.1"})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "deactivated") || newSession(resp) != "" {
		t.Fatalf("Bob's sign-in: %d, session %q, want 403 saying the account is deactivated", resp.StatusCode, newSession(resp))
	}
	// A wrong password is still only wrong: it tells nothing of the account.
	if code := signIn(t, srv, "192.0.2.2", "Bob", "not it at all"); code != http.StatusUnauthorized {
		t.Fatalf("wrong password for a deactivated account: %d, want 401", code)
	}
	if code, _, body := as(t, srv, "POST", peopleURL(t, auth, "Bob", "deactivate"), ada, nil); code != http.StatusConflict || !strings.Contains(body, "already") {
		t.Fatalf("deactivate twice: %d %s, want 409 saying it is already", code, body)
	}
	if code, _, body := as(t, srv, "POST", peopleURL(t, auth, "Bob", "reactivate"), ada, nil); code != http.StatusSeeOther {
		t.Fatalf("reactivate: %d %s", code, body)
	}
	if code, _, body := as(t, srv, "POST", peopleURL(t, auth, "Bob", "reactivate"), ada, nil); code != http.StatusConflict || !strings.Contains(body, "active already") {
		t.Fatalf("reactivate twice: %d %s, want 409", code, body)
	}
	if code, _, body := as(t, srv, "POST", peopleURL(t, auth, "Bob", "unban"), ada, nil); code != http.StatusConflict || !strings.Contains(body, "not banned") {
		t.Fatalf("unban an account that is not banned: %d %s, want 409", code, body)
	}
	if code := signIn(t, srv, "192.0.2.3", "Bob", "password of Bob"); code != http.StatusSeeOther {
		t.Fatalf("Bob's sign-in once reactivated: %d, want 303", code)
	}
	want := "Ada reactivate Bob|Ada deactivate Bob"
	if got := strings.Join(auditOf(t, auth), "|"); got != want {
		t.Fatalf("audit = %q, want %q", got, want)
	}
}

func TestAnotherAdminCanBeDeactivatedButNotTheLast(t *testing.T) {
	// Another admin's account can be deactivated; the last one cannot,
	// whoever asks.
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Eve": db.RoleAdmin})
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)
	if code, _, body := as(t, srv, "POST", peopleURL(t, auth, "Eve", "deactivate"), ada, nil); code != http.StatusSeeOther {
		t.Fatalf("deactivate another admin: %d %s", code, body)
	}
	if _, err := auth.store.(*db.Store).SetRole(context.Background(), accountID(t, auth, "Ada"), db.RoleMember); !errors.Is(err, db.ErrLastAdmin) {
		t.Fatalf("the last admin's role: %v, want ErrLastAdmin", err)
	}
}

var resetLinkRe = regexp.MustCompile(`value="(http://[^"]+/reset/([A-Za-z0-9_-]{43}))"`)

func TestResetLinkWorksOnceAndEndsOtherSessions(t *testing.T) {
	srv, clock, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Bob": db.RoleMember})
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", phone)
	socket := openSocket(t, srv, bob)
	frame(t, socket, "hello")

	code, _, page := as(t, srv, "POST", peopleURL(t, auth, "Bob", "reset-link"), ada, nil)
	m := resetLinkRe.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		t.Fatalf("reset link: %d, link shown: %v", code, m != nil)
	}
	path := "/reset/" + m[2]
	if code, _, body := as(t, srv, "GET", path, "", nil); code != http.StatusOK || !strings.Contains(body, "Bob") {
		t.Fatalf("GET %s: %d, want the form for Bob", path, code)
	}
	if code, _, body := as(t, srv, "POST", path, "", url.Values{"password": {"short"}}); code != http.StatusBadRequest || !strings.Contains(body, "at least 8") {
		t.Fatalf("a short password: %d, want 400 saying why", code)
	}
	resp, _ := request(t, srv, "POST", path, url.Values{"password": {"a brand new password"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || newSession(resp) == "" {
		t.Fatalf("reset: %d, session %q; want 303 and signed in", resp.StatusCode, newSession(resp))
	}
	closedSignedOut(t, socket, "Bob's other open page")
	if code, _, _ := as(t, srv, "GET", "/account", bob, nil); code != http.StatusSeeOther {
		t.Fatalf("Bob's old session after the reset: %d, want 303 to sign in", code)
	}
	if code := signIn(t, srv, "192.0.2.5", "Bob", "a brand new password"); code != http.StatusSeeOther {
		t.Fatalf("sign-in with the new password: %d", code)
	}
	for _, method := range []string{"GET", "POST"} {
		code, _, body := as(t, srv, method, path, "", url.Values{"password": {"yet another password"}})
		if code != http.StatusGone || !strings.Contains(body, "does not work") {
			t.Fatalf("%s of a used link: %d, want 410 saying it does not work", method, code)
		}
	}
	if code := signIn(t, srv, "192.0.2.6", "Bob", "yet another password"); code == http.StatusSeeOther {
		t.Fatal("a used reset link set the password again")
	}
	// A link expires after a day.
	_, _, page = as(t, srv, "POST", peopleURL(t, auth, "Bob", "reset-link"), ada, nil)
	m = resetLinkRe.FindStringSubmatch(page)
	clock.add(25 * time.Hour)
	if code, _, _ := as(t, srv, "GET", "/reset/"+m[2], "", nil); code != http.StatusGone {
		t.Fatalf("an expired link: %d, want 410", code)
	}
	if code, _, _ := as(t, srv, "GET", "/reset/not-a-token", "", nil); code != http.StatusGone {
		t.Fatalf("a made-up link: %d, want 410", code)
	}
	if got := auditOf(t, auth); len(got) != 2 || got[0] != "Ada reset link Bob" {
		t.Fatalf("audit = %q, want two reset-link lines", got)
	}
	if strings.Contains(strings.Join(auditOf(t, auth), " "), m[2]) {
		t.Fatal("the audit list holds a reset token")
	}
}

func TestBanRefusesAddressesAndDeletesMessages(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Bob": db.RoleMember})
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox) // from 192.0.2.1
	// Bob signs in from 203.0.113.7 and keeps a page open from an IPv6 address.
	resp := post(t, srv, "/signin", "203.0.113.7", url.Values{"name": {"Bob"}, "password": {"password of Bob"}}, nil)
	bob := newSession(resp)
	h := http.Header{"Origin": {srv.URL}, "Cookie": {personCookie + "=" + bob}, "X-Forwarded-For": {"2001:db8:1:2::5"}}
	bobSocket, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/", h)
	if err != nil {
		t.Fatal(err)
	}
	defer bobSocket.Close()
	frame(t, bobSocket, "hello")
	for i, text := range []string{"spam one", "spam two"} {
		bobSocket.WriteJSON(map[string]any{"type": "send", "data": map[string]any{"message": text, "cid": fmt.Sprint("c", i)}})
		frame(t, bobSocket, "ack")
	}
	// A guest watches the room; another shares Bob's network.
	watcher := dialPage(t, srv, "/", "")
	frame(t, watcher, "hello")
	neighbour := dialFrom(t, srv.URL, "2001:db8:1:2::7", "Neighbour")
	frame(t, neighbour, "hello")
	if code, _ := postStatusAs(t, srv, "/discussion/a%20guest%20line", "198.51.100.1"); code != http.StatusOK {
		t.Fatalf("a guest's send: %d", code)
	}

	code, _, body := as(t, srv, "POST", peopleURL(t, auth, "Bob", "ban"), ada, url.Values{"delete_messages": {"on"}})
	if code != http.StatusSeeOther {
		t.Fatalf("ban: %d %s", code, body)
	}
	closedWith(t, bobSocket, chat.CloseAccountEnded, "banned by an admin", "Bob's open page")
	// The neighbour is told what happened to it: its address, not an
	// account it does not have.
	closedWith(t, neighbour, chat.CloseAccountEnded, chat.CloseAddressBanned, "the page of a guest at Bob's address")
	deleted := map[float64]bool{}
	watcher.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(deleted) < 2 {
		var f struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := watcher.ReadJSON(&f); err != nil {
			t.Fatalf("the watcher's deleted frames: %v (have %v)", err, deleted)
		}
		if f.Type == "deleted" {
			if f.Data["event"] == nil || f.Data["ids"] != nil {
				t.Fatalf("deleted %v, want one message's deletion, an event of the log", f.Data)
			}
			deleted[f.Data["id"].(float64)] = true
		}
	}
	_, latest := request(t, srv, "GET", "/discussion/latest/10", nil, map[string]string{"X-Forwarded-For": "198.51.100.1"})
	if strings.Contains(latest, "spam") || !strings.Contains(latest, "a guest line") {
		t.Fatalf("history after the ban: %s, want the guest's line only", latest)
	}
	for _, addr := range []string{"203.0.113.7", "2001:db8:1:2::99"} {
		resp, body := request(t, srv, "GET", "/", nil, map[string]string{"X-Forwarded-For": addr})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "banned") {
			t.Fatalf("GET / from banned %s: %d %s, want 403 saying banned", addr, resp.StatusCode, body)
		}
		h := http.Header{"Origin": {srv.URL}, "X-Forwarded-For": {addr}}
		_, resp, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/", h)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a socket from banned %s: %v, want 403", addr, err)
		}
	}
	resp, body = request(t, srv, "POST", "/signin", url.Values{"name": {"Bob"}, "password": {"password of Bob"}}, map[string]string{"X-Forwarded-For": "198.51.100.9"})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "This account is banned") {
		t.Fatalf("Bob's sign-in from elsewhere: %d, want 403 saying the account is banned", resp.StatusCode)
	}
	// The admin's own address is never refused.
	if code, _, _ := as(t, srv, "GET", "/admin", ada, nil); code != http.StatusOK {
		t.Fatalf("the admin's dashboard after the ban: %d", code)
	}
	lines := auditOf(t, auth)
	if len(lines) != 1 || lines[0] != "Ada ban Bob" {
		t.Fatalf("audit = %q", lines)
	}
	log, _ := auth.store.(*db.Store).AuditLog(context.Background(), 1)
	if d := log[0].Detail; !strings.Contains(d, "203.0.113.7") || !strings.Contains(d, "2001:db8:1:2::/64") || !strings.Contains(d, "2 messages deleted") {
		t.Fatalf("ban detail = %q, want both addresses and 2 messages deleted", d)
	}

	if code, _, body := as(t, srv, "POST", peopleURL(t, auth, "Bob", "reactivate"), ada, nil); code != http.StatusConflict || !strings.Contains(body, "unban it first") {
		t.Fatalf("reactivate a banned account: %d %s, want 409", code, body)
	}
	if code, _, body := as(t, srv, "POST", peopleURL(t, auth, "Bob", "unban"), ada, nil); code != http.StatusSeeOther {
		t.Fatalf("unban: %d %s", code, body)
	}
	if resp, _ := request(t, srv, "GET", "/", nil, map[string]string{"X-Forwarded-For": "203.0.113.7"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / after the unban: %d, want 200", resp.StatusCode)
	}
}

// A ban that left a person's messages (deleting them was not asked, or
// stopped part way) is finished from the banned account's row: every
// message goes, more than one of the log's batches, each an event that
// open pages are told of; only for a banned account, and only by an admin.
func TestDeleteMessagesFinishesABan(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Eve": db.RoleMember, "Bob": db.RoleMember})
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)
	eve := signInAs(t, srv, "Eve", "password of Eve", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	// Read before Eve posts, as an admin with the dashboard open as a
	// spammer arrives: its Ban asks nothing stale ("Their 0 messages
	// stay") and offers the deletion all the same.
	_, _, before := as(t, srv, "GET", "/admin", ada, nil)
	eveBan := peopleURL(t, auth, "Eve", "ban")
	if !strings.Contains(before, `hx-post="`+eveBan+`"`) || !strings.Contains(before, "Ban and delete messages") || strings.Contains(before, "0 messages stay") {
		t.Fatalf("the dashboard before Eve posts: no Ban and delete for her, or a count of her messages in the question")
	}
	const spam = 300 // more than a batch of the log's (256)
	var ids []int64
	for i := range spam {
		ids = append(ids, sendTo(t, srv, eve, "lobby", fmt.Sprint("spam ", i)))
	}
	sendTo(t, srv, bob, "lobby", "Bob's own")
	path := peopleURL(t, auth, "Eve", "delete-messages")
	if code, _, body := as(t, srv, "POST", path, ada, nil); code != http.StatusConflict || !strings.Contains(body, "not banned") {
		t.Fatalf("delete-messages of an account not banned: %d %s, want 409", code, body)
	}
	if code, _, body := as(t, srv, "POST", peopleURL(t, auth, "Eve", "ban"), ada, nil); code != http.StatusSeeOther {
		t.Fatalf("ban: %d %s", code, body)
	}
	if _, _, page := as(t, srv, "GET", "/admin", ada, nil); !strings.Contains(page, fmt.Sprintf("Delete %d messages", spam)) || !strings.Contains(page, path) {
		t.Fatalf("the banned account's row offers no deletion of its %d messages", spam)
	}
	if code, _, body := as(t, srv, "POST", path, bob, nil); code != http.StatusForbidden {
		t.Fatalf("a member's delete-messages: %d %s, want 403", code, body)
	}

	watcher := dialPage(t, srv, "/", bob)
	frame(t, watcher, "hello")
	if code, _, body := as(t, srv, "POST", path, ada, nil); code != http.StatusSeeOther {
		t.Fatalf("delete-messages: %d %s", code, body)
	}
	var told []int64
	for _, f := range framesUntil(t, watcher, "the deletions", func(f sockFrame) bool {
		return f.Type == "deleted" && strings.Contains(string(f.Data), fmt.Sprintf(`"id":%d,`, ids[spam-1]))
	}) {
		if f.Type == "deleted" {
			var d struct{ Event, ID int64 }
			json.Unmarshal(f.Data, &d)
			if d.Event == 0 {
				t.Fatalf("deleted %s: not an event of the log", f.Data)
			}
			told = append(told, d.ID)
		}
	}
	if !slices.Equal(told, ids) {
		t.Fatalf("the open page was told of %d deletions, want Eve's %d in order", len(told), spam)
	}
	_, body := call(t, srv, "GET", "/rooms/lobby/messages/latest/10", bob, "", nil)
	if strings.Contains(body, "spam") || !strings.Contains(body, "Bob's own") {
		t.Fatalf("history after the deletion: %s", body)
	}
	if _, _, page := as(t, srv, "GET", "/admin", ada, nil); strings.Contains(page, path) {
		t.Fatal("the banned account's row still offers to delete its messages, with none left")
	}
	log, _ := auth.store.(*db.Store).AuditLog(context.Background(), 1)
	if e := log[0]; e.Action != "delete messages" || e.Target != "Eve" || e.Detail != fmt.Sprintf("%d messages deleted", spam) {
		t.Fatalf("audit line %+v", e)
	}
}

// postStatusAs sends a REST message from addr and returns the status.
func postStatusAs(t *testing.T, srv *httptest.Server, path, addr string) (int, string) {
	t.Helper()
	resp, body := request(t, srv, "POST", path, nil, map[string]string{"X-Forwarded-For": addr})
	return resp.StatusCode, body
}

func TestEveryAdminActionLeavesAnAuditLine(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin})
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)

	socket := dialPage(t, srv, "/?user=Zed", "")
	session := frame(t, socket, "hello")["session"].(string)
	if code, _, body := as(t, srv, "POST", "/admin/sessions/"+session+"/disconnect", ada, nil); code != http.StatusSeeOther {
		t.Fatalf("disconnect: %d %s", code, body)
	}
	if code, _ := postStatusAs(t, srv, "/discussion/rude%20words?user=Zed", "198.51.100.1"); code != http.StatusOK {
		t.Fatalf("send: %d", code)
	}
	if code, _, body := as(t, srv, "POST", "/admin/messages/1/delete", ada, nil); code != http.StatusSeeOther {
		t.Fatalf("delete: %d %s", code, body)
	}
	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/admin/errors/clear", nil},
		{"/admin/invite/reset", nil},
		{"/admin/join-policy", url.Values{"policy": {"open"}}},
		{"/admin/join-policy", url.Values{"policy": {"open"}}}, // no change: no line
	} {
		if code, _, body := as(t, srv, "POST", c.path, ada, c.form); code != http.StatusSeeOther {
			t.Fatalf("POST %s: %d %s", c.path, code, body)
		}
	}
	want := []string{
		"Ada join policy who may join",
		"Ada reset invite the invite link",
		"Ada clear errors the recent errors",
		"Ada delete message message #1",
		"Ada disconnect Zed (session " + session[:8] + ") from 127.0.0.1",
	}
	if got := auditOf(t, auth); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	_, _, page := as(t, srv, "GET", "/admin", ada, nil)
	for _, text := range []string{`id="audit"`, "invite → open", "Zed: rude words"} {
		if !strings.Contains(page, text) {
			t.Errorf("the dashboard's audit list lacks %q", text)
		}
	}
}

func TestAdminPasswordActionsAreAuditedAsTheAdminPassword(t *testing.T) {
	srv, _, auth, _ := testServer{password: "an old admin password"}.start(t)
	resp := post(t, srv, "/admin/login", "192.0.2.1", url.Values{"password": {"an old admin password"}}, nil)
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == cookieName && c.MaxAge > 0 {
			cookie = c.Value
		}
	}
	if cookie == "" {
		t.Fatalf("admin login: %d and no session", resp.StatusCode)
	}
	resp, body := request(t, srv, "POST", "/admin/errors/clear", nil, map[string]string{"Cookie": cookieName + "=" + cookie})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("clear errors: %d %s", resp.StatusCode, body)
	}
	if got := auditOf(t, auth); len(got) != 1 || got[0] != "admin password clear errors the recent errors" {
		t.Fatalf("audit = %q", got)
	}
}

// Disconnecting a session on another node of a cluster is an admin's
// action like any other: refused without a session and to a member, and
// on a server that is in no cluster, a clear 404.
func TestDisconnectOnAnotherNodeIsForAdminsOnly(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Bob": db.RoleMember})
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	path := "/admin/nodes/n1/sessions/abc/disconnect"

	if code, _, _ := as(t, srv, "POST", path, "", nil); code != http.StatusUnauthorized {
		t.Errorf("without a session: %d, want 401", code)
	}
	if code, _, _ := as(t, srv, "POST", path, bob, nil); code != http.StatusForbidden {
		t.Errorf("a member: %d, want 403", code)
	}
	code, _, body := as(t, srv, "POST", path, ada, nil)
	if code != http.StatusNotFound || !strings.Contains(body, "not in a cluster") {
		t.Errorf("an admin on a single node: %d %s, want 404 saying it is in no cluster", code, body)
	}
	long := "/admin/nodes/" + strings.Repeat("n", 65) + "/sessions/abc/disconnect"
	if code, _, body := as(t, srv, "POST", long, ada, nil); code != http.StatusBadRequest || !strings.Contains(body, "at most 64") {
		t.Errorf("a node name of 65 characters: %d %s, want 400", code, body)
	}
	if code, _, body := as(t, srv, "POST", "/admin/nodes/n*1/sessions/abc/disconnect", ada, nil); code != http.StatusNotFound {
		t.Errorf("a node name with a *: %d %s, want 404", code, body)
	}
	if got := auditOf(t, auth); len(got) != 0 {
		t.Errorf("refused disconnects left audit lines: %v", got)
	}
}

// silentCluster is a cluster as node n1 sees it when n2 is heard (its
// presence came) but answers no question: n2 cut off from n1, or dying.
type silentCluster struct{}

func (silentCluster) Name() string                       { return "n1" }
func (silentCluster) Share(string, []byte)               {}
func (silentCluster) Answer(func(string, []byte) []byte) {}
func (silentCluster) Listen(fn func(node, kind string, doc []byte)) {
	go fn("n2", chat.PeerPresence, []byte(`{"online":1,"people":[]}`))
}
func (silentCluster) Ask(ctx context.Context, _, _ string, _ []byte, expect []string) map[string][]byte {
	if len(expect) > 0 {
		<-ctx.Done()
	}
	return nil
}

// On a cluster, a disconnect on a node this one does not hear is a 404 at
// once; on a node that does not answer, a 503 after the wait, and an
// audit line saying it was asked (the node may have closed the session
// with its answer lost); on this node's own name, this node's session.
func TestDisconnectOnASilentNode(t *testing.T) {
	srv, _, auth, _ := testServer{
		accounts: map[string]string{"Ada": db.RoleAdmin},
		hub:      chat.Options{Peers: silentCluster{}},
	}.start(t)
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)

	began := time.Now()
	code, _, body := as(t, srv, "POST", "/admin/nodes/n9/sessions/abc/disconnect", ada, nil)
	if code != http.StatusNotFound || !strings.Contains(body, "no node n9 is heard") {
		t.Errorf("a node nobody hears: %d %s, want 404", code, body)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("a node nobody hears took %v to refuse", took)
	}
	code, _, body = as(t, srv, "POST", "/admin/nodes/n1/sessions/0123456789abcdef/disconnect", ada, nil)
	if code != http.StatusNotFound || !strings.Contains(body, "no such session on n1") {
		t.Errorf("this node's own name, no such session: %d %s, want 404", code, body)
	}
	if got := auditOf(t, auth); len(got) != 0 {
		t.Errorf("refused disconnects left audit lines: %v", got)
	}

	// n2's presence reaches the hub shortly after it starts.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, _, body = as(t, srv, "POST", "/admin/nodes/n2/sessions/0123456789abcdef/disconnect", ada, nil)
		if code != http.StatusNotFound || time.Now().After(deadline) {
			break
		}
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "did not answer") {
		t.Fatalf("a node that does not answer: %d %s, want 503", code, body)
	}
	got := auditOf(t, auth)
	if len(got) != 1 || got[0] != "Ada disconnect session 01234567 on n2" {
		t.Errorf("audit = %q, want the question to n2", got)
	}
}

// A role an admin changes reaches the person's open pages at once: a
// demoted admin's socket no longer deletes others' messages (it kept the
// role it was opened with until the next sign-in), and a member made an
// admin may, without reloading.
func TestARoleChangeReachesOpenPages(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Ann": db.RoleAdmin, "Bob": db.RoleMember})
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)
	ann := openSocket(t, srv, signInAs(t, srv, "Ann", "password of Ann", firefox))
	bob := openSocket(t, srv, signInAs(t, srv, "Bob", "password of Bob", firefox))
	cids := 0
	say := func(c *websocket.Conn, text string) int64 {
		t.Helper()
		cids++
		sendFrame(t, c, "send", map[string]any{"message": text, "cid": fmt.Sprint("c", cids)})
		fs := framesUntil(t, c, text, isText(t, text))
		m, _ := fs[len(fs)-1].message(t)
		return m.ID
	}
	setRole := func(who, role string) {
		t.Helper()
		if code, _, body := as(t, srv, "POST", peopleURL(t, auth, who, "role"), ada, url.Values{"role": {role}}); code != http.StatusSeeOther {
			t.Fatalf("making %s %s: %d %s", who, role, code, body)
		}
	}

	setRole("Ann", db.RoleMember)
	bobs := say(bob, "Bob's first")
	sendFrame(t, ann, "delete", map[string]any{"id": bobs})
	refusedWith(t, ann, "forbidden", "Ann, an admin no more, deleting Bob's message")

	setRole("Bob", db.RoleAdmin)
	anns := say(ann, "Ann's first")
	sendFrame(t, bob, "delete", map[string]any{"id": anns, "cid": "d1"})
	if d := nextOf(t, bob, "deleted").change(t); d.ID != anns {
		t.Fatalf("Bob, made an admin, deleting Ann's message: %+v", d)
	}
}

// A link to what is not there, followed in a browser, opens a page that
// says so and leads on, not a line of plain text (or JSON, for a member
// opening the dashboard).
func TestMissingThingsGetAPage(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	browser := map[string]string{"Cookie": personCookie + "=" + ann, "Accept": "text/html,application/xhtml+xml"}
	for _, c := range []struct {
		path   string
		status int
		says   []string
	}{
		{"/r/nope", http.StatusNotFound, []string{"<h1>No such room</h1>", `href="/"`, "Go to the lobby"}},
		{"/r/lobby/999", http.StatusNotFound, []string{"<h1>No such message</h1>", `href="/r/lobby"`, "Open the room"}},
		{"/admin", http.StatusForbidden, []string{"<h1>The dashboard is for admins</h1>", "signed in as Ann, a member", `href="/"`}},
	} {
		resp, body := request(t, srv, "GET", c.path, nil, browser)
		if resp.StatusCode != c.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %s, want %d and a page", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), c.status)
			continue
		}
		for _, want := range c.says {
			if !strings.Contains(body, want) {
				t.Errorf("GET %s: the page does not say %s:\n%s", c.path, want, body)
			}
		}
	}
	// A script still gets JSON.
	resp, body := request(t, srv, "GET", "/admin", nil, map[string]string{"Cookie": personCookie + "=" + ann, "Accept": "application/json"})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"error":"the dashboard is for admins"`) {
		t.Errorf("GET /admin asking for JSON: %d %s", resp.StatusCode, body)
	}
}

// An admin who leaves while a ban deletes thousands of messages (the
// deletions go on) is still the one its audit line names.
func TestBanAuditNamesTheAdminWhoLeft(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Eve": db.RoleMember})
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)
	store := auth.store.(*db.Store)
	eve := accountID(t, auth, "Eve")
	ctx := context.Background()
	for i := range 20 {
		drafts := make([]db.Draft, 256)
		for j := range drafts {
			drafts[j] = db.Draft{User: "Eve", UserID: eve, Message: fmt.Sprint("spam ", i, " ", j)}
		}
		if _, err := store.Insert(ctx, drafts); err != nil {
			t.Fatal(err)
		}
	}
	leaving, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	form := url.Values{"delete_messages": {"on"}}
	req, _ := http.NewRequestWithContext(leaving, "POST", srv.URL+peopleURL(t, auth, "Eve", "ban"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", personCookie+"="+ada)
	req.Header.Set("Origin", srv.URL)
	if resp, err := srv.Client().Transport.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Skip("the ban with its 5,120 deletions was answered within 100 ms: nobody left before the end")
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		log, err := store.AuditLog(ctx, 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range log {
			if e.Action == "ban" {
				if e.Actor != "Ada" || !strings.Contains(e.Detail, "5120 messages deleted") {
					t.Fatalf("the ban's audit line: %q by %q, want Ada's, with 5120 messages deleted", e.Detail, e.Actor)
				}
				return
			}
		}
	}
	t.Fatal("no audit line for the ban after 30 s")
}

// A people action says what it did on the page it leads back to, once:
// that a ban refused no address, or spared the admin's own, is not only
// in the audit log further down.
func TestAPeopleActionSaysWhatItDidOnce(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Eve": db.RoleMember})
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)
	resp, _ := request(t, srv, "POST", peopleURL(t, auth, "Eve", "ban"), url.Values{}, map[string]string{"Cookie": personCookie + "=" + ada})
	var done *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == peopleDoneCookie {
			done = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || done == nil || done.Path != "/admin" || !done.HttpOnly {
		t.Fatalf("the ban: %d, note cookie %+v; want 303 and an HttpOnly note for /admin", resp.StatusCode, done)
	}
	cookies := personCookie + "=" + ada + "; " + peopleDoneCookie + "=" + done.Value
	resp, page := request(t, srv, "GET", "/admin", nil, map[string]string{"Cookie": cookies})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<p class="done" role="status">Eve is banned: 0 sessions ended, 0 open pages closed; no address refused.</p>`) {
		t.Fatalf("the dashboard after the ban: %d, without saying what the ban did", resp.StatusCode)
	}
	cleared := false
	for _, c := range resp.Cookies() {
		cleared = cleared || c.Name == peopleDoneCookie && c.MaxAge < 0
	}
	if !cleared {
		t.Fatal("the dashboard left the note's cookie: a reload would say it again")
	}
	if _, _, page := as(t, srv, "GET", "/admin", ada, nil); strings.Contains(page, `class="done"`) {
		t.Fatal("the dashboard says what was done again, without the note")
	}
}
