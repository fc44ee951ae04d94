package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
)

// Edits, deletions and reactions (issue 14, items 1, 5, 6 and 10): events of
// the one log, on the real server, a real SQLite file and real sockets.

// change is the data of an edited, deleted or reacted frame.
type change struct {
	Event     int64         `json:"event"`
	ID        int64         `json:"id"`
	Room      int64         `json:"room"`
	Message   string        `json:"message"`
	HTML      string        `json:"html"`
	EditedAt  int64         `json:"edited_at"`
	Emoji     string        `json:"emoji"`
	On        bool          `json:"on"`
	Reactions []db.Reaction `json:"reactions"`
}

func (f sockFrame) change(t *testing.T) change {
	t.Helper()
	var c change
	if err := json.Unmarshal(f.Data, &c); err != nil {
		t.Fatalf("%s frame %s: %v", f.Type, f.Data, err)
	}
	return c
}

// nextOf reads c up to the next frame of type typ and returns it.
func nextOf(t *testing.T, c *websocket.Conn, typ string) sockFrame {
	t.Helper()
	fs := framesUntil(t, c, "a "+typ+" frame", func(f sockFrame) bool { return f.Type == typ })
	return fs[len(fs)-1]
}

// refusedWith reads c up to the next error frame and fails unless its code
// is code.
func refusedWith(t *testing.T, c *websocket.Conn, code, what string) {
	t.Helper()
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	json.Unmarshal(nextOf(t, c, "error").Data, &e)
	if e.Code != code {
		t.Fatalf("%s: error %q (%s), want %q", what, e.Code, e.Message, code)
	}
}

func TestEditsReactionsAndDeletionsReachTheRoom(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember})
	ann, bob := openSocket(t, srv, signInAs(t, srv, "Ann", "password of Ann", firefox)), openSocket(t, srv, signInAs(t, srv, "Bob", "password of Bob", firefox))
	carol := openGuest(t, srv, "carol")
	tutorial, _, err := (&websocket.Dialer{Subprotocols: []string{"echo-protocol"}}).Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tutorial.Close()
	for _, c := range []*websocket.Conn{ann, bob, carol} {
		frame(t, c, "hello")
	}

	sendFrame(t, ann, "send", map[string]any{"message": "helo", "cid": "c1"})
	fs := framesUntil(t, bob, "Ann's message", isText(t, "helo"))
	m, _ := fs[len(fs)-1].message(t)
	framesUntil(t, ann, "Ann's message", isText(t, "helo"))

	sendFrame(t, ann, "edit", map[string]any{"id": m.ID, "message": "hello *all*"})
	for _, c := range []*websocket.Conn{ann, bob, carol} {
		e := nextOf(t, c, "edited").change(t)
		if e.ID != m.ID || e.Event <= m.ID || e.Message != "hello *all*" || e.HTML != "<p>hello <strong>all</strong></p>" || e.EditedAt == 0 {
			t.Fatalf("edited frame %+v", e)
		}
	}
	sendFrame(t, bob, "react", map[string]any{"id": m.ID, "emoji": "👍"})
	for _, c := range []*websocket.Conn{ann, bob} {
		r := nextOf(t, c, "reacted").change(t)
		if r.ID != m.ID || r.Emoji != "👍" || !r.On || len(r.Reactions) != 1 || !slices.Equal(r.Reactions[0].Users, []string{"Bob"}) {
			t.Fatalf("reacted frame %+v", r)
		}
	}

	// What may not be done is refused to the one who tried, and reaches
	// no one.
	sendFrame(t, bob, "edit", map[string]any{"id": m.ID, "message": "Bob was here", "cid": "e1"})
	refusedWith(t, bob, "forbidden", "Bob editing Ann's message")
	sendFrame(t, bob, "delete", map[string]any{"id": m.ID})
	refusedWith(t, bob, "forbidden", "Bob deleting Ann's message")
	sendFrame(t, carol, "react", map[string]any{"id": m.ID, "emoji": "🎉"})
	refusedWith(t, carol, "sign_in_required", "a guest reacting")
	sendFrame(t, ann, "react", map[string]any{"id": m.ID, "emoji": "nice"})
	refusedWith(t, ann, "bad_emoji", "a word as a reaction")
	sendFrame(t, ann, "edit", map[string]any{"id": m.ID + 1000, "message": "x"})
	refusedWith(t, ann, "not_found", "an edit of no message")
	sendFrame(t, ann, "edit", map[string]any{"id": m.ID, "message": "  "})
	refusedWith(t, ann, "empty", "an edit to nothing")

	sendFrame(t, ann, "delete", map[string]any{"id": m.ID, "cid": "d1"})
	for _, c := range []*websocket.Conn{ann, bob, carol} {
		d := nextOf(t, c, "deleted").change(t)
		if d.ID != m.ID || d.Event == 0 || d.Room != db.DefaultRoom {
			t.Fatalf("deleted frame %+v", d)
		}
	}
	if code, body := call(t, srv, "GET", "/discussion/latest/10", "", "", nil); code != 200 || strings.Contains(body, "hello") {
		t.Fatalf("history after the deletion: %d %s", code, body)
	}

	// The tutorial's client got the message as text, and nothing of its
	// changes: the next frame it reads is the next message.
	sendFrame(t, ann, "send", map[string]any{"message": "after", "cid": "c2"})
	tutorial.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, want := range []string{"helo", "after"} {
		_, got, err := tutorial.ReadMessage()
		if err != nil || string(got) != want {
			t.Fatalf("echo-protocol read %q, %v; want %q", got, err, want)
		}
	}
}

