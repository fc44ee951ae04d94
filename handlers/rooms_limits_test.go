package handlers

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/db"
)

// The rooms' API refuses what it must: every refusal here has its status
// and a JSON reason, over the real router and a real SQLite file.

// roomsFixture is a server with ann and bob (members) and boss (admin),
// signed in, and ann's open room "Open" (slug open), private room
// "Secret" (slug secret) and direct room with bob.
type roomsFixture struct {
	srv            *httptest.Server
	auth           *Auth
	ann, bob, boss string // session cookies' values
	direct         string // ann and bob's direct room's slug
}

func newRoomsFixture(t *testing.T, extra ...string) *roomsFixture {
	t.Helper()
	accounts := map[string]string{"ann": db.RoleMember, "bob": db.RoleMember, "boss": db.RoleAdmin}
	for _, name := range extra {
		accounts[name] = db.RoleMember
	}
	srv, _, auth := peopleServer(t, accounts)
	f := &roomsFixture{
		srv:  srv,
		auth: auth,
		ann:  signInAs(t, srv, "ann", "password of ann", "test"),
		bob:  signInAs(t, srv, "bob", "password of bob", "test"),
		boss: signInAs(t, srv, "boss", "password of boss", "test"),
	}
	f.mustCreate(t, f.ann, `{"name":"Open","kind":"open"}`, "open")
	f.mustCreate(t, f.ann, `{"name":"Secret","kind":"private"}`, "secret")
	f.direct = f.mustCreate(t, f.ann, `{"kind":"direct","members":["bob"]}`, "")
	return f
}

// mustCreate creates a room and returns its slug, which must be want
// unless want is empty.
func (f *roomsFixture) mustCreate(t *testing.T, session, body, want string) string {
	t.Helper()
	status, _, got := roomCall(t, f.srv, "POST", "/rooms", session, body, nil)
	if status != http.StatusCreated {
		t.Fatalf("create %s: %d %s", body, status, got)
	}
	var v struct {
		Slug string `json:"slug"`
	}
	if err := json.Unmarshal([]byte(got), &v); err != nil {
		t.Fatalf("create %s: %v in %s", body, err, got)
	}
	if want != "" && v.Slug != want {
		t.Fatalf("create %s: slug %q, want %q", body, v.Slug, want)
	}
	return v.Slug
}

