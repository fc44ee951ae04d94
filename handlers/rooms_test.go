package handlers

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/db"
)

// The rooms' guarantees (issue 13, item 9), on the real server, a real
// SQLite file and real WebSocket clients.

// call is roomCall without the headers of the answer.
func call(t *testing.T, srv *httptest.Server, method, path, session, body string, header map[string]string) (int, string) {
	t.Helper()
	code, _, answer := roomCall(t, srv, method, path, session, body, header)
	return code, answer
}

// roomAnswer is the part of a room's JSON the tests read.
type roomAnswer struct {
	ID       int64  `json:"id"`
	Slug     string `json:"slug"`
	Kind     string `json:"kind"`
	Topic    string `json:"topic"`
	Member   bool   `json:"member"`
	Unread   int    `json:"unread"`
	LastRead int64  `json:"last_read"`
	Mention  bool   `json:"mention"`
}

// createRoom is POST /rooms as session; it fails unless the status is want.
func createRoom(t *testing.T, srv *httptest.Server, session, body string, want int) roomAnswer {
	t.Helper()
	code, answer := call(t, srv, "POST", "/rooms", session, body, nil)
	if code != want {
		t.Fatalf("POST /rooms %s: %d %s, want %d", body, code, answer, want)
	}
	var r roomAnswer
	if err := json.Unmarshal([]byte(answer), &r); err != nil || r.ID == 0 || r.Slug == "" {
		t.Fatalf("POST /rooms %s: %s (%v), want a room", body, answer, err)
	}
	return r
}

// sendTo is POST /rooms/{slug}/messages as session; it returns the id.
func sendTo(t *testing.T, srv *httptest.Server, session, slug, text string) int64 {
	t.Helper()
	id, err := trySendTo(srv, session, slug, text)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// trySendTo is sendTo for a goroutine other than the test's.
func trySendTo(srv *httptest.Server, session, slug, text string) (int64, error) {
	b, _ := json.Marshal(map[string]string{"message": text})
	req, _ := http.NewRequest("POST", srv.URL+"/rooms/"+slug+"/messages", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cookie", personCookie+"="+session)
	resp, err := srv.Client().Transport.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m db.Message
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &m) != nil || m.ID == 0 {
		return 0, fmt.Errorf("send %q to %s: %d %s, want 201 with the message", text, slug, resp.StatusCode, body)
	}
	return m.ID, nil
}

// roomsOf is GET /rooms (with query) as session.
func roomsOf(t *testing.T, srv *httptest.Server, session, query string) []roomAnswer {
	t.Helper()
	code, body := call(t, srv, "GET", "/rooms"+query, session, "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /rooms%s: %d %s", query, code, body)
	}
	var rooms []roomAnswer
	if err := json.Unmarshal([]byte(body), &rooms); err != nil {
		t.Fatalf("GET /rooms%s: %s: %v", query, body, err)
	}
	return rooms
}

func findRoom(rooms []roomAnswer, id int64) (roomAnswer, bool) {
	i := slices.IndexFunc(rooms, func(r roomAnswer) bool { return r.ID == id })
	if i < 0 {
		return roomAnswer{}, false
	}
	return rooms[i], true
}

// sockFrame is one nochat.v1 server frame.
type sockFrame struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// message is f's message, if f is a message frame.
func (f sockFrame) message(t *testing.T) (db.Message, bool) {
	t.Helper()
	if f.Type != "message" {
		return db.Message{}, false
	}
	var m db.Message
	if err := json.Unmarshal(f.Data, &m); err != nil {
		t.Fatalf("message frame %s: %v", f.Data, err)
	}
	return m, true
}

// framesUntil reads c's frames until one that last says is the last, and
// returns them all (that one too). It fails after 2000 frames or 15 s.
func framesUntil(t *testing.T, c *websocket.Conn, what string, last func(sockFrame) bool) []sockFrame {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	var out []sockFrame
	for range 2000 {
		var f sockFrame
		if err := c.ReadJSON(&f); err != nil {
			t.Fatalf("%s: after %d frames: %v", what, len(out), err)
		}
		out = append(out, f)
		if last(f) {
			return out
		}
	}
	t.Fatalf("%s: no last frame in 2000", what)
	return nil
}

// isText is a last func for the message frame with text.
func isText(t *testing.T, text string) func(sockFrame) bool {
	return func(f sockFrame) bool {
		m, ok := f.message(t)
		return ok && m.Message == text
	}
}

// mentionsRoom reports whether f carries anything of room: a message in
// it, a membership or read of it, or the room itself.
func mentionsRoom(f sockFrame, room int64) bool {
	var d struct {
		Room int64 `json:"room"`
		ID   int64 `json:"id"`
	}
	json.Unmarshal(f.Data, &d)
	switch f.Type {
	case "message", "membership", "read", "typing":
		return d.Room == room
	case "room":
		return d.ID == room
	}
	return false
}