// kinds is a frame sequence as "message:text", "edited:text", "reacted:👍",
// "deleted", keeping the frames of the log only.
func kinds(t *testing.T, fs []sockFrame) (out []string, ids []int64) {
	t.Helper()
	for _, f := range fs {
		switch f.Type {
		case "message":
			m, _ := f.message(t)
			out, ids = append(out, "message:"+m.Message+fmt.Sprintf(" %d", len(m.Reactions))), append(ids, m.ID)
		case "edited":
			c := f.change(t)
			out, ids = append(out, "edited:"+c.Message), append(ids, c.Event)
		case "reacted":
			c := f.change(t)
			out, ids = append(out, "reacted:"+c.Emoji), append(ids, c.Event)
		case "deleted":
			c := f.change(t)
			out, ids = append(out, "deleted"), append(ids, c.Event)
		}
	}
	return out, ids
}

// A page that was away while messages were edited, reacted to and deleted
// is handed every change it missed, once, in order, after what it had seen:
// from memory while the server runs, from the database after a restart.
func TestResumeReplaysChangesMadeWhileAway(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nochat.db")
	ts := testServer{path: path, accounts: map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember}}
	srv, _, _, stop := ts.start(t)
	annSession := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bobSession := signInAs(t, srv, "Bob", "password of Bob", firefox)
	ann := openSocket(t, srv, annSession)
	frame(t, ann, "hello")

	one := sendTo(t, srv, annSession, "lobby", "one")
	two := sendTo(t, srv, annSession, "lobby", "two")
	seen := two // Bob's page has seen both, and goes away

	wait := func(typ string) { t.Helper(); nextOf(t, ann, typ) }
	sendFrame(t, ann, "edit", map[string]any{"id": one, "message": "one, edited"})
	wait("edited")
	sendFrame(t, ann, "react", map[string]any{"id": one, "emoji": "🎉"})
	wait("reacted")
	three := sendTo(t, srv, annSession, "lobby", "three")
	sendFrame(t, ann, "edit", map[string]any{"id": three, "message": "three, edited"})
	wait("edited")
	sendFrame(t, ann, "react", map[string]any{"id": two, "emoji": "👀"})
	wait("reacted")
	sendFrame(t, ann, "delete", map[string]any{"id": two})
	wait("deleted")
	last := sendTo(t, srv, annSession, "lobby", "last")

	// From memory: each change as it happened. The message three comes
	// as it was sent, then its edit.
	want := []string{"edited:one, edited", "reacted:🎉", "message:three 0", "edited:three, edited", "deleted", "message:last 0"}
	resume := func(what string, want []string) {
		t.Helper()
		bob := dialPage(t, srv, fmt.Sprintf("/?after=%d", seen), bobSession)
		got, ids := kinds(t, framesUntil(t, bob, what, isText(t, "last")))
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %q, want %q", what, got, want)
		}
		if !slices.IsSorted(ids) || slices.Compact(slices.Clone(ids)) == nil || ids[0] <= seen || ids[len(ids)-1] != last {
			t.Fatalf("%s: ids %v, want increasing from after %d to %d", what, ids, seen, last)
		}
		bob.Close()
	}
	resume("resuming from memory", want)

	// From the database, after a restart: message three in its current
	// state, then its edit again; two's reaction went with it.
	stop()
	ts.accounts = nil
	srv, _, _, _ = ts.start(t)
	bobSession = signInAs(t, srv, "Bob", "password of Bob", firefox)
	resume("resuming after a restart", []string{"edited:one, edited", "reacted:🎉", "message:three, edited 0", "edited:three, edited", "deleted", "message:last 0"})
}