// roomCall sends a JSON body (if not empty) as the session (if any) with
// extra headers, and returns the status, headers and body.
func roomCall(t *testing.T, srv *httptest.Server, method, path, session, body string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if session != "" {
		req.Header.Set("Cookie", personCookie+"="+session)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	transport := srv.Client().Transport.(*http.Transport)
	if len(body) > 64<<10 {
		// Refused unread: asked for first (Expect: 100-continue), or the
		// body's write can meet the reset of the closed connection.
		req.Header.Set("Expect", "100-continue")
		transport = transport.Clone()
		transport.ExpectContinueTimeout = 10 * time.Second
	}
	resp, err := transport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// refused fails unless the answer is status with a JSON error that
// contains each of words (case-insensitive).
func refused(t *testing.T, what string, status int, body string, want int, words ...string) {
	t.Helper()
	if status != want {
		t.Fatalf("%s: %d %s, want %d", what, status, body, want)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || strings.TrimSpace(e.Error) == "" {
		t.Fatalf("%s: %d with body %q, want a JSON {\"error\": reason}", what, status, body)
	}
	for _, w := range words {
		if !strings.Contains(strings.ToLower(e.Error), strings.ToLower(w)) {
			t.Fatalf("%s: reason %q does not say %q", what, e.Error, w)
		}
	}
}

func TestRoomCreateRefusesBadInput(t *testing.T) {
	f := newRoomsFixture(t)
	for _, c := range []struct {
		what, body string
		status     int
		words      []string
	}{
		{"no name", `{"name":"","kind":"open"}`, 400, []string{"name"}},
		{"a name of spaces", `{"name":" \t ","kind":"open"}`, 400, []string{"name"}},
		{"a name of 65 characters", fmt.Sprintf(`{"name":%q,"kind":"open"}`, strings.Repeat("é", 65)), 400, []string{"64"}},
		{"a name with U+0000", `{"name":"a\u0000b","kind":"open"}`, 400, []string{"U+0000"}},
		{"a name with U+202E", `{"name":"abc\u202Edef","kind":"private"}`, 400, []string{"U+202E"}},
		{"a name with U+200B", `{"name":"a\u200Bb","kind":"open"}`, 400, []string{"U+200B"}},
		{"a topic of 257 characters", fmt.Sprintf(`{"name":"t","kind":"open","topic":%q}`, strings.Repeat("x", 257)), 400, []string{"256"}},
		{"a topic with a control character", `{"name":"t","kind":"open","topic":"a\u001bb"}`, 400, []string{"topic"}},
		{"kind public", `{"name":"p","kind":"public"}`, 400, []string{"kind"}},
		{"no kind", `{"name":"p"}`, 400, []string{"kind"}},
		{"post nobody", `{"name":"p","kind":"open","post":"nobody"}`, 400, []string{"post"}},
		{"guests in a private room", `{"name":"p","kind":"private","guests":true}`, 400, []string{"guests"}},
		{"admins-only by a member", `{"name":"news","kind":"open","post":"admins"}`, 403, []string{"admins"}},
		{"51 people named", fmt.Sprintf(`{"name":"big","kind":"private","members":[%s]}`, strings.TrimSuffix(strings.Repeat(`"bob",`, 51), ",")), 400, []string{"50"}},
		{"someone who is nobody", `{"name":"p","kind":"private","members":["nobody"]}`, 404, []string{"nobody"}},
		{"members not a list", `{"name":"p","kind":"open","members":"bob"}`, 400, []string{"JSON"}},
		{"two JSON objects", `{"name":"a","kind":"open"}{"name":"b","kind":"open"}`, 400, []string{"one JSON object"}},
		{"not JSON at all", `name=a&kind=open`, 400, []string{"JSON"}},
		{"invalid UTF-8", "{\"name\":\"\xff\",\"kind\":\"open\"}", 400, []string{"UTF-8"}},
	} {
		// Each as a fresh account would hit the per-person limit; boss
		// makes the admins-only one below, so every case is ann's or bob's.
		session := f.ann
		if strings.Contains(c.what, "name") || strings.Contains(c.what, "topic") {
			session = f.bob
		}
		status, _, body := roomCall(t, f.srv, "POST", "/rooms", session, c.body, nil)
		refused(t, c.what, status, body, c.status, c.words...)
	}
	// What is just within the limits is taken.
	f.mustCreate(t, f.boss, fmt.Sprintf(`{"name":%q,"kind":"open","topic":%q}`, strings.Repeat("é", 64), strings.Repeat("x", 256)), "")
	f.mustCreate(t, f.boss, `{"name":"News","kind":"open","post":"admins"}`, "news")
}

func TestRoomRoutesRefuseGuests(t *testing.T) {
	f := newRoomsFixture(t)
	status, _, body := roomCall(t, f.srv, "POST", "/rooms", "", `{"name":"guest room","kind":"open"}`, nil)
	refused(t, "a guest creating a room", status, body, http.StatusUnauthorized, "sign in")
	status, _, body = roomCall(t, f.srv, "POST", "/rooms", "not-a-session", `{"name":"guest room","kind":"open"}`, nil)
	refused(t, "a forged session creating a room", status, body, http.StatusUnauthorized, "sign in")
	status, _, body = roomCall(t, f.srv, "POST", "/rooms/lobby/join", "", `{}`, nil)
	refused(t, "a guest joining", status, body, http.StatusUnauthorized, "sign in")
	status, _, body = roomCall(t, f.srv, "POST", "/rooms/lobby/leave", "", `{}`, nil)
	refused(t, "a guest leaving", status, body, http.StatusUnauthorized, "sign in")
	// A guest sees nothing of a private, direct or guest-less open room.
	for _, slug := range []string{"secret", f.direct, "open"} {
		status, _, body = roomCall(t, f.srv, "GET", "/rooms/"+slug, "", "", nil)
		refused(t, "a guest reading "+slug, status, body, http.StatusNotFound)
	}
}

func TestRoomAccessRules(t *testing.T) {
	f := newRoomsFixture(t)
	cases := []struct {
		what, method, path, session, body string
		status                            int
		words                             []string
	}{
		{"invite to a direct room", "POST", "/rooms/" + f.direct + "/members", f.ann, `{"user":"boss"}`, 403, []string{"direct"}},
		{"leave the lobby", "POST", "/rooms/lobby/leave", f.ann, `{}`, 403, []string{"default room"}},
		{"remove oneself from the lobby", "DELETE", "/rooms/lobby/members/1", f.boss, "", 403, nil},
		{"join a private room not invited", "POST", "/rooms/secret/join", f.bob, `{}`, 404, []string{"no such room"}},
		{"read a private room not invited", "GET", "/rooms/secret/messages/latest/5", f.bob, "", 404, []string{"no such room"}},
		{"read a private room's history not invited", "GET", "/rooms/secret/messages?limit=5", f.bob, "", 404, []string{"no such room"}},
		{"send to a private room not invited", "POST", "/rooms/secret/messages", f.bob, `{"message":"hi"}`, 404, []string{"no such room"}},
		{"invite to a private room not in it", "POST", "/rooms/secret/members", f.bob, `{"user":"bob"}`, 404, nil},
		{"an admin reading a private room not in it", "GET", "/rooms/secret", f.boss, "", 404, nil},
		{"an admin reading a direct room not in it", "GET", "/rooms/" + f.direct + "/messages/latest/1", f.boss, "", 404, nil},
		{"change a room one did not create", "PATCH", "/rooms/open", f.bob, `{"name":"Mine now"}`, 403, []string{"creator"}},
		{"archive a room one did not create", "PATCH", "/rooms/open", f.bob, `{"archived":true}`, 403, []string{"creator"}},
		{"a member unarchiving the lobby", "PATCH", "/rooms/lobby", f.bob, `{"archived":false}`, 403, []string{"creator"}},
		{"an admin archiving the lobby", "PATCH", "/rooms/lobby", f.boss, `{"archived":true}`, 403, []string{"default room"}},
		{"a member making a room admins-only", "PATCH", "/rooms/open", f.ann, `{"post":"admins"}`, 403, []string{"admins"}},
		{"guests in a private room", "PATCH", "/rooms/secret", f.ann, `{"guests":true}`, 400, []string{"guests"}},
		{"rename to nothing", "PATCH", "/rooms/open", f.ann, `{"name":"  "}`, 400, []string{"name"}},
		{"remove someone else, not an admin", "DELETE", fmt.Sprintf("/rooms/open/members/%d", accountID(t, f.auth, "bob")), f.ann, "", 403, nil},
		{"remove an id that is not one", "DELETE", "/rooms/open/members/x", f.ann, "", 400, []string{"id"}},
		{"invite nobody", "POST", "/rooms/secret/members", f.ann, `{"user":"nobody"}`, 404, []string{"nobody"}},
		{"leave a room one is not in", "POST", "/rooms/open/leave", f.bob, `{}`, 409, nil},
		{"a slug that is no room", "GET", "/rooms/nothing", f.ann, "", 404, nil},
		{"a slug with an escaped slash", "GET", "/rooms/open%2Fx", f.ann, "", 404, nil},
		{"a unicode slug", "GET", "/rooms/%C3%A9t%C3%A9", f.ann, "", 404, nil},
		{"a very long slug", "GET", "/rooms/" + strings.Repeat("a", 4000), f.ann, "", 404, nil},
		{"include something else", "GET", "/rooms?include=private", f.ann, "", 400, []string{"include"}},
		{"latest not a count", "GET", "/rooms/open/messages/latest/-1", f.ann, "", 400, nil},
		{"send without a message", "POST", "/rooms/open/messages", f.ann, `{}`, 400, []string{"message"}},
	}
	for _, c := range cases {
		status, _, body := roomCall(t, f.srv, c.method, c.path, c.session, c.body, nil)
		refused(t, c.what, status, body, c.status, c.words...)
	}
	// What the refusals leave alone: bob joins the open room, and it is
	// still ann's to rename; its slug stays.
	if status, _, body := roomCall(t, f.srv, "POST", "/rooms/open/join", f.bob, `{}`, nil); status != http.StatusNoContent {
		t.Fatalf("bob joining the open room: %d %s", status, body)
	}
	status, _, body := roomCall(t, f.srv, "PATCH", "/rooms/open", f.bob, `{"topic":"bob's"}`, nil)
	refused(t, "a member (not the creator) changing the topic", status, body, 403, "creator")
	status, _, body = roomCall(t, f.srv, "PATCH", "/rooms/open", f.ann, `{"name":"Workshop"}`, nil)
	if status != http.StatusOK || !strings.Contains(body, `"slug":"open"`) || !strings.Contains(body, `"name":"Workshop"`) {
		t.Fatalf("renaming open: %d %s, want 200 with the slug kept", status, body)
	}
	if status, _, body := roomCall(t, f.srv, "PATCH", "/rooms/lobby", f.boss, `{"archived":false}`, nil); status != http.StatusOK {
		t.Fatalf("an admin unarchiving the lobby, which is not archived: %d %s", status, body)
	}
}

func TestRoomChangesRefuseWhatIsNotJSONFromHere(t *testing.T) {
	f := newRoomsFixture(t)
	for _, c := range []struct {
		what, method, path string
		header             map[string]string
		body               string
		status             int
		words              []string
	}{
		{"text/plain", "POST", "/rooms", map[string]string{"Content-Type": "text/plain"}, `{"name":"x","kind":"open"}`, 415, []string{"JSON"}},
		{"a form", "PATCH", "/rooms/open", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, `name=x`, 415, []string{"JSON"}},
		{"no content type", "POST", "/rooms/open/members", map[string]string{"Content-Type": ""}, `{"user":"bob"}`, 415, []string{"JSON"}},
		{"another site", "POST", "/rooms", map[string]string{"Origin": "https://evil.example"}, `{"name":"x","kind":"open"}`, 403, nil},
		{"another site's delete", "DELETE", "/rooms/open/members/2", map[string]string{"Origin": "https://evil.example"}, "", 403, nil},
		{"another site's send", "POST", "/rooms/open/messages", map[string]string{"Origin": "null"}, `{"message":"x"}`, 403, nil},
		{"a body over 64 KiB", "POST", "/rooms", nil, `{"name":"x","kind":"open","topic":"` + strings.Repeat("x", 70<<10) + `"}`, 413, []string{"body"}},
		{"a change over 64 KiB", "PATCH", "/rooms/open", nil, `{"topic":"` + strings.Repeat("x", 70<<10) + `"}`, 413, []string{"body"}},
		{"a send over 64 KiB", "POST", "/rooms/open/messages", nil, `{"message":"` + strings.Repeat("x", 70<<10) + `"}`, 413, []string{"body"}},
	} {
		status, _, body := roomCall(t, f.srv, c.method, c.path, f.ann, c.body, c.header)
		refused(t, c.what, status, body, c.status, c.words...)
	}
	// The same origin is fine.
	if status, _, body := roomCall(t, f.srv, "PATCH", "/rooms/open", f.ann, `{"topic":"t"}`, map[string]string{"Origin": f.srv.URL}); status != http.StatusOK {
		t.Fatalf("a change from the page's own origin: %d %s", status, body)
	}
}

func TestRoomChangesAreLimitedPerPerson(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"ann": db.RoleMember, "bob": db.RoleMember})
	ann := signInAs(t, srv, "ann", "password of ann", "test")
	bob := signInAs(t, srv, "bob", "password of bob", "test")
	// Joining the lobby one is in changes nothing, and counts all the same.
	for i := range roomChangeBurst {
		if status, _, body := roomCall(t, srv, "POST", "/rooms/lobby/join", ann, `{}`, nil); status != http.StatusNoContent {
			t.Fatalf("change %d: %d %s", i+1, status, body)
		}
	}
	status, header, body := roomCall(t, srv, "POST", "/rooms/lobby/join", ann, `{}`, nil)
	refused(t, "the 21st change at once", status, body, http.StatusTooManyRequests, "too many")
	if header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// A refusal before the limiter (a bad body) counts too, and so does
	// creating: ann is held on every change route.
	status, _, body = roomCall(t, srv, "POST", "/rooms", ann, `{"name":"x","kind":"open"}`, nil)
	refused(t, "ann creating while limited", status, body, http.StatusTooManyRequests)
	// Another account is not.
	if status, _, body := roomCall(t, srv, "POST", "/rooms/lobby/join", bob, `{}`, nil); status != http.StatusNoContent {
		t.Fatalf("bob while ann is limited: %d %s", status, body)
	}
	// Reading is not a change.
	if status, _, body := roomCall(t, srv, "GET", "/rooms", ann, "", nil); status != http.StatusOK {
		t.Fatalf("ann listing her rooms while limited: %d %s", status, body)
	}
}

func TestDirectRoomLimits(t *testing.T) {
	var people []string
	for i := range 16 {
		people = append(people, fmt.Sprintf("p%02d", i))
	}
	f := newRoomsFixture(t, people...)
	names, _ := json.Marshal(people) // 16 others and ann: 17
	status, _, body := roomCall(t, f.srv, "POST", "/rooms", f.ann, `{"kind":"direct","members":`+string(names)+`}`, nil)
	refused(t, "a direct room of 17", status, body, 400, "16")
	names, _ = json.Marshal(people[:15]) // 16 with ann
	f.mustCreate(t, f.ann, `{"kind":"direct","members":`+string(names)+`}`, "")
	// The same people, named again (and twice), get the same room: 200.
	status, _, body = roomCall(t, f.srv, "POST", "/rooms", f.ann, `{"kind":"direct","members":["bob","bob","ann"]}`, nil)
	if status != http.StatusOK || !strings.Contains(body, `"slug":"`+f.direct+`"`) {
		t.Fatalf("ann and bob's direct room again: %d %s, want 200 and %s", status, body, f.direct)
	}
	status, _, body = roomCall(t, f.srv, "POST", "/rooms", f.ann, `{"kind":"direct","members":["bob"],"guests":true}`, nil)
	refused(t, "a direct room with guests", status, body, 400, "guests")
}

func TestRoomSlugs(t *testing.T) {
	f := newRoomsFixture(t, "cat", "dan")
	sessions := []string{f.ann, f.bob, f.boss, signInAs(t, f.srv, "cat", "password of cat", "test"), signInAs(t, f.srv, "dan", "password of dan", "test")}
	// Many rooms with one name: room, room-2, room-3... and past the
	// numbered tries, still a room (not a 503).
	for i := range 30 {
		want := "room"
		if i > 0 {
			want = fmt.Sprintf("room-%d", i+1)
		}
		name := "Room" + strings.Repeat("!", i) // one name twice is refused
		status, _, body := roomCall(t, f.srv, "POST", "/rooms", sessions[i%len(sessions)], `{"name":"`+name+`","kind":"open"}`, nil)
		if status != http.StatusCreated {
			t.Fatalf("room %d named %s: %d %s", i+1, name, status, body)
		}
		if i < 10 && !strings.Contains(body, `"slug":"`+want+`"`) {
			t.Fatalf("room %d named %s: %s, want slug %s", i+1, name, body, want)
		}
	}
	for name, want := range map[string]string{
		"!!!":                           "room-",
		"3D printers!":                  "3d-printers",
		"Lost & Found":                  "lost-found",
		"日本語":                           "room-",
		strings.Repeat("abcdefghij", 6): strings.Repeat("abcdefghij", 4),
	} {
		status, _, body := roomCall(t, f.srv, "POST", "/rooms", f.boss, fmt.Sprintf(`{"name":%q,"kind":"open"}`, name), nil)
		if status != http.StatusCreated || !strings.Contains(body, `"slug":"`+want) {
			t.Fatalf("a room named %q: %d %s, want a slug starting %q", name, status, body, want)
		}
	}
}

// Two rooms one can see may not share a name, as people tell names apart
// (case, width and spaces aside): a makerspace had "Laser cutter" and
// "Laser Cutter" side by side in its list. A private room one is not in
// does not count, so that its name cannot be found out by trying; an
// archived room does not either.
func TestRoomNamesAreOnePerRoomInSight(t *testing.T) {
	f := newRoomsFixture(t, "cat")
	cat := signInAs(t, f.srv, "cat", "password of cat", "test")
	f.mustCreate(t, f.bob, `{"name":"Laser cutter","kind":"open"}`, "laser-cutter")
	for _, c := range []struct{ what, session, method, path, body string }{
		{"another open room, in other case", f.ann, "POST", "/rooms", `{"name":"Laser Cutter","kind":"open"}`},
		{"a private room, with more spaces", f.ann, "POST", "/rooms", `{"name":" laser   CUTTER ","kind":"private"}`},
		{"a full-width name", cat, "POST", "/rooms", `{"name":"Ｌａｓｅｒ ｃｕｔｔｅｒ","kind":"open"}`},
		{"the name of ann's own private room", f.ann, "POST", "/rooms", `{"name":"secret","kind":"open"}`},
		{"a rename to it", f.ann, "PATCH", "/rooms/open", `{"name":"LASER cutter"}`},
	} {
		status, _, body := roomCall(t, f.srv, c.method, c.path, c.session, c.body, nil)
		refused(t, c.what, status, body, http.StatusConflict, "there is a room called", "already")
	}
	// Cat is not in ann's private Secret: the name is free for her (and
	// nothing says there is one).
	f.mustCreate(t, cat, `{"name":"Secret","kind":"open"}`, "secret-2")
	// A room's own name, in another case, is a rename like any.
	if status, _, body := roomCall(t, f.srv, "PATCH", "/rooms/laser-cutter", f.bob, `{"name":"Laser Cutter"}`, nil); status != http.StatusOK {
		t.Fatalf("bob renaming his room to its name in other case: %d %s", status, body)
	}
	// Once archived, its name is free again.
	if status, _, body := roomCall(t, f.srv, "PATCH", "/rooms/laser-cutter", f.bob, `{"archived":true}`, nil); status != http.StatusOK {
		t.Fatalf("bob archiving his room: %d %s", status, body)
	}
	f.mustCreate(t, f.ann, `{"name":"Laser cutter","kind":"open"}`, "laser-cutter-2")
	// Unarchived, the old one would stand beside it under its name.
	status, _, body := roomCall(t, f.srv, "PATCH", "/rooms/laser-cutter", f.boss, `{"archived":false}`, nil)
	refused(t, "unarchiving the old Laser Cutter", status, body, http.StatusConflict, "there is a room called “Laser cutter” already")
	if status, _, body := roomCall(t, f.srv, "PATCH", "/rooms/laser-cutter", f.boss, `{"archived":false,"name":"Old laser cutter"}`, nil); status != http.StatusOK {
		t.Fatalf("unarchiving it under a name of its own: %d %s", status, body)
	}
}

// TestARoomNameIsTakenOnceWhenAskedAtOnce: creations and renames asking
// for one name at the same moment get it once; the others are told it is
// taken.
func TestARoomNameIsTakenOnceWhenAskedAtOnce(t *testing.T) {
	f := newRoomsFixture(t)
	const each = 8
	spellings := []string{"Workshop", "workshop", "WORKSHOP", " Workshop "}
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	for i := range each {
		for _, session := range []string{f.ann, f.bob} {
			wg.Go(func() {
				body := fmt.Sprintf(`{"name":%q,"kind":"open"}`, spellings[i%len(spellings)])
				status, _, _ := roomCall(t, f.srv, "POST", "/rooms", session, body, nil)
				mu.Lock()
				got[status]++
				mu.Unlock()
			})
		}
	}
	wg.Go(func() {
		status, _, _ := roomCall(t, f.srv, "PATCH", "/rooms/open", f.ann, `{"name":"workShop"}`, nil)
		mu.Lock()
		got[status]++
		mu.Unlock()
	})
	wg.Wait()
	taken := got[http.StatusCreated] + got[http.StatusOK]
	if taken != 1 || got[http.StatusConflict] != 2*each {
		t.Fatalf("%d creations and a rename asking for one name at once: %v (status: count); want it given once, the rest 409", 2*each, got)
	}
}

func TestRoomRoutesAnswerJSONEvenFromTheRouter(t *testing.T) {
	f := newRoomsFixture(t)
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"PUT", "/rooms", http.StatusMethodNotAllowed},
		{"DELETE", "/rooms/open", http.StatusMethodNotAllowed},
		{"GET", "/rooms/open/nothing", http.StatusNotFound},
		{"GET", "/rooms/open/messages/latest", http.StatusNotFound},
	} {
		status, _, body := roomCall(t, f.srv, c.method, c.path, f.ann, "", nil)
		refused(t, c.method+" "+c.path, status, body, c.status)
	}
}