func sendFrame(t *testing.T, c *websocket.Conn, typ string, data any) {
	t.Helper()
	if err := c.WriteJSON(map[string]any{"type": typ, "data": data}); err != nil {
		t.Fatal(err)
	}
}

func TestPrivateRoomReachesNoOneOutsideIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nochat.db")
	srv, _, _, stop := testServer{path: path, accounts: map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember, "Cid": db.RoleMember, "Ada": db.RoleAdmin}}.start(t)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	cid := signInAs(t, srv, "Cid", "password of Cid", firefox)
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)

	// Cid's and a guest's sockets are open before the room exists.
	cidSocket := openSocket(t, srv, cid)
	frame(t, cidSocket, "hello")
	guestSocket := openSocket(t, srv, "")
	frame(t, guestSocket, "hello")
	bobSocket := openSocket(t, srv, bob)
	frame(t, bobSocket, "hello")

	secret := createRoom(t, srv, ann, `{"name": "Secret plans", "kind": "private", "members": ["Bob"], "topic": "hush"}`, http.StatusCreated)
	var sent []int64
	for i := range 3 {
		sent = append(sent, sendTo(t, srv, ann, secret.Slug, fmt.Sprintf("secret %d", i)))
	}
	// Cid's socket may not type, send or mark read there: refused as a
	// room that is not there, and nothing reaches the members.
	sendFrame(t, cidSocket, "typing", map[string]int64{"room": secret.ID})
	sendFrame(t, cidSocket, "send", map[string]any{"room": secret.ID, "message": "let me in", "cid": "c1"})
	if e := frame(t, cidSocket, "error"); e["code"] != "no_room" || e["cid"] != "c1" {
		t.Fatalf("Cid's send to the private room: %v, want a no_room error for c1", e)
	}
	sendFrame(t, cidSocket, "read", map[string]int64{"room": secret.ID, "id": sent[0]})
	if e := frame(t, cidSocket, "error"); e["code"] != "no_room" {
		t.Fatalf("Cid's read of the private room: %v, want a no_room error", e)
	}
	// Then a lobby message: the broadcaster sends in order, so a socket
	// that has it has had every frame of the secret room it was going to.
	marker := fmt.Sprintf("lobby after the secrets %d", time.Now().UnixNano())
	sendTo(t, srv, ann, "lobby", marker)

	// The member hears them: what the others do not hear was sent.
	var heard []int64
	for _, f := range framesUntil(t, bobSocket, "Bob's socket", isText(t, marker)) {
		if m, ok := f.message(t); ok && m.Room == secret.ID {
			heard = append(heard, m.ID)
		}
		if f.Type == "typing" {
			t.Fatalf("Bob got typing %s from outside the room", f.Data)
		}
	}
	if !slices.Equal(heard, sent) {
		t.Fatalf("Bob, a member, heard %v of the secret room, want %v", heard, sent)
	}
	for who, c := range map[string]*websocket.Conn{"Cid's": cidSocket, "a guest's": guestSocket} {
		for _, f := range framesUntil(t, c, who+" socket", isText(t, marker)) {
			if mentionsRoom(f, secret.ID) {
				t.Fatalf("%s socket got %s %s of the private room", who, f.Type, f.Data)
			}
		}
	}
	// Nor does resuming from the start replay them: from the replay
	// window, and, after a restart (the window starts empty), from the
	// database.
	resumeFromStart := func(when string) {
		t.Helper()
		for who, session := range map[string]string{"Cid": cid, "a guest": "", "Ada, an admin": ada, "Bob, a member": bob} {
			c := dialPage(t, srv, "/?after=0", session)
			var replayed []int64
			for _, f := range framesUntil(t, c, who+" resuming "+when, isText(t, marker)) {
				if f.Type == "hello" {
					var hello struct {
						Rooms []int64 `json:"rooms"`
					}
					json.Unmarshal(f.Data, &hello)
					if slices.Contains(hello.Rooms, secret.ID) != (who == "Bob, a member") {
						t.Fatalf("%s's hello %s: rooms %v", who, when, hello.Rooms)
					}
				}
				if m, ok := f.message(t); ok && m.Room == secret.ID {
					replayed = append(replayed, m.ID)
				} else if mentionsRoom(f, secret.ID) {
					t.Fatalf("%s resuming from 0 %s got %s %s of the private room", who, when, f.Type, f.Data)
				}
			}
			c.Close()
			want := []int64(nil) // an outsider: none
			if who == "Bob, a member" {
				want = sent
			}
			if !slices.Equal(replayed, want) {
				t.Fatalf("%s resuming from 0 %s got %v of the private room, want %v", who, when, replayed, want)
			}
		}
	}
	resumeFromStart("live")
	stop()
	srv, _, _, _ = testServer{path: path}.start(t)
	resumeFromStart("after a restart")

	// Every route answers a non-member as it answers a room that is not
	// there.
	routes := []struct{ method, path, body string }{
		{"GET", "/rooms/%s", ""},
		{"GET", "/rooms/%s/messages/latest/10", ""},
		{"GET", "/rooms/%s/messages?before=1000000", ""},
		{"GET", "/rooms/%s/messages", ""},
		{"POST", "/rooms/%s/messages", `{"message": "let me in"}`},
		{"POST", "/rooms/%s/members", `{"user": "Cid"}`},
		{"POST", "/rooms/%s/join", `{}`},
		{"POST", "/rooms/%s/leave", `{}`},
		{"PATCH", "/rooms/%s", `{"topic": "mine now"}`},
		{"PATCH", "/rooms/%s", `{"archived": true}`},
		{"DELETE", fmt.Sprintf("/rooms/%%s/members/%d", 2), ""},
	}
	outsiders := map[string]string{"Cid": cid, "a guest": "", "Ada, an admin": ada}
	for who, session := range outsiders {
		for _, r := range routes {
			code, body := call(t, srv, r.method, fmt.Sprintf(r.path, secret.Slug), session, r.body, nil)
			missingCode, missing := call(t, srv, r.method, fmt.Sprintf(r.path, "no-such-room"), session, r.body, nil)
			if code != http.StatusNotFound || code != missingCode || body != missing {
				t.Errorf("%s: %s %s: %d %s; a room that is not there: %d %s; want both 404, alike", who, r.method, r.path, code, strings.TrimSpace(body), missingCode, strings.TrimSpace(missing))
			}
			if strings.Contains(body, "Secret") || strings.Contains(body, "hush") {
				t.Errorf("%s: %s %s tells of the room: %s", who, r.method, r.path, body)
			}
		}
		for _, q := range []string{"", "?include=open"} {
			if _, ok := findRoom(roomsOf(t, srv, session, q), secret.ID); ok {
				t.Errorf("%s: GET /rooms%s lists the private room", who, q)
			}
		}
	}
	// The refusals changed nothing: Cid is still out, the topic is Ann's,
	// no message was added, the room is not archived.
	code, body := call(t, srv, "GET", "/rooms/"+secret.Slug, bob, "", nil)
	var detail struct {
		Topic    string      `json:"topic"`
		Archived int64       `json:"archived"`
		People   []db.Member `json:"people"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &detail) != nil {
		t.Fatalf("Bob, a member, GET /rooms/%s: %d %s, want 200", secret.Slug, code, body)
	}
	var people []string
	for _, p := range detail.People {
		people = append(people, p.User)
	}
	slices.Sort(people)
	if detail.Topic != "hush" || detail.Archived != 0 || strings.Join(people, ",") != "Ann,Bob" {
		t.Fatalf("the room after the outsiders' tries: topic %q, archived %d, people %v; want hush, 0, Ann and Bob", detail.Topic, detail.Archived, people)
	}
	code, body = call(t, srv, "GET", "/rooms/"+secret.Slug+"/messages/latest/10", bob, "", nil)
	var msgs []db.Message
	if code != http.StatusOK || json.Unmarshal([]byte(body), &msgs) != nil || len(msgs) != 3 {
		t.Fatalf("Bob's latest in the room: %d %s, want the 3 messages", code, body)
	}
}

func TestDirectRoomIsOnePerSetOfPeople(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember, "Cid": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	cid := signInAs(t, srv, "Cid", "password of Cid", firefox)

	first := createRoom(t, srv, ann, `{"kind": "direct", "members": ["Bob"]}`, http.StatusCreated)
	if first.Kind != db.KindDirect {
		t.Fatalf("a direct room's kind: %q", first.Kind)
	}
	for _, c := range []struct{ who, session, body string }{
		{"Ann again", ann, `{"kind": "direct", "members": ["Bob"]}`},
		{"Ann naming herself too", ann, `{"kind": "direct", "members": ["bob", "Ann"]}`},
		{"Bob", bob, `{"kind": "direct", "members": ["Ann"]}`},
	} {
		again := createRoom(t, srv, c.session, c.body, http.StatusOK)
		if again.ID != first.ID || again.Slug != first.Slug {
			t.Fatalf("%s: room %d %s, want the first, %d %s", c.who, again.ID, again.Slug, first.ID, first.Slug)
		}
	}
	// Three people are another set, so another room.
	if three := createRoom(t, srv, ann, `{"kind": "direct", "members": ["Bob", "Cid"]}`, http.StatusCreated); three.ID == first.ID {
		t.Fatal("Ann, Bob and Cid got Ann and Bob's direct room")
	}
	sendTo(t, srv, bob, first.Slug, "between us")
	for _, path := range []string{"/rooms/" + first.Slug, "/rooms/" + first.Slug + "/messages/latest/5"} {
		if code, body := call(t, srv, "GET", path, cid, "", nil); code != http.StatusNotFound {
			t.Fatalf("Cid's GET %s: %d %s, want 404", path, code, body)
		}
	}
	if _, ok := findRoom(roomsOf(t, srv, cid, "?include=open"), first.ID); ok {
		t.Fatal("Cid's list has Ann and Bob's direct room")
	}
	for who, session := range map[string]string{"Ann": ann, "Bob": bob} {
		if r, ok := findRoom(roomsOf(t, srv, session, ""), first.ID); !ok || !r.Member {
			t.Fatalf("%s's list: %+v, %v; want the direct room, as a member", who, r, ok)
		}
	}
}

func TestResumeAcrossThreeRoomsUnderASender(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	open := createRoom(t, srv, ann, `{"name": "Open one", "kind": "open", "members": ["Bob"]}`, http.StatusCreated)
	private := createRoom(t, srv, ann, `{"name": "Private one", "kind": "private", "members": ["Bob"]}`, http.StatusCreated)
	direct := createRoom(t, srv, ann, `{"kind": "direct", "members": ["Bob"]}`, http.StatusCreated)
	rooms := []roomAnswer{open, private, direct}

	const total = 90
	roomOf := map[string]int64{} // text → its room
	for i := range total {
		roomOf[fmt.Sprintf("m%d", i)] = rooms[i%3].ID
	}
	c := openSocket(t, srv, bob)
	frame(t, c, "hello")

	// The sender's second half waits for Bob's third reconnect, so that
	// it is not done before Bob starts dropping and resuming.
	reconnected := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		for i := range total {
			if i == total/2 {
				select {
				case <-reconnected:
				case <-time.After(20 * time.Second):
					errs <- fmt.Errorf("Bob did not reconnect three times")
					return
				}
			}
			if _, err := trySendTo(srv, ann, rooms[i%3].Slug, fmt.Sprintf("m%d", i)); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()

	var got []db.Message
	var last int64
	deadline := time.Now().Add(30 * time.Second)
	for reconnects := 0; len(got) < total; {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s and %d reconnects: %d of %d messages", reconnects, len(got), total)
		}
		// A few messages, then drop and resume from the last one seen.
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		for n := 0; n < 7 && len(got) < total; {
			var f sockFrame
			if err := c.ReadJSON(&f); err != nil {
				t.Fatalf("Bob's socket after %d messages: %v", len(got), err)
			}
			m, ok := f.message(t)
			if !ok {
				continue
			}
			got = append(got, m)
			last = m.ID
			n++
		}
		c.Close()
		if len(got) < total {
			if reconnects++; reconnects == 3 {
				close(reconnected)
			}
			c = dialPage(t, srv, fmt.Sprintf("/?after=%d", last), bob)
		}
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, m := range got {
		if i > 0 && m.ID <= got[i-1].ID {
			t.Fatalf("message %d has id %d after %d: want each once, in id order", i, m.ID, got[i-1].ID)
		}
		room, ok := roomOf[m.Message]
		if !ok || seen[m.Message] {
			t.Fatalf("message %d %q (id %d): not one sent, or twice", i, m.Message, m.ID)
		}
		if m.Room != room {
			t.Fatalf("message %q came in room %d, want %d", m.Message, m.Room, room)
		}
		seen[m.Message] = true
	}
	if len(seen) != total {
		t.Fatalf("%d distinct messages, want %d", len(seen), total)
	}
}

func TestJoiningAndLeavingMidStream(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	x := createRoom(t, srv, ann, `{"name": "X", "kind": "open"}`, http.StatusCreated)
	bobID := accountOf(t, srv, bob)
	c := openSocket(t, srv, bob)
	frame(t, c, "hello")

	// Ann posts into X until told to stop; phase says where Bob is:
	// 0 out, 1 joining, 2 in (join answered), 3 leaving, 4 out (leave
	// answered). Each message records the phases before and after its send.
	var phase atomic.Int32
	type posted struct {
		id            int64
		before, after int32
	}
	var (
		mu   sync.Mutex
		sent []posted
	)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(sent) }
	stop := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		for i := range 2000 {
			select {
			case <-stop:
				errs <- nil
				return
			default:
			}
			before := phase.Load()
			id, err := trySendTo(srv, ann, x.Slug, fmt.Sprintf("x%d", i))
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			sent = append(sent, posted{id, before, phase.Load()})
			mu.Unlock()
		}
		errs <- nil
	}()
	waitFor := func(n int) {
		t.Helper()
		for start := time.Now(); count() < n; time.Sleep(5 * time.Millisecond) {
			if time.Since(start) > 20*time.Second {
				t.Fatalf("Ann's sender: %d messages, want %d", count(), n)
			}
		}
	}
	waitFor(5)
	phase.Store(1)
	if code, body := call(t, srv, "POST", "/rooms/"+x.Slug+"/join", bob, `{}`, nil); code != http.StatusNoContent {
		t.Fatalf("Bob joins X: %d %s", code, body)
	}
	phase.Store(2)
	waitFor(count() + 5)
	phase.Store(3)
	if code, body := call(t, srv, "POST", "/rooms/"+x.Slug+"/leave", bob, `{}`, nil); code != http.StatusNoContent {
		t.Fatalf("Bob leaves X: %d %s", code, body)
	}
	phase.Store(4)
	waitFor(count() + 5)
	close(stop)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	marker := "lobby, after X"
	sendTo(t, srv, ann, "lobby", marker)

	frames := framesUntil(t, c, "Bob's socket", isText(t, marker))
	state := "out" // out, in, left
	var heard []int64
	for _, f := range frames {
		switch f.Type {
		case "membership":
			var m struct {
				Room   int64 `json:"room"`
				UserID int64 `json:"user_id"`
				Joined bool  `json:"joined"`
			}
			json.Unmarshal(f.Data, &m)
			if m.Room != x.ID || m.UserID != bobID {
				continue
			}
			switch {
			case m.Joined && state == "out":
				state = "in"
			case !m.Joined && state == "in":
				state = "left"
			default:
				t.Fatalf("membership %s while %s", f.Data, state)
			}
		case "message":
			m, _ := f.message(t)
			if m.Room != x.ID {
				continue
			}
			if state != "in" {
				t.Fatalf("Bob heard X's %q (id %d) while %s", m.Message, m.ID, state)
			}
			heard = append(heard, m.ID)
		}
	}
	if state != "left" {
		t.Fatalf("Bob's socket ended %s: want a joined and a left membership frame", state)
	}
	mu.Lock()
	defer mu.Unlock()
	// Every message sent wholly while Bob was in was heard, and what was
	// heard is an unbroken run of X's messages.
	var must, all []int64
	for _, p := range sent {
		all = append(all, p.id)
		if p.before == 2 && p.after == 2 {
			must = append(must, p.id)
		}
	}
	if len(must) == 0 {
		t.Fatal("no message was sent while Bob was in X")
	}
	for _, id := range must {
		if !slices.Contains(heard, id) {
			t.Fatalf("Bob did not hear message %d, sent while he was in X; heard %v", id, heard)
		}
	}
	i := slices.Index(all, heard[0])
	if i < 0 || len(all) < i+len(heard) || !slices.Equal(all[i:i+len(heard)], heard) {
		t.Fatalf("Bob heard %v of X's %v: want an unbroken run", heard, all)
	}
	for _, p := range sent {
		if p.before == 4 && slices.Contains(heard, p.id) {
			t.Fatalf("Bob heard message %d, sent after he left", p.id)
		}
	}
}

// accountOf is the id of the account session speaks for, from hello.
func accountOf(t *testing.T, srv *httptest.Server, session string) int64 {
	t.Helper()
	c := openSocket(t, srv, session)
	defer c.Close()
	hello := frame(t, c, "hello")
	id, ok := hello["user_id"].(float64)
	if !ok {
		t.Fatalf("hello %v has no user_id", hello)
	}
	return int64(id)
}

func TestUnreadCountsAgreeBetweenTabs(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	x := createRoom(t, srv, ann, `{"name": "X", "kind": "open", "members": ["Bob"]}`, http.StatusCreated)
	tab1, tab2 := openSocket(t, srv, bob), openSocket(t, srv, bob)
	frame(t, tab1, "hello")
	frame(t, tab2, "hello")

	var last int64
	for i := range 3 {
		last = sendTo(t, srv, ann, x.Slug, fmt.Sprintf("x%d", i))
	}
	if r, ok := findRoom(roomsOf(t, srv, bob, ""), x.ID); !ok || r.Unread != 3 {
		t.Fatalf("Bob's X before reading: %+v, %v; want unread 3", r, ok)
	}
	for _, tab := range []*websocket.Conn{tab1, tab2} {
		framesUntil(t, tab, "Bob's tab", isText(t, "x2"))
	}
	sendFrame(t, tab1, "read", map[string]int64{"room": x.ID, "id": last})
	read := framesUntil(t, tab2, "Bob's other tab", func(f sockFrame) bool { return f.Type == "read" })
	var d struct {
		Room     int64 `json:"room"`
		LastRead int64 `json:"last_read"`
	}
	if json.Unmarshal(read[len(read)-1].Data, &d); d.Room != x.ID || d.LastRead != last {
		t.Fatalf("tab 2's read frame: %s, want room %d last_read %d", read[len(read)-1].Data, x.ID, last)
	}
	if r, ok := findRoom(roomsOf(t, srv, bob, ""), x.ID); !ok || r.Unread != 0 || r.LastRead != last {
		t.Fatalf("Bob's X after reading in tab 1: %+v, %v; want unread 0, last_read %d", r, ok, last)
	}
	// The tab that read is not told again.
	sendTo(t, srv, ann, "lobby", "after the read")
	for _, f := range framesUntil(t, tab1, "Bob's tab 1", isText(t, "after the read")) {
		if f.Type == "read" {
			t.Fatalf("tab 1 was told of its own read: %s", f.Data)
		}
	}
	// Ann's own messages are not unread to her, and Bob's reading does
	// not move her mark.
	if r, ok := findRoom(roomsOf(t, srv, ann, ""), x.ID); !ok || r.Unread != 0 || r.LastRead != 0 {
		t.Fatalf("Ann's X: %+v, %v; want unread 0, last_read 0", r, ok)
	}
}

func TestArchivedRoomRefusesSends(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	x := createRoom(t, srv, ann, `{"name": "X", "kind": "open", "members": ["Bob"]}`, http.StatusCreated)
	sendTo(t, srv, bob, x.Slug, "before the archive")
	// Bob, a member but not the creator, may not archive it.
	if code, body := call(t, srv, "PATCH", "/rooms/"+x.Slug, bob, `{"archived": true}`, nil); code != http.StatusForbidden {
		t.Fatalf("Bob archives Ann's room: %d %s, want 403", code, body)
	}
	c := openSocket(t, srv, bob)
	frame(t, c, "hello")
	if code, body := call(t, srv, "PATCH", "/rooms/"+x.Slug, ann, `{"archived": true}`, nil); code != http.StatusOK || !strings.Contains(body, `"archived":`) {
		t.Fatalf("Ann archives X: %d %s, want 200 with the archived room", code, body)
	}
	for who, session := range map[string]string{"Ann": ann, "Bob": bob} {
		code, body := call(t, srv, "POST", "/rooms/"+x.Slug+"/messages", session, `{"message": "after the archive"}`, nil)
		if code != http.StatusForbidden || !strings.Contains(body, `"error"`) || !strings.Contains(body, "archived") {
			t.Fatalf("%s sends to archived X: %d %s, want 403 saying it is archived", who, code, body)
		}
	}
	sendFrame(t, c, "send", map[string]any{"room": x.ID, "message": "over the socket", "cid": "c1"})
	e := frame(t, c, "error")
	if e["code"] != "archived" || e["cid"] != "c1" || !strings.Contains(fmt.Sprint(e["message"]), "archived") {
		t.Fatalf("socket send to archived X: error %v, want code archived for c1", e)
	}
	code, body := call(t, srv, "GET", "/rooms/"+x.Slug+"/messages/latest/10", ann, "", nil)
	if code != http.StatusOK || strings.Contains(body, "after the archive") || strings.Contains(body, "over the socket") || !strings.Contains(body, "before the archive") {
		t.Fatalf("X's messages after the refusals: %d %s, want the one from before only", code, body)
	}
}

func TestTutorialRoutesStayInTheDefaultRoom(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	other := createRoom(t, srv, ann, `{"name": "Other", "kind": "open", "guests": true}`, http.StatusCreated)

	echo, _, err := (&websocket.Dialer{Subprotocols: []string{"echo-protocol"}}).Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	// An echo client has no hello: a first lobby message tells it is in.
	if code, body := call(t, srv, "POST", "/discussion/"+url.PathEscape("lobby one"), "", "", nil); code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("POST /discussion/lobby one: %d %s", code, body)
	}
	echo.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, b, err := echo.ReadMessage(); err != nil || string(b) != "lobby one" {
		t.Fatalf("echo client's first frame: %q, %v; want lobby one", b, err)
	}
	sendTo(t, srv, ann, other.Slug, "in the other room")
	if code, body := call(t, srv, "POST", "/discussion/"+url.PathEscape("lobby two"), ann, "", nil); code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("POST /discussion/lobby two: %d %s", code, body)
	}
	if _, b, err := echo.ReadMessage(); err != nil || string(b) != "lobby two" {
		t.Fatalf("echo client's next frame: %q, %v; want lobby two (not the other room's)", b, err)
	}
	for _, path := range []string{"/discussion/latest/10", "/discussion"} {
		code, body := call(t, srv, "GET", path, "", "", nil)
		var msgs []db.Message
		if code != http.StatusOK || json.Unmarshal([]byte(body), &msgs) != nil {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		var texts []string
		for _, m := range msgs {
			texts = append(texts, m.Message)
			if m.Room != db.DefaultRoom {
				t.Fatalf("GET %s has %q of room %d", path, m.Message, m.Room)
			}
		}
		if strings.Join(texts, ",") != "lobby one,lobby two" {
			t.Fatalf("GET %s: %q, want lobby one, lobby two", path, texts)
		}
	}
	// What the echo client sends lands in the lobby.
	echo.WriteMessage(websocket.TextMessage, []byte("from echo"))
	if _, b, err := echo.ReadMessage(); err != nil || string(b) != "from echo" {
		t.Fatalf("echo client's own message: %q, %v", b, err)
	}
	code, body := call(t, srv, "GET", "/rooms/"+other.Slug+"/messages/latest/10", ann, "", nil)
	if code != http.StatusOK || strings.Contains(body, "lobby") || strings.Contains(body, "from echo") || !strings.Contains(body, "in the other room") {
		t.Fatalf("the other room's messages: %d %s, want its own only", code, body)
	}
}

func TestCreatingARoomNeedsJSONFromThisSite(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	body := `{"name": "Sneaky", "kind": "open"}`
	for _, c := range []struct {
		what   string
		header map[string]string
		body   string
		want   int
	}{
		{"another site's JSON", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, body, http.StatusForbidden},
		{"a form", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "name=Sneaky&kind=open", http.StatusUnsupportedMediaType},
		{"plain text", map[string]string{"Content-Type": "text/plain"}, body, http.StatusUnsupportedMediaType},
		{"no type", map[string]string{"Content-Type": ""}, body, http.StatusUnsupportedMediaType},
	} {
		code, answer := call(t, srv, "POST", "/rooms", ann, c.body, c.header)
		if code != c.want || !strings.Contains(answer, `"error"`) {
			t.Errorf("%s: %d %s, want %d with an error", c.what, code, answer, c.want)
		}
	}
	for _, r := range roomsOf(t, srv, ann, "?include=open") {
		if r.Slug != "lobby" {
			t.Fatalf("a refused POST /rooms made %+v", r)
		}
	}
	// The same JSON from the page itself is taken.
	createRoom(t, srv, ann, body, http.StatusCreated)
}

func TestInvitedMidStreamHearsWhatFollows(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember, "Cid": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	cid := signInAs(t, srv, "Cid", "password of Cid", firefox)
	secret := createRoom(t, srv, ann, `{"name": "Secret", "kind": "private", "members": ["Bob"]}`, http.StatusCreated)
	cidID := accountOf(t, srv, cid)
	c := openSocket(t, srv, cid)
	frame(t, c, "hello")
	before := sendTo(t, srv, ann, secret.Slug, "before Cid")
	// Cid may not invite himself; Bob, a member, may.
	if code, body := call(t, srv, "POST", "/rooms/"+secret.Slug+"/members", cid, `{"user": "Cid"}`, nil); code != http.StatusNotFound {
		t.Fatalf("Cid invites himself: %d %s, want 404", code, body)
	}
	if code, body := call(t, srv, "POST", "/rooms/"+secret.Slug+"/members", bob, `{"user": "cid"}`, nil); code != http.StatusCreated || !strings.Contains(body, `"Cid"`) {
		t.Fatalf("Bob invites Cid: %d %s, want 201 naming Cid", code, body)
	}
	after := sendTo(t, srv, ann, secret.Slug, "after Cid")
	frames := framesUntil(t, c, "Cid's socket", isText(t, "after Cid"))
	joined := -1
	for i, f := range frames {
		var m struct {
			Room   int64 `json:"room"`
			UserID int64 `json:"user_id"`
			Joined bool  `json:"joined"`
			Info   struct {
				Name string `json:"name"`
			} `json:"info"`
		}
		json.Unmarshal(f.Data, &m)
		if f.Type == "membership" && m.Room == secret.ID && m.UserID == cidID && m.Joined && m.Info.Name == "Secret" {
			joined = i
		}
		if msg, ok := f.message(t); ok && msg.ID == before {
			t.Fatalf("Cid's open socket got %q, sent before he was invited", msg.Message)
		}
	}
	if joined < 0 || joined == len(frames)-1 {
		t.Fatalf("Cid's socket: no membership frame with the room's info before %d: %v", after, frames)
	}
	// Now a member, Cid reads the history, the earlier message too.
	code, body := call(t, srv, "GET", "/rooms/"+secret.Slug+"/messages/latest/10", cid, "", nil)
	if code != http.StatusOK || !strings.Contains(body, "before Cid") {
		t.Fatalf("Cid's history after the invitation: %d %s", code, body)
	}
	// Leaving by removing himself makes it 404 again.
	if code, body := call(t, srv, "DELETE", fmt.Sprintf("/rooms/%s/members/%d", secret.Slug, cidID), cid, "", nil); code != http.StatusNoContent {
		t.Fatalf("Cid removes himself: %d %s, want 204", code, body)
	}
	if code, body := call(t, srv, "GET", "/rooms/"+secret.Slug, cid, "", nil); code != http.StatusNotFound {
		t.Fatalf("Cid's GET after leaving: %d %s, want 404", code, body)
	}
}

// An admin's deletion of a private room's message is told to the room's
// people, and to no one else: not even its id reaches a non-member.
func TestDeletionIsToldOnlyInItsRoom(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember, "Cleo": db.RoleMember, "Boss": db.RoleAdmin})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	cleo := signInAs(t, srv, "Cleo", "password of Cleo", firefox)
	boss := signInAs(t, srv, "Boss", "password of Boss", firefox)
	den := createRoom(t, srv, ann, `{"name": "Den", "kind": "private", "members": ["Bob"]}`, http.StatusCreated)
	secret := sendTo(t, srv, ann, den.Slug, "a secret")
	bobs, cleos := openSocket(t, srv, bob), openSocket(t, srv, cleo)
	frame(t, bobs, "hello")
	frame(t, cleos, "hello")
	if code, _, body := as(t, srv, "POST", fmt.Sprintf("/admin/messages/%d/delete", secret), boss, nil); code != http.StatusSeeOther {
		t.Fatalf("the admin deletes it: %d %s", code, body)
	}
	if d := frame(t, bobs, "deleted"); d["id"] != float64(secret) {
		t.Fatalf("Bob told of %v, want the deletion of %d", d, secret)
	}
	// The admin, not in Den, deleted it unread; the audit line, which
	// every admin reads, does not quote it either.
	_, _, body := as(t, srv, "GET", "/admin", boss, nil)
	audit := body[strings.Index(body, `id="audit"`)+1:]
	if !strings.Contains(audit, fmt.Sprintf("message #%d", secret)) || !strings.Contains(audit, "in a private room") || strings.Contains(audit, "a secret") {
		t.Fatalf("the dashboard's audit of the deletion quotes the private message, or is missing:\n%s", audit)
	}
	// Cleo hears of a lobby line, and before it of nothing.
	lobby := sendTo(t, srv, ann, "lobby", "in the lobby")
	for _, f := range framesUntil(t, cleos, "the lobby line", isText(t, "in the lobby")) {
		if f.Type == "deleted" {
			t.Fatalf("Cleo, outside Den, was told of a deletion there: %v (lobby line %d)", f, lobby)
		}
	}
}

// Read marks write to the database, so a socket's are limited: a burst,
// then two a second; the rest are dropped (the next mark says as much),
// and sending is not held back by them.
func TestReadMarksAreLimited(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	tab1, tab2 := openSocket(t, srv, bob), openSocket(t, srv, bob)
	frame(t, tab1, "hello")
	frame(t, tab2, "hello")
	var ids []int64
	for i := range 40 {
		ids = append(ids, sendTo(t, srv, ann, "lobby", fmt.Sprintf("m%d", i)))
	}
	framesUntil(t, tab1, "the 40 lines", isText(t, "m39"))
	for _, id := range ids {
		sendFrame(t, tab1, "read", map[string]int64{"room": db.DefaultRoom, "id": id})
	}
	// The marks were taken in order: a send after them is answered after them.
	sendFrame(t, tab1, "send", map[string]any{"message": "still sending", "cid": "s1"})
	if a := frame(t, tab1, "ack"); a["cid"] != "s1" {
		t.Fatalf("a send after 40 read marks: %v, want its ack", a)
	}
	marks := 0
	for _, f := range framesUntil(t, tab2, "the send after the marks", isText(t, "still sending")) {
		if f.Type == "read" {
			marks++
		}
	}
	if marks < 1 || marks > 11 {
		t.Fatalf("40 read marks at once moved the marker %d times, want the burst of 10 (and perhaps one more)", marks)
	}
}

// A guest's socket carries the open rooms that let guests in, and follows
// that setting: a room opened to guests reaches an open guest socket from
// then on, and stops reaching it when it is closed to them again (or
// archived); a guest's REST read of it follows too.
func TestGuestsFollowARoomsGuestSetting(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleAdmin})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	hall := createRoom(t, srv, ann, `{"name": "Hall", "kind": "open"}`, http.StatusCreated)
	guest := openSocket(t, srv, "")
	frame(t, guest, "hello")
	seen := func(what, last string) (hall int) {
		for _, f := range framesUntil(t, guest, what, isText(t, last)) {
			if m, ok := f.message(t); ok && m.Room != db.DefaultRoom {
				hall++
			}
		}
		return hall
	}
	sendTo(t, srv, ann, hall.Slug, "not for guests")
	sendTo(t, srv, ann, "lobby", "lobby 1")
	if n := seen("lobby 1", "lobby 1"); n != 0 {
		t.Fatalf("a guest got %d of Hall's messages before it let guests in", n)
	}
	if code, _ := call(t, srv, "GET", "/rooms/"+hall.Slug+"/messages/latest/5", "", "", nil); code != http.StatusNotFound {
		t.Fatalf("a guest reads Hall before it lets guests in: %d, want 404", code)
	}
	if code, body := call(t, srv, "PATCH", "/rooms/"+hall.Slug, ann, `{"guests": true}`, nil); code != http.StatusOK {
		t.Fatalf("Ann lets guests into Hall: %d %s", code, body)
	}
	sendTo(t, srv, ann, hall.Slug, "guests welcome")
	sendTo(t, srv, ann, "lobby", "lobby 2")
	if n := seen("lobby 2", "lobby 2"); n != 1 {
		t.Fatalf("a guest got %d of Hall's messages once it let guests in, want 1", n)
	}
	if code, body := call(t, srv, "GET", "/rooms/"+hall.Slug+"/messages/latest/5", "", "", nil); code != http.StatusOK || !strings.Contains(body, "guests welcome") {
		t.Fatalf("a guest reads Hall: %d %s", code, body)
	}
	if code, body := call(t, srv, "PATCH", "/rooms/"+hall.Slug, ann, `{"guests": false}`, nil); code != http.StatusOK {
		t.Fatalf("Ann closes Hall to guests: %d %s", code, body)
	}
	sendTo(t, srv, ann, hall.Slug, "members only again")
	sendTo(t, srv, ann, "lobby", "lobby 3")
	if n := seen("lobby 3", "lobby 3"); n != 0 {
		t.Fatalf("a guest got %d of Hall's messages after it closed to guests", n)
	}
}