// A private room's changes reach its members only, and its messages cannot
// be changed, nor even found, by anyone else.
func TestChangesStayInTheirRoom(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember, "Cid": db.RoleMember})
	annSession := signInAs(t, srv, "Ann", "password of Ann", firefox)
	secret := createRoom(t, srv, annSession, `{"name": "Secret", "kind": "private", "members": ["Bob"]}`, http.StatusCreated)
	bob := openSocket(t, srv, signInAs(t, srv, "Bob", "password of Bob", firefox))
	cid := openSocket(t, srv, signInAs(t, srv, "Cid", "password of Cid", firefox))
	frame(t, bob, "hello")
	frame(t, cid, "hello")
	m := sendTo(t, srv, annSession, secret.Slug, "between us")

	sendFrame(t, bob, "react", map[string]any{"id": m, "emoji": "🤫"})
	sendFrame(t, cid, "react", map[string]any{"id": m, "emoji": "👋"})
	refusedWith(t, cid, "not_found", "Cid reacting in a room he is not in")
	sendFrame(t, cid, "delete", map[string]any{"id": m})
	refusedWith(t, cid, "not_found", "Cid deleting in a room he is not in")
	if r := nextOf(t, bob, "reacted").change(t); r.Emoji != "🤫" || len(r.Reactions) != 1 {
		t.Fatalf("Bob's reaction: %+v", r)
	}
	// Cid hears the lobby's next message and nothing of the secret room
	// before it.
	sendTo(t, srv, annSession, "lobby", "in the lobby")
	for _, f := range framesUntil(t, cid, "the lobby's message", isText(t, "in the lobby")) {
		if mentionsRoom(f, secret.ID) || f.Type == "reacted" {
			t.Fatalf("Cid got %s %s", f.Type, f.Data)
		}
	}
}