func TestDirectRoomAgainAfterLeavingIt(t *testing.T) {
	f := newRoomsFixture(t)
	if status, _, body := roomCall(t, f.srv, "POST", "/rooms/"+f.direct+"/leave", f.ann, `{}`, nil); status != http.StatusNoContent {
		t.Fatalf("ann leaving her direct room with bob: %d %s", status, body)
	}
	if status, _, _ := roomCall(t, f.srv, "GET", "/rooms/"+f.direct, f.ann, "", nil); status != http.StatusNotFound {
		t.Fatalf("ann reading the direct room she left: %d, want 404", status)
	}
	// Starting the conversation with bob again gives her the same room
	// back, one she is in again, not a room she cannot open.
	status, _, body := roomCall(t, f.srv, "POST", "/rooms", f.ann, `{"kind":"direct","members":["bob"]}`, nil)
	if status != http.StatusOK || !strings.Contains(body, `"slug":"`+f.direct+`"`) || !strings.Contains(body, `"member":true`) {
		t.Fatalf("ann starting a direct conversation with bob again: %d %s, want 200, the same room, member", status, body)
	}
	if status, _, body := roomCall(t, f.srv, "GET", "/rooms/"+f.direct+"/messages/latest/5", f.ann, "", nil); status != http.StatusOK {
		t.Fatalf("ann reading the direct room she is back in: %d %s", status, body)
	}
	// Bob starting it is not a way to pull ann back in: only the one who
	// asks is put back.
	if status, _, body := roomCall(t, f.srv, "POST", "/rooms/"+f.direct+"/leave", f.ann, `{}`, nil); status != http.StatusNoContent {
		t.Fatalf("ann leaving again: %d %s", status, body)
	}
	if status, _, body := roomCall(t, f.srv, "POST", "/rooms", f.bob, `{"kind":"direct","members":["ann"]}`, nil); status != http.StatusOK || !strings.Contains(body, `"member":true`) {
		t.Fatalf("bob starting it: %d %s", status, body)
	}
	if status, _, _ := roomCall(t, f.srv, "GET", "/rooms/"+f.direct, f.ann, "", nil); status != http.StatusNotFound {
		t.Fatalf("ann, after bob started it again: %d, want 404", status)
	}
}