// The REST routes make the same changes, with the same rules.
func TestChangeRoutes(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember, "Root": db.RoleAdmin})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	root := signInAs(t, srv, "Root", "password of Root", firefox)
	other := createRoom(t, srv, ann, `{"name": "Other", "kind": "open", "members": ["Bob"]}`, http.StatusCreated)
	secret := createRoom(t, srv, ann, `{"name": "Secret", "kind": "private"}`, http.StatusCreated)
	m := sendTo(t, srv, ann, "lobby", "draft")
	hidden := sendTo(t, srv, ann, secret.Slug, "hidden")
	path := fmt.Sprintf("/rooms/lobby/messages/%d", m)

	cases := []struct {
		name, method, path, session, body string
		want                              int
		answer                            string // in the answer's body
	}{
		{"an edit by its author", "PATCH", path, ann, `{"message": "final _text_"}`, 200, `"edited_at":`},
		{"the same edit again", "PATCH", path, ann, `{"message": "final _text_"}`, 200, `\u003cem\u003etext`},
		{"an edit by another", "PATCH", path, bob, `{"message": "mine now"}`, 403, "only your own"},
		{"an edit by a guest", "PATCH", path, "", `{"message": "x"}`, 401, "sign in"},
		{"an edit with no message", "PATCH", path, ann, `{"text": "x"}`, 400, "message is missing"},
		{"an edit too long", "PATCH", path, ann, `{"message": "` + strings.Repeat("x", 2001) + `"}`, 400, "longer than"},
		{"an edit of no such message", "PATCH", "/rooms/lobby/messages/99999", ann, `{"message": "x"}`, 404, "no such message"},
		{"an edit under another room's path", "PATCH", fmt.Sprintf("/rooms/%s/messages/%d", other.Slug, m), ann, `{"message": "x"}`, 404, "no such message"},
		{"a private room's message by a non-member", "POST", fmt.Sprintf("/rooms/%s/messages/%d/reactions", secret.Slug, hidden), bob, `{"emoji": "👍"}`, 404, "no such room"},
		{"a reaction", "POST", path + "/reactions", bob, `{"emoji": "👍"}`, 200, `"users":["Bob"]`},
		{"a second one", "POST", path + "/reactions", ann, `{"emoji": "👍"}`, 200, `"count":2`},
		{"a reaction taken back", "POST", path + "/reactions", bob, `{"emoji": "👍"}`, 200, `"users":["Ann"]`},
		{"a reaction set off that is off", "POST", path + "/reactions", bob, `{"emoji": "👍", "on": false}`, 200, `"count":1`},
		{"a reaction that is a word", "POST", path + "/reactions", bob, `{"emoji": "lol"}`, 400, "one emoji"},
		{"a reaction of three emoji", "POST", path + "/reactions", bob, `{"emoji": "👍👍👍"}`, 400, "one emoji"},
		{"a deletion by another", "DELETE", path, bob, "", 403, "only your own"},
		{"a deletion by an admin", "DELETE", path, root, "", 204, ""},
		{"a deletion again", "DELETE", path, ann, "", 404, "no such message"},
		{"an edit of what is gone", "PATCH", path, ann, `{"message": "x"}`, 404, "no such message"},
	}
	for _, c := range cases {
		code, body := call(t, srv, c.method, c.path, c.session, c.body, nil)
		if code != c.want || !strings.Contains(body, c.answer) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, code, body, c.want, c.answer)
		}
	}
	// A form from another site cannot make a change.
	req, _ := http.NewRequest("DELETE", srv.URL+fmt.Sprintf("/rooms/lobby/messages/%d", sendTo(t, srv, ann, "lobby", "keep")), nil)
	req.Header.Set("Cookie", personCookie+"="+ann)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-site deletion: %d, want 403", resp.StatusCode)
	}
}

// Past the edit window, an edit is refused with the window in words;
// deletion stays open.
func TestEditWindow(t *testing.T) {
	srv, _, _, _ := testServer{hub: chat.Options{EditWindow: time.Millisecond}, accounts: map[string]string{"Ann": db.RoleMember}}.start(t)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	m := sendTo(t, srv, ann, "lobby", "typo")
	time.Sleep(20 * time.Millisecond)
	path := fmt.Sprintf("/rooms/lobby/messages/%d", m)
	if code, body := call(t, srv, "PATCH", path, ann, `{"message": "fixed"}`, nil); code != 403 || !strings.Contains(body, "edited for") {
		t.Fatalf("a late edit: %d %s, want 403 naming the window", code, body)
	}
	if code, body := call(t, srv, "DELETE", path, ann, "", nil); code != 204 {
		t.Fatalf("a late deletion: %d %s, want 204", code, body)
	}
}

// A reply carries a quote of what it answers; a mention is stored with the
// person's account, marks the room for them, and survives their rename.
func TestRepliesAndMentions(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember, "Root": db.RoleAdmin})
	annSession := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bobSession := signInAs(t, srv, "Bob", "password of Bob", firefox)
	ann := openSocket(t, srv, annSession)
	bob := openSocket(t, srv, bobSession)
	frame(t, ann, "hello")
	frame(t, bob, "hello")
	secret := createRoom(t, srv, annSession, `{"name": "Secret", "kind": "private"}`, http.StatusCreated)
	hidden := sendTo(t, srv, annSession, secret.Slug, "not for Bob")

	lunch := sendTo(t, srv, annSession, "lobby", "lunch?\nat noon, the usual place")
	sendFrame(t, bob, "send", map[string]any{"message": "yes @ann, and @everyone", "cid": "r1", "reply_to": lunch})
	fs := framesUntil(t, ann, "Bob's reply", isText(t, "yes @ann, and @everyone"))
	m, _ := fs[len(fs)-1].message(t)
	if m.ReplyTo == nil || m.ReplyTo.ID != lunch || m.ReplyTo.User != "Ann" || m.ReplyTo.Message != "lunch?…" {
		t.Fatalf("the reply's quote: %+v", m.ReplyTo)
	}
	// Bob is no admin: @everyone is a word from him.
	if len(m.Mentions) != 1 || m.Mentions[0].User != "Ann" || m.Mentions[0].Start != 4 {
		t.Fatalf("the reply's mentions: %+v", m.Mentions)
	}
	if !strings.Contains(m.HTML, `<span class="mention" data-user-id="`) || strings.Count(m.HTML, "mention") != 1 {
		t.Fatalf("the reply's html: %s", m.HTML)
	}
	// A reply to a message of another room, or of none, is refused.
	sendFrame(t, bob, "send", map[string]any{"message": "peek", "cid": "r2", "reply_to": hidden})
	refusedWith(t, bob, "bad_request", "a reply to a private room's message")
	if code, body := call(t, srv, "POST", "/rooms/lobby/messages", bobSession, fmt.Sprintf(`{"message": "peek", "reply_to": %d}`, hidden), nil); code != 400 || !strings.Contains(body, "no such message") {
		t.Fatalf("a REST reply to a private room's message: %d %s", code, body)
	}

	// Ann's list marks the lobby: a mention of her, unread.
	lobby, _ := findRoom(roomsOf(t, srv, annSession, ""), 1)
	if !lobby.Mention {
		t.Fatalf("Ann's lobby after Bob's mention: %+v, want the mention marker", lobby)
	}
	// Ann renames herself: the mention shows her new name, in history.
	if code, _, body := as(t, srv, "POST", "/account/name", annSession, url.Values{"name": {"Annabel"}}); code >= 400 {
		t.Fatalf("rename: %d %s", code, body)
	}
	_, body := call(t, srv, "GET", "/rooms/lobby/messages/latest/1", bobSession, "", nil)
	var page []db.Message
	json.Unmarshal([]byte(body), &page)
	if len(page) != 1 || page[0].Mentions[0].User != "Annabel" || !strings.Contains(page[0].HTML, ">@Annabel</span>") || page[0].ReplyTo.User != "Annabel" {
		t.Fatalf("history after the rename: %s", body)
	}

	// Ann edits the original: the quote follows; deleted, the reply says so.
	call(t, srv, "PATCH", fmt.Sprintf("/rooms/lobby/messages/%d", lunch), annSession, `{"message": "lunch at one?"}`, nil)
	reply := page[0].ID
	_, body = call(t, srv, "GET", fmt.Sprintf("/rooms/lobby/messages/%d", reply), bobSession, "", nil)
	if !strings.Contains(body, `"reply_to":{"id":`+fmt.Sprint(lunch)+`,"user":"Annabel","user_id":`) || !strings.Contains(body, `"message":"lunch at one?"}`) {
		t.Fatalf("the quote after an edit: %s", body)
	}
	call(t, srv, "DELETE", fmt.Sprintf("/rooms/lobby/messages/%d", lunch), annSession, "", nil)
	_, body = call(t, srv, "GET", fmt.Sprintf("/rooms/lobby/messages/%d", reply), bobSession, "", nil)
	if !strings.Contains(body, fmt.Sprintf(`"reply_to":{"id":%d,"deleted":true}`, lunch)) {
		t.Fatalf("the quote after a deletion: %s", body)
	}
	// So does the reply replayed from memory to a page that was away.
	away := dialPage(t, srv, fmt.Sprintf("/?after=%d", lunch), bobSession)
	fs = framesUntil(t, away, "the reply, replayed", isText(t, "yes @ann, and @everyone"))
	if replayed, _ := fs[len(fs)-1].message(t); replayed.ReplyTo == nil || !replayed.ReplyTo.Deleted || replayed.ReplyTo.Message != "" {
		t.Fatalf("the replayed reply quotes %+v, want the original deleted", replayed.ReplyTo)
	}

	// An admin's @room mentions everyone: Bob's list marks the lobby.
	root := signInAs(t, srv, "Root", "password of Root", firefox)
	sendTo(t, srv, root, "lobby", "@room the Wi-Fi is back")
	if lobby, _ := findRoom(roomsOf(t, srv, bobSession, ""), 1); !lobby.Mention {
		t.Fatalf("Bob's lobby after an admin's @room: %+v", lobby)
	}
}