func TestArchivedRoomRefusesChangesButStaysReadable(t *testing.T) {
	f := newRoomsFixture(t)
	if status, _, body := roomCall(t, f.srv, "POST", "/rooms/open/messages", f.ann, `{"message":"before"}`, nil); status != http.StatusCreated {
		t.Fatalf("sending before archiving: %d %s", status, body)
	}
	if status, _, body := roomCall(t, f.srv, "PATCH", "/rooms/open", f.ann, `{"archived":true}`, nil); status != http.StatusOK || !strings.Contains(body, `"archived":`) {
		t.Fatalf("the creator archiving: %d %s", status, body)
	}
	for _, c := range []struct{ what, method, path, session, body string }{
		{"send", "POST", "/rooms/open/messages", f.ann, `{"message":"after"}`},
		{"join", "POST", "/rooms/open/join", f.bob, `{}`},
		{"invite", "POST", "/rooms/open/members", f.ann, `{"user":"bob"}`},
	} {
		status, _, body := roomCall(t, f.srv, c.method, c.path, c.session, c.body, nil)
		refused(t, c.what+" in an archived room", status, body, http.StatusForbidden, "archived")
	}
	if status, _, body := roomCall(t, f.srv, "GET", "/rooms/open/messages/latest/5", f.ann, "", nil); status != http.StatusOK || !strings.Contains(body, "before") {
		t.Fatalf("reading an archived room: %d %s", status, body)
	}
	if status, _, body := roomCall(t, f.srv, "GET", "/rooms", f.ann, "", nil); status != http.StatusOK || strings.Contains(body, `"slug":"open"`) {
		t.Fatalf("the list still has the archived room: %d %s", status, body)
	}
	if status, _, body := roomCall(t, f.srv, "PATCH", "/rooms/open", f.ann, `{"archived":false}`, nil); status != http.StatusOK {
		t.Fatalf("the creator unarchiving: %d %s", status, body)
	}
	if status, _, body := roomCall(t, f.srv, "POST", "/rooms/open/messages", f.ann, `{"message":"again"}`, nil); status != http.StatusCreated {
		t.Fatalf("sending after unarchiving: %d %s", status, body)
	}
}