// A ban that deletes a person's messages takes their edits with them, from
// memory too: a page resuming from before never gets the edited text.
func TestBanForgetsTheEditsInMemory(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Eve": db.RoleMember, "Bob": db.RoleMember})
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)
	eveSession := signInAs(t, srv, "Eve", "password of Eve", firefox)
	bobSession := signInAs(t, srv, "Bob", "password of Bob", firefox)
	before := sendTo(t, srv, bobSession, "lobby", "before")
	eve := sendTo(t, srv, eveSession, "lobby", "hi")
	if code, body := call(t, srv, "PATCH", fmt.Sprintf("/rooms/lobby/messages/%d", eve), eveSession, `{"message": "the secret edited text"}`, nil); code != 200 {
		t.Fatalf("edit: %d %s", code, body)
	}
	if code, _, body := as(t, srv, "POST", peopleURL(t, auth, "Eve", "ban"), ada, url.Values{"delete_messages": {"on"}}); code != http.StatusSeeOther {
		t.Fatalf("ban: %d %s", code, body)
	}
	sendTo(t, srv, bobSession, "lobby", "after")
	bob := dialPage(t, srv, fmt.Sprintf("/?after=%d", before), bobSession)
	for _, f := range framesUntil(t, bob, "the resume", isText(t, "after")) {
		if strings.Contains(string(f.Data), "secret") || strings.Contains(string(f.Data), `"hi"`) {
			t.Fatalf("resumed after the ban with %s %s", f.Type, f.Data)
		}
	}
}

// A page that was away while a ban deleted a person's messages is told of
// each deletion when it resumes, in the log's order, as a page that was
// open is: it takes them off and never shows them again.
func TestBanDeletionsReachAPageThatWasAway(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Eve": db.RoleMember, "Bob": db.RoleMember})
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)
	eveSession := signInAs(t, srv, "Eve", "password of Eve", firefox)
	bobSession := signInAs(t, srv, "Bob", "password of Bob", firefox)
	sendTo(t, srv, bobSession, "lobby", "hello")
	var spam []int64
	for i := range 3 {
		spam = append(spam, sendTo(t, srv, eveSession, "lobby", fmt.Sprint("spam ", i)))
	}
	seen := sendTo(t, srv, bobSession, "lobby", "what is this?") // Bob's page has everything up to here
	if code, _, body := as(t, srv, "POST", peopleURL(t, auth, "Eve", "ban"), ada, url.Values{"delete_messages": {"on"}}); code != http.StatusSeeOther {
		t.Fatalf("ban: %d %s", code, body)
	}
	sendTo(t, srv, ada, "lobby", "gone now")

	bob := dialPage(t, srv, fmt.Sprintf("/?after=%d", seen), bobSession)
	var told []int64
	lastEvent := seen
	for _, f := range framesUntil(t, bob, "the resume", isText(t, "gone now")) {
		if f.Type != "deleted" {
			continue
		}
		var d struct {
			Event int64 `json:"event"`
			ID    int64 `json:"id"`
		}
		json.Unmarshal(f.Data, &d)
		if d.Event <= lastEvent {
			t.Fatalf("deleted %s: its event is not after %d", f.Data, lastEvent)
		}
		lastEvent = d.Event
		told = append(told, d.ID)
	}
	if !slices.Equal(told, spam) {
		t.Fatalf("the resumed page was told of %v deleted, want Eve's %v", told, spam)
	}
	_, body := call(t, srv, "GET", "/rooms/lobby/messages/latest/10", bobSession, "", nil)
	if strings.Contains(body, "spam") {
		t.Fatalf("history after the ban: %s", body)
	}
}

// A reaction toggled from a socket that dropped before its ack came, and
// sent again from the next socket under the same cid, as a client that
// keeps its unanswered frames does: acked with the change made the first
// time, not toggled back, and the room hears of it once.
func TestAToggleSentAgainAfterAReconnectIsMadeOnce(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember})
	annSession, bobSession := signInAs(t, srv, "Ann", "password of Ann", firefox), signInAs(t, srv, "Bob", "password of Bob", firefox)
	ann := openSocket(t, srv, annSession)
	frame(t, ann, "hello")
	msg := sendTo(t, srv, annSession, "lobby", "lunch at noon?")
	toggle := map[string]any{"id": msg, "emoji": "👍", "cid": "t1"}

	again := sentAgain(t, srv, bobSession, "react", toggle)
	sendTo(t, srv, annSession, "lobby", "see you")
	var reacted int
	for _, f := range framesUntil(t, ann, "Ann's page", isText(t, "see you")) {
		if f.Type == "reacted" {
			reacted++
			if r := f.change(t); !r.On {
				t.Fatalf("Ann's page heard the reaction taken back: %s", f.Data)
			}
		}
	}
	if reacted != 1 {
		t.Fatalf("Ann's page heard of %d reactions, want the one", reacted)
	}
	_, body := call(t, srv, "GET", fmt.Sprintf("/rooms/lobby/messages/%d", msg), annSession, "", nil)
	if !strings.Contains(body, `"emoji":"👍","count":1`) {
		t.Fatalf("the message after the toggle was sent twice: %s", body)
	}
	sendFrame(t, again, "react", map[string]any{"id": msg, "emoji": "🎉", "cid": "t1"})
	refusedWith(t, again, "cid_reused", "another reaction under the same cid")
}

// An edit and a deletion sent again from the next socket under their cids
// are acked as the first time; the deletion also after its message is
// gone, where a new deletion is refused as a change of no message; and a
// cid that named one change refuses another.
func TestChangesSentAgainAreAckedAsTheFirstTime(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember})
	session := signInAs(t, srv, "Ann", "password of Ann", firefox)
	msg := sendTo(t, srv, session, "lobby", "lunch at noon")
	edit := map[string]any{"id": msg, "message": "lunch at one", "cid": "e1"}
	del := map[string]any{"id": msg, "cid": "d1"}
	sentAgain(t, srv, session, "edit", edit)
	page := sentAgain(t, srv, session, "delete", del) // the message is gone by the copy
	sendFrame(t, page, "delete", map[string]any{"id": msg, "cid": "d2"})
	refusedWith(t, page, "not_found", "a new deletion of the message gone")
	other := sendTo(t, srv, session, "lobby", "another")
	sendFrame(t, page, "delete", map[string]any{"id": other, "cid": "d1"})
	refusedWith(t, page, "cid_reused", "a deletion of another message under d1")
}

// sentAgain sends frame typ with data from a new socket of session and
// reads its ack, closes the socket (as far as the page knows, the ack was
// lost with it), sends the same frame from the next socket, and fails
// unless the copy is acked as the first was. It returns that next socket.
func sentAgain(t *testing.T, srv *httptest.Server, session, typ string, data map[string]any) *websocket.Conn {
	t.Helper()
	first := openSocket(t, srv, session)
	frame(t, first, "hello")
	sendFrame(t, first, typ, data)
	ack := nextOf(t, first, "ack")
	first.Close()
	again := openSocket(t, srv, session)
	frame(t, again, "hello")
	sendFrame(t, again, typ, data)
	if got := nextOf(t, again, "ack"); string(got.Data) != string(ack.Data) {
		t.Fatalf("the %s sent again was acked %s, want %s, the first one's", typ, got.Data, ack.Data)
	}
	return again
}