// membershipsUntil reads c until a message with text, and returns the
// membership frames (room, user_id, joined) seen before it.
func membershipsUntil(t *testing.T, c *websocket.Conn, text string) []string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var seen []string
	for {
		var f struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := c.ReadJSON(&f); err != nil {
			t.Fatalf("waiting for %q: %v (memberships so far %v)", text, err, seen)
		}
		switch {
		case f.Type == "membership":
			seen = append(seen, fmt.Sprint(f.Data["room"], " ", f.Data["user_id"], " ", f.Data["joined"]))
		case f.Type == "message" && f.Data["message"] == text:
			return seen
		}
	}
}

func TestMembershipIsToldOnlyWhenItChanges(t *testing.T) {
	f := newRoomsFixture(t)
	sock := openSocket(t, f.srv, f.ann)
	frame(t, sock, "hello")
	bob := accountID(t, f.auth, "bob")
	if status, _, body := roomCall(t, f.srv, "POST", "/rooms/secret/members", f.ann, `{"user":"bob"}`, nil); status != http.StatusCreated {
		t.Fatalf("inviting bob: %d %s", status, body)
	}
	// Inviting him again, and removing someone who is not in the room,
	// change nothing and tell nobody anything.
	if status, _, body := roomCall(t, f.srv, "POST", "/rooms/secret/members", f.ann, `{"user":"bob"}`, nil); status >= 300 {
		t.Fatalf("inviting bob again: %d %s", status, body)
	}
	if status, _, body := roomCall(t, f.srv, "POST", "/rooms/secret/join", f.bob, `{}`, nil); status != http.StatusNoContent {
		t.Fatalf("bob joining a room he is in: %d %s", status, body)
	}
	status, _, body := roomCall(t, f.srv, "DELETE", fmt.Sprintf("/rooms/open/members/%d", bob), f.boss, "", nil)
	refused(t, "an admin removing someone not in the room", status, body, http.StatusNotFound, "not in this room")
	status, _, body = roomCall(t, f.srv, "DELETE", "/rooms/open/members/999999", f.boss, "", nil)
	refused(t, "an admin removing an account that is not there", status, body, http.StatusNotFound)
	if status, _, body := roomCall(t, f.srv, "POST", "/rooms/open/messages", f.ann, `{"message":"in open"}`, nil); status != http.StatusCreated {
		t.Fatalf("sending: %d %s", status, body)
	}
	if got := membershipsUntil(t, sock, "in open"); len(got) != 1 {
		t.Fatalf("membership frames %v, want one: bob joining the secret room", got)
	}
	if status, _, body := roomCall(t, f.srv, "POST", "/rooms/secret/messages", f.ann, `{"message":"done"}`, nil); status != http.StatusCreated {
		t.Fatalf("sending: %d %s", status, body)
	}
	if got := membershipsUntil(t, sock, "done"); len(got) != 0 {
		t.Fatalf("membership frames %v after the first, want none", got)
	}
}

// A PATCH must change something it names; a direct conversation is
// changed by no one over REST (its people do not manage it, an admin does
// not see it).
func TestRoomChangeMustNameAChange(t *testing.T) {
	f := newRoomsFixture(t)
	status, _, body := roomCall(t, f.srv, "PATCH", "/rooms/open", f.ann, `{"slug":"elsewhere"}`, nil)
	refused(t, "a PATCH of nothing it knows", status, body, 400, "nothing to change")
	status, _, body = roomCall(t, f.srv, "PATCH", "/rooms/"+f.direct, f.ann, `{"post":"admins"}`, nil)
	refused(t, "a direct room's rule by one of its people", status, body, 403, "only an admin")
	status, _, body = roomCall(t, f.srv, "PATCH", "/rooms/"+f.direct, f.boss, `{"post":"admins"}`, nil)
	refused(t, "a direct room's rule by an admin not in it", status, body, 404)
}
