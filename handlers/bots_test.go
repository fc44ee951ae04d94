package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
)

// botWorld is a server with Ada (admin) and Bob (member), three rooms
// Ada made — ops (private, granted to the bot), secret (private) and
// lounge (open), both not granted — and a bot, Heron, in ops only.
type botWorld struct {
	srv                 *httptest.Server
	store               *db.Store
	hub                 *chat.Hub
	auth                *Auth
	ada, bob            string // sessions
	ops, secret, lounge roomAnswer
	bot                 db.Account
	token               string
}

func newBotWorld(t *testing.T, hubOpts chat.Options) botWorld {
	t.Helper()
	if hubOpts.BotRate == 0 {
		hubOpts.BotRate = -1 // no limit but where a test sets one
	}
	var w botWorld
	w.srv, _, _, _ = testServer{
		hub:      hubOpts,
		accounts: map[string]string{"Ada": db.RoleAdmin, "Bob": db.RoleMember},
		deps:     func(d *Deps) { w.store, w.hub, w.auth = d.Store, d.Hub, d.Auth },
	}.start(t)
	w.ada = signInAs(t, w.srv, "Ada", "password of Ada", firefox)
	w.bob = signInAs(t, w.srv, "Bob", "password of Bob", firefox)
	w.ops = createRoom(t, w.srv, w.ada, `{"name": "Ops", "kind": "private", "members": ["Bob"]}`, http.StatusCreated)
	w.secret = createRoom(t, w.srv, w.ada, `{"name": "Secret", "kind": "private", "members": ["Bob"]}`, http.StatusCreated)
	w.lounge = createRoom(t, w.srv, w.ada, `{"name": "Lounge", "kind": "open"}`, http.StatusCreated)
	token, hash, prefix := NewBotToken()
	_, key, err := chat.CleanAccountName("Heron", chat.DefaultMaxNameLen)
	if err != nil {
		t.Fatal(err)
	}
	if w.bot, err = w.store.CreateBot(context.Background(), "Heron", key, []int64{w.ops.ID}, hash, prefix, time.Now()); err != nil {
		t.Fatal(err)
	}
	w.token = token
	return w
}

// asBot is a request with the bot's token (or another Authorization).
func (w botWorld) asBot(t *testing.T, method, path, body string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	h := map[string]string{"Authorization": "Bearer " + w.token}
	for k, v := range header {
		h[k] = v
	}
	return roomCall(t, w.srv, method, path, "", body, h)
}

// botSocket opens the nochat.v1 socket with the bot's token in the
// header, from query (e.g. "?after=5").
func (w botWorld) botSocket(t *testing.T, query string) *websocket.Conn {
	t.Helper()
	c, resp, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial("ws"+strings.TrimPrefix(w.srv.URL, "http")+"/"+query, http.Header{"Authorization": {"Bearer " + w.token}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("bot socket: %v (%d)", err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A bot with a token lists its rooms, posts with an Idempotency-Key,
// reads history, edits and deletes its own messages and reacts over REST,
// and reads and sends over its socket with resume; everything it sends is
// marked as a bot's.
func TestBotPostsReadsAndReactsOverRESTAndWebSocket(t *testing.T) {
	w := newBotWorld(t, chat.Options{})

	code, _, body := w.asBot(t, "GET", "/rooms", "", nil)
	var rooms []roomAnswer
	if err := json.Unmarshal([]byte(body), &rooms); code != 200 || err != nil || len(rooms) != 1 || rooms[0].Slug != w.ops.Slug {
		t.Fatalf("GET /rooms as the bot: %d %s, want ops only", code, body)
	}

	send := func(text, key string) (int, db.Message) {
		t.Helper()
		code, _, body := w.asBot(t, "POST", "/rooms/"+w.ops.Slug+"/messages", fmt.Sprintf(`{"message": %q}`, text), map[string]string{"Idempotency-Key": key})
		var m db.Message
		json.Unmarshal([]byte(body), &m)
		if code == 201 && !strings.Contains(body, `"bot":true`) {
			t.Fatalf("the bot's message %s is not marked as a bot's", body)
		}
		return code, m
	}
	code, first := send("the washing machine is done", "wash-1")
	if code != 201 || first.User != "Heron" {
		t.Fatalf("bot send: %d %+v", code, first)
	}
	if code, again := send("the washing machine is done", "wash-1"); code != 201 || again.ID != first.ID {
		t.Fatalf("the same Idempotency-Key again: %d id %d, want the same message %d", code, again.ID, first.ID)
	}

	code, _, body = w.asBot(t, "GET", "/rooms/"+w.ops.Slug+"/messages?limit=10", "", nil)
	if code != 200 || !strings.Contains(body, "the washing machine is done") || !strings.Contains(body, `"bot":true`) {
		t.Fatalf("bot history: %d %s", code, body)
	}
	// People's history shows it as a bot's too.
	if code, answer := call(t, w.srv, "GET", "/rooms/"+w.ops.Slug+"/messages/latest/5", w.bob, "", nil); code != 200 || !strings.Contains(answer, `"bot":true`) {
		t.Fatalf("Bob reads the bot's message: %d %s", code, answer)
	}

	// And the page marks it: the bot's tag after its name.
	if code, _, page := as(t, w.srv, "GET", "/r/"+w.ops.Slug, w.bob, nil); code != 200 || !strings.Contains(page, `<span class="tag">bot</span>`) {
		t.Fatalf("Bob's page of ops: %d, no bot tag", code)
	}

	msg := "/rooms/" + w.ops.Slug + "/messages/" + strconv.FormatInt(first.ID, 10)
	if code, _, body := w.asBot(t, "PATCH", msg, `{"message": "the dryer is done"}`, nil); code != 200 || !strings.Contains(body, "the dryer is done") {
		t.Fatalf("bot edits its message: %d %s", code, body)
	}
	if code, _, body := w.asBot(t, "POST", msg+"/reactions", `{"emoji": "👍"}`, nil); code != 200 || !strings.Contains(body, "👍") {
		t.Fatalf("bot reacts: %d %s", code, body)
	}
	// Someone else's message: neither edited nor deleted by the bot.
	bobs := sendTo(t, w.srv, w.bob, w.ops.Slug, "thanks")
	bobsPath := "/rooms/" + w.ops.Slug + "/messages/" + strconv.FormatInt(bobs, 10)
	if code, _, body := w.asBot(t, "PATCH", bobsPath, `{"message": "pwned"}`, nil); code != http.StatusForbidden {
		t.Fatalf("bot edits Bob's message: %d %s, want 403", code, body)
	}
	if code, _, body := w.asBot(t, "DELETE", bobsPath, "", nil); code != http.StatusForbidden {
		t.Fatalf("bot deletes Bob's message: %d %s, want 403", code, body)
	}
	if code, _, body := w.asBot(t, "POST", bobsPath+"/reactions", `{"emoji": "🎉"}`, nil); code != 200 {
		t.Fatalf("bot reacts to Bob's message: %d %s", code, body)
	}

	// The socket, resumed after the first message: what came since, then
	// live messages, each of ops only.
	c := w.botSocket(t, "?after="+strconv.FormatInt(first.ID, 10))
	framesUntil(t, c, "resume up to Bob's message", isText(t, "thanks"))
	sendTo(t, w.srv, w.ada, w.secret.Slug, "not for bots")
	sendTo(t, w.srv, w.ada, w.ops.Slug, "the NAS is down")
	for _, f := range framesUntil(t, c, "Ada's message live", isText(t, "the NAS is down")) {
		if m, ok := f.message(t); ok && m.Room != w.ops.ID {
			t.Fatalf("the bot's socket got a message of room %d: %s", m.Room, f.Data)
		}
	}
	sendFrame(t, c, "send", map[string]any{"room": w.ops.ID, "message": "on it", "cid": "c1"})
	var sent db.Message
	framesUntil(t, c, "the bot's own send", func(f sockFrame) bool {
		m, ok := f.message(t)
		if ok && m.Message == "on it" {
			sent = m
		}
		return ok && m.Message == "on it"
	})
	if !sent.Bot || sent.User != "Heron" {
		t.Fatalf("the bot's socket message: %+v, want marked as Heron's, a bot's", sent)
	}
	// Sent into a room it was not granted: refused, nothing stored.
	sendFrame(t, c, "send", map[string]any{"room": w.secret.ID, "message": "sneaky", "cid": "c2"})
	framesUntil(t, c, "the refusal", func(f sockFrame) bool { return f.Type == "error" && strings.Contains(string(f.Data), "no_room") })
	sendFrame(t, c, "react", map[string]any{"id": bobs, "emoji": "👀", "cid": "c3"})
	framesUntil(t, c, "its reaction on the socket", func(f sockFrame) bool { return strings.Contains(string(f.Data), "👀") })

	// Its own message deleted.
	if code, _, body := w.asBot(t, "DELETE", msg, "", nil); code != http.StatusNoContent {
		t.Fatalf("bot deletes its message: %d %s", code, body)
	}
}

// Nothing a bot can call reaches a room it was not granted, private or
// open: each route answers 404 as for a room one cannot see. The routes a
// bot may not use at all answer 403, and bots cannot be given rooms by
// people or sign in with a password.
func TestBotGrantsOnEveryRoute(t *testing.T) {
	w := newBotWorld(t, chat.Options{})
	for _, room := range []roomAnswer{w.secret, w.lounge} {
		id := sendTo(t, w.srv, w.ada, room.Slug, "inside "+room.Slug)
		base := "/rooms/" + room.Slug
		one := base + "/messages/" + strconv.FormatInt(id, 10)
		for _, tt := range []struct{ method, path, body string }{
			{"GET", base, ""},
			{"GET", base + "/messages", ""},
			{"GET", base + "/messages?around=" + strconv.FormatInt(id, 10), ""},
			{"GET", base + "/messages/latest/5", ""},
			{"GET", one, ""},
			{"POST", base + "/messages", `{"message": "hi"}`},
			{"PATCH", one, `{"message": "hi"}`},
			{"DELETE", one, ""},
			{"POST", one + "/reactions", `{"emoji": "👍"}`},
		} {
			code, _, body := w.asBot(t, tt.method, tt.path, tt.body, map[string]string{"Idempotency-Key": "k-" + tt.method})
			if code != http.StatusNotFound || strings.Contains(body, "inside") {
				t.Errorf("%s %s as the bot: %d %s, want 404", tt.method, tt.path, code, body)
			}
		}
		// And the message in the granted room's path: still not found.
		opsPath := "/rooms/" + w.ops.Slug + "/messages/" + strconv.FormatInt(id, 10)
		if code, _, body := w.asBot(t, "GET", opsPath, "", nil); code != http.StatusNotFound || strings.Contains(body, "inside") {
			t.Errorf("GET %s (a %s message under ops): %d %s, want 404", opsPath, room.Slug, code, body)
		}
		if code, _, body := w.asBot(t, "POST", opsPath+"/reactions", `{"emoji": "👍"}`, nil); code != http.StatusNotFound {
			t.Errorf("react to a %s message under ops: %d %s, want 404", room.Slug, code, body)
		}
		if code, _, body := w.asBot(t, "GET", "/rooms/"+w.ops.Slug+"/messages?around="+strconv.FormatInt(id, 10), "", nil); code != http.StatusNotFound || strings.Contains(body, "inside") {
			t.Errorf("around a %s message under ops: %d %s, want 404", room.Slug, code, body)
		}
	}

	for _, tt := range []struct{ method, path, body string }{
		{"GET", "/", ""}, // the page; its socket is allowed
		{"POST", "/rooms", `{"name": "Mine", "kind": "open"}`},
		{"POST", "/rooms/" + w.lounge.Slug + "/join", `{}`},
		{"POST", "/rooms/" + w.ops.Slug + "/leave", `{}`},
		{"POST", "/rooms/" + w.ops.Slug + "/members", `{"user": "Bob"}`},
		{"PATCH", "/rooms/" + w.ops.Slug, `{"topic": "x"}`},
		{"GET", "/discussion/latest/5", ""},
		{"GET", "/discussion", ""},
		{"POST", "/discussion", `{"message": "hi"}`},
		{"GET", "/search?q=inside", ""},
		{"GET", "/account", ""},
		{"GET", "/admin", ""},
		{"GET", "/admin/live", ""},
		{"POST", "/admin/people/1/deactivate", ""},
		{"GET", "/setup", ""},
		{"POST", "/signout", ""},
	} {
		code, _, body := w.asBot(t, tt.method, tt.path, tt.body, nil)
		if code != http.StatusForbidden || !strings.Contains(body, `"error"`) {
			t.Errorf("%s %s as the bot: %d %s, want 403", tt.method, tt.path, code, body)
		}
	}

	// People cannot invite a bot anywhere, or start a room with it but a
	// direct one (a direct message is how one talks to a bot: its
	// outgoing webhook hears of it, TestOutgoingWebhookDirectMessage).
	if code, body := call(t, w.srv, "POST", "/rooms/"+w.secret.Slug+"/members", w.ada, `{"user": "Heron"}`, nil); code != http.StatusForbidden {
		t.Errorf("Ada invites the bot: %d %s, want 403", code, body)
	}
	if code, body := call(t, w.srv, "POST", "/rooms", w.bob, `{"name": "Den", "kind": "private", "members": ["Heron"]}`, nil); code != http.StatusForbidden {
		t.Errorf("Bob starts a private room with the bot: %d %s, want 403", code, body)
	}
	// No password opens a bot.
	for _, pw := range []string{"", "x", w.token} {
		resp := post(t, w.srv, "/signin", "192.0.2.9", url.Values{"name": {"Heron"}, "password": {pw}}, nil)
		if s := newSession(resp); s != "" {
			t.Fatalf("signing in as the bot with %q opened a session", pw)
		}
	}
}

// A wrong, malformed, revoked or replaced token, or one beside a cookie,
// is 401 with a one-line JSON reason and WWW-Authenticate: Bearer, on the
// API and on the socket.
func TestBotTokensRefused(t *testing.T) {
	w := newBotWorld(t, chat.Options{})
	wrong, _, _ := NewBotToken()
	for _, tt := range []struct {
		name   string
		header map[string]string
	}{
		{"wrong", map[string]string{"Authorization": "Bearer " + wrong}},
		{"malformed", map[string]string{"Authorization": "Bearer nochat_bot_abc"}},
		{"no prefix", map[string]string{"Authorization": "Bearer " + strings.TrimPrefix(w.token, BotTokenPrefix)}},
		{"basic", map[string]string{"Authorization": "Basic " + w.token}},
		{"empty", map[string]string{"Authorization": "Bearer "}},
		{"and a cookie", map[string]string{"Cookie": personCookie + "=" + w.bob}},
	} {
		code, header, body := w.asBot(t, "GET", "/rooms", "", tt.header)
		if code != http.StatusUnauthorized || !strings.HasPrefix(header.Get("WWW-Authenticate"), "Bearer") ||
			strings.Count(strings.TrimSpace(body), "\n") != 0 || !strings.HasPrefix(body, `{"error":`) {
			t.Errorf("%s: %d %q %s, want 401 with WWW-Authenticate: Bearer and one JSON line", tt.name, code, header.Get("WWW-Authenticate"), body)
		}
	}

	// Rotated: the old token stops at once, the new one works.
	newToken, hash, prefix := NewBotToken()
	if err := w.store.SetBotToken(context.Background(), w.bot.ID, hash, prefix); err != nil {
		t.Fatal(err)
	}
	if code, _, body := w.asBot(t, "GET", "/rooms", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("the replaced token: %d %s, want 401", code, body)
	}
	w.token = newToken
	if code, _, body := w.asBot(t, "GET", "/rooms", "", nil); code != 200 {
		t.Fatalf("the new token: %d %s, want 200", code, body)
	}
	// Revoked: nothing, also no socket.
	if err := w.store.SetBotToken(context.Background(), w.bot.ID, nil, ""); err != nil {
		t.Fatal(err)
	}
	if code, _, body := w.asBot(t, "POST", "/rooms/"+w.ops.Slug+"/messages", `{"message": "x"}`, nil); code != http.StatusUnauthorized {
		t.Fatalf("the revoked token: %d %s, want 401", code, body)
	}
	_, resp, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial("ws"+strings.TrimPrefix(w.srv.URL, "http")+"/", http.Header{"Authorization": {"Bearer " + w.token}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("socket with a revoked token: %v %v, want 401", err, resp)
	}
}

// A login a proxy asks for in front of NoChat (Basic) comes with every
// request of the browser's, and is not NoChat's to judge: every route
// answered it 401 "that is not a bot token", so a chat behind such a
// proxy did not open at all. A bot's token sent under another scheme is
// still refused, saying how to send it.
func TestAProxysBasicLoginIsLeftAlone(t *testing.T) {
	w := newBotWorld(t, chat.Options{})
	basic := map[string]string{"Authorization": "Basic ZmFtOnNlY3JldA=="} // fam:secret
	for _, c := range []struct{ path, session string }{
		{"/signin", ""}, {"/healthz", ""}, {"/", w.bob}, {"/rooms", w.bob}, {"/account", w.bob},
	} {
		if code, _, body := get(t, w.srv, c.path, c.session, basic); code != http.StatusOK {
			t.Errorf("GET %s behind a proxy's login: %d %.200s, want 200", c.path, code, body)
		}
	}
	resp := post(t, w.srv, "/signin", "192.0.2.1", url.Values{"name": {"Bob"}, "password": {"password of Bob"}}, basic)
	if newSession(resp) == "" {
		t.Errorf("signing in behind a proxy's login: %d and no session", resp.StatusCode)
	}
	for _, auth := range []string{"Token " + w.token, w.token} {
		code, header, body := w.asBot(t, "POST", "/rooms/lobby/messages", `{"message":"as whom?"}`, map[string]string{"Authorization": auth})
		if code != http.StatusUnauthorized || !strings.HasPrefix(header.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(body, "Bearer") {
			t.Errorf("a bot's token sent as %.6q…: %d %s, want 401 saying Bearer (not a guest's post)", auth, code, body)
		}
	}
}

// Revoking a token, in the database by another connection as `nochat bot
// revoke` does, closes the bot's open socket through WatchBotTokens, with
// the account-ended close code.
func TestBotRevocationClosesItsSocket(t *testing.T) {
	w := newBotWorld(t, chat.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		WatchBotTokens(ctx, w.store, w.hub, nil, 50*time.Millisecond)
	}()
	t.Cleanup(func() { cancel(); <-done })
	c := w.botSocket(t, "")
	frame(t, c, "hello")
	other, err := db.Open(context.Background(), w.store.Path(), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.SetBotToken(context.Background(), w.bot.ID, nil, ""); err != nil {
		t.Fatal(err)
	}
	closedWith(t, c, chat.CloseAccountEnded, "revoked", "the bot's socket after its token was revoked")
}

// A bot's sends are limited per bot (-bot-rate), over REST and its
// sockets together, not per address.
func TestBotRateLimit(t *testing.T) {
	w := newBotWorld(t, chat.Options{BotRate: 0.001, BotBurst: 2})
	for i := range 2 {
		if code, _, body := w.asBot(t, "POST", "/rooms/"+w.ops.Slug+"/messages", `{"message": "ping"}`, nil); code != 201 {
			t.Fatalf("send %d: %d %s", i, code, body)
		}
	}
	if code, _, body := w.asBot(t, "POST", "/rooms/"+w.ops.Slug+"/messages", `{"message": "ping"}`, nil); code != http.StatusTooManyRequests {
		t.Fatalf("third send in the burst of 2: %d %s, want 429", code, body)
	}
	c := w.botSocket(t, "")
	sendFrame(t, c, "send", map[string]any{"room": w.ops.ID, "message": "ping", "cid": "c1"})
	framesUntil(t, c, "the socket's send refused", func(f sockFrame) bool {
		return f.Type == "error" && strings.Contains(string(f.Data), "rate_limited")
	})
	// Bob, from the same address, is not held back by the bot's limit.
	sendTo(t, w.srv, w.bob, w.ops.Slug, "people still talk")
}

var botTokenRe = regexp.MustCompile(`nochat_bot_[A-Za-z0-9_-]{43}`)

// The dashboard's Bots panel: only admins may use it (a member gets 403, a
// guest 401); an admin makes a bot and sees its token once, changes its
// rooms (its socket and REST follow), revokes it (its socket closes at
// once) and gives it a new token, each with an audit line.
func TestBotsPanel(t *testing.T) {
	w := newBotWorld(t, chat.Options{})
	ops := strconv.FormatInt(w.ops.ID, 10)
	heron := "/admin/bots/" + strconv.FormatInt(w.bot.ID, 10)
	for _, path := range []string{"/admin/bots", heron + "/rotate", heron + "/revoke", heron + "/rooms"} {
		form := url.Values{"name": {"Kite"}, "room": {ops}}
		if code, _, body := as(t, w.srv, "POST", path, w.bob, form); code != http.StatusForbidden {
			t.Errorf("a member's POST %s: %d %s, want 403", path, code, body)
		}
		if code, _, body := as(t, w.srv, "POST", path, "", form); code != http.StatusUnauthorized {
			t.Errorf("a guest's POST %s: %d %s, want 401", path, code, body)
		}
		// The bot itself: 403 (not a bot's route).
		if code, _, body := w.asBot(t, "POST", path, "", nil); code != http.StatusForbidden {
			t.Errorf("the bot's POST %s: %d %s, want 403", path, code, body)
		}
	}
	if code, _, body := w.asBot(t, "GET", "/rooms", "", nil); code != 200 || !strings.Contains(body, w.ops.Slug) {
		t.Fatalf("after the refused calls the token still works: %d %s", code, body)
	}

	// Made by Ada: the token is on the page once.
	code, _, page := as(t, w.srv, "POST", "/admin/bots", w.ada, url.Values{"name": {"Kite"}, "room": {ops}})
	token := botTokenRe.FindString(page)
	if code != 200 || token == "" || !strings.Contains(page, `data-bot="Kite"`) {
		t.Fatalf("Ada makes Kite: %d, token %q", code, token)
	}
	if _, _, again := as(t, w.srv, "GET", "/admin", w.ada, nil); strings.Contains(again, token) || !strings.Contains(again, token[:len(BotTokenPrefix)+6]) {
		t.Fatalf("the dashboard shows the whole token again, or not its prefix")
	}
	w.token = token
	if code, _, body := w.asBot(t, "GET", "/rooms", "", nil); code != 200 || !strings.Contains(body, `"slug":"`+w.ops.Slug+`"`) {
		t.Fatalf("Kite's rooms: %d %s", code, body)
	}
	for _, bad := range []url.Values{
		{"name": {"Kite"}},                                 // taken
		{"name": {"Heron"}},                                // taken, by a bot
		{"name": {"bob"}},                                  // taken, by a person
		{"name": {""}},                                     // none
		{"name": {"Owl"}, "room": {"999"}},                 // no such room
		{"name": {"Owl"}, "room": {"x"}},                   // not an id
		{"name": {strings.Repeat("o", 40)}, "room": {ops}}, // too long
	} {
		if code, _, body := as(t, w.srv, "POST", "/admin/bots", w.ada, bad); code != http.StatusBadRequest && code != http.StatusConflict || !strings.Contains(body, `"error"`) {
			t.Errorf("making a bot with %v: %d %s, want 400 or 409", bad, code, body)
		}
	}
	kiteID := ""
	for _, b := range mustBots(t, w.store) {
		if b.Name == "Kite" {
			kiteID = strconv.FormatInt(b.ID, 10)
		}
	}
	kite := "/admin/bots/" + kiteID

	// Its rooms changed: lounge instead of ops, on its socket too.
	c := w.botSocket(t, "")
	frame(t, c, "hello")
	if code, _, body := as(t, w.srv, "POST", kite+"/rooms", w.ada, url.Values{"room": {strconv.FormatInt(w.lounge.ID, 10)}}); code != http.StatusSeeOther {
		t.Fatalf("Ada changes Kite's rooms: %d %s", code, body)
	}
	if code, _, body := w.asBot(t, "GET", "/rooms/"+w.ops.Slug+"/messages", "", nil); code != http.StatusNotFound {
		t.Fatalf("Kite reads ops after losing it: %d %s, want 404", code, body)
	}
	sendTo(t, w.srv, w.ada, w.ops.Slug, "ops after Kite left")
	sendTo(t, w.srv, w.ada, w.lounge.Slug, "lounge news")
	for _, f := range framesUntil(t, c, "lounge's message on Kite's socket", isText(t, "lounge news")) {
		if m, ok := f.message(t); ok && m.Room == w.ops.ID {
			t.Fatalf("Kite's socket still gets ops: %s", f.Data)
		}
	}

	// Revoked: the socket closes at once, the token is dead.
	if code, _, body := as(t, w.srv, "POST", kite+"/revoke", w.ada, nil); code != http.StatusSeeOther {
		t.Fatalf("Ada revokes Kite: %d %s", code, body)
	}
	closedWith(t, c, chat.CloseAccountEnded, "revoked", "Kite's socket after the dashboard revoked it")
	if code, _, body := w.asBot(t, "GET", "/rooms", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("Kite's revoked token: %d %s, want 401", code, body)
	}
	// A new token: shown once, works.
	code, _, page = as(t, w.srv, "POST", kite+"/rotate", w.ada, nil)
	if w.token = botTokenRe.FindString(page); code != 200 || w.token == "" || w.token == token {
		t.Fatalf("Ada gives Kite a new token: %d %q", code, w.token)
	}
	if code, _, body := w.asBot(t, "GET", "/rooms", "", nil); code != 200 || !strings.Contains(body, w.lounge.Slug) {
		t.Fatalf("Kite's new token: %d %s", code, body)
	}
	// Not a bot: 404.
	if code, _, body := as(t, w.srv, "POST", "/admin/bots/1/revoke", w.ada, nil); code != http.StatusNotFound {
		t.Fatalf("revoking a person as a bot: %d %s, want 404", code, body)
	}

	lines, err := w.store.AuditLog(context.Background(), 20)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		if l.Target == "Kite" {
			got = append(got, l.Actor+" "+l.Action)
		}
	}
	if want := "Ada bot rotate|Ada bot revoke|Ada bot rooms|Ada bot create"; strings.Join(got, "|") != want {
		t.Fatalf("audit lines for Kite: %q, want %q", got, want)
	}
}

func mustBots(t *testing.T, store *db.Store) []db.Bot {
	t.Helper()
	bots, err := store.Bots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return bots
}

// A bot's avatar: one emoji an admin gives it, shown on its messages (those
// sent before too) and on the Bots panel. Only an admin may set it; a
// name's initials, or anything but one emoji, is refused with a reason.
func TestBotAvatar(t *testing.T) {
	w := newBotWorld(t, chat.Options{})
	heron := "/admin/bots/" + strconv.FormatInt(w.bot.ID, 10) + "/avatar"
	form := url.Values{"avatar": {"🐦"}}
	if code, _, body := as(t, w.srv, "POST", heron, w.bob, form); code != http.StatusForbidden {
		t.Errorf("a member sets the avatar: %d %s, want 403", code, body)
	}
	if code, _, body := as(t, w.srv, "POST", heron, "", form); code != http.StatusUnauthorized {
		t.Errorf("a guest sets the avatar: %d %s, want 401", code, body)
	}
	if code, _, body := w.asBot(t, "POST", heron, "", nil); code != http.StatusForbidden {
		t.Errorf("the bot sets its own avatar: %d %s, want 403", code, body)
	}
	code, _, body := w.asBot(t, "POST", "/rooms/"+w.ops.Slug+"/messages", `{"message": "before the avatar"}`, nil)
	if code != http.StatusCreated || strings.Contains(body, `"avatar"`) {
		t.Fatalf("the bot posts with no avatar: %d %s", code, body)
	}

	for _, bad := range []string{"HB", "🐦🐦", "<b>", strings.Repeat("🐦", 20)} {
		code, _, body := as(t, w.srv, "POST", heron, w.ada, url.Values{"avatar": {bad}})
		if code != http.StatusBadRequest || !strings.Contains(body, "one emoji") {
			t.Errorf("avatar %q: %d %s, want 400 saying one emoji", bad, code, body)
		}
	}
	if code, _, body := as(t, w.srv, "POST", heron, w.ada, form); code != http.StatusSeeOther {
		t.Fatalf("Ada gives Heron an avatar: %d %s", code, body)
	}
	if _, _, page := as(t, w.srv, "GET", "/admin", w.ada, nil); !strings.Contains(page, `data-initials="🐦"`) {
		t.Error("the Bots panel does not show Heron's avatar")
	}
	// Sent now, and in history (the earlier message too).
	c := w.botSocket(t, "")
	frame(t, c, "hello")
	if code, _, body := w.asBot(t, "POST", "/rooms/"+w.ops.Slug+"/messages", `{"message": "with the avatar"}`, nil); code != http.StatusCreated || !strings.Contains(body, `"avatar":"🐦"`) {
		t.Fatalf("the bot posts with its avatar: %d %s", code, body)
	}
	f := framesUntil(t, c, "the bot's message on a socket", isText(t, "with the avatar"))
	if last := f[len(f)-1]; !strings.Contains(string(last.Data), `"avatar":"🐦"`) {
		t.Errorf("the message frame has no avatar: %s", last.Data)
	}
	if _, _, body := as(t, w.srv, "GET", "/rooms/"+w.ops.Slug+"/messages", w.bob, nil); strings.Count(body, `"avatar":"🐦"`) != 2 {
		t.Errorf("history: %s, want both of Heron's messages with its avatar", body)
	}

	// Its initials again.
	if code, _, body := as(t, w.srv, "POST", heron, w.ada, url.Values{"avatar": {""}}); code != http.StatusSeeOther {
		t.Fatalf("Ada takes the avatar away: %d %s", code, body)
	}
	if _, _, body := as(t, w.srv, "GET", "/rooms/"+w.ops.Slug+"/messages", w.bob, nil); strings.Contains(body, `"avatar"`) {
		t.Errorf("history after the avatar went: %s", body)
	}
	// A person is not a bot; a new bot may come with one, or a bad one not at all.
	if code, _, body := as(t, w.srv, "POST", "/admin/bots/1/avatar", w.ada, form); code != http.StatusNotFound {
		t.Errorf("a person's avatar through the bots panel: %d %s, want 404", code, body)
	}
	if code, _, body := as(t, w.srv, "POST", "/admin/bots", w.ada, url.Values{"name": {"Owl"}, "avatar": {"OW"}}); code != http.StatusBadRequest {
		t.Errorf("a new bot with a bad avatar: %d %s, want 400", code, body)
	}
	if code, _, page := as(t, w.srv, "POST", "/admin/bots", w.ada, url.Values{"name": {"Owl"}, "avatar": {"🦉"}}); code != 200 || !strings.Contains(page, `data-initials="🦉"`) {
		t.Errorf("a new bot with an avatar: %d", code)
	}
	if bots := mustBots(t, w.store); len(bots) != 2 || bots[1].Name != "Owl" || bots[1].Avatar != "🦉" {
		t.Errorf("bots: %+v, want Heron and Owl 🦉 (and no Owl made with a bad avatar)", bots)
	}
}

// A bot has no password and never signs in: the dashboard offers no reset
// link for it and the route refuses one; a link, a password or a session
// a bot got before these refusals (an admin could once make it a reset
// link) opens nothing.
func TestABotHasNoPassword(t *testing.T) {
	w := newBotWorld(t, chat.Options{})
	resetLink := fmt.Sprintf("/admin/people/%d/reset-link", w.bot.ID)
	if code, _, page := as(t, w.srv, "GET", "/admin", w.ada, nil); code != http.StatusOK || !strings.Contains(page, "Heron") || strings.Contains(page, resetLink) {
		t.Fatalf("the dashboard: %d, Heron listed %t, a reset link offered for it %t", code, strings.Contains(page, "Heron"), strings.Contains(page, resetLink))
	}
	if code, _, body := as(t, w.srv, "POST", resetLink, w.ada, nil); code != http.StatusBadRequest || !strings.Contains(body, "a bot has no password") {
		t.Fatalf("a reset link for the bot: %d %.200s, want 400 saying a bot has no password", code, body)
	}

	// What the route once gave, made directly.
	r := httptest.NewRequest("POST", "/", nil)
	token, _, err := w.auth.newSession(r, resetSessions, w.bot.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := as(t, w.srv, "GET", "/reset/"+token, "", nil); code != http.StatusGone {
		t.Fatalf("the bot's old reset link: %d, want 410", code)
	}
	if code, _, _ := as(t, w.srv, "POST", "/reset/"+token, "", url.Values{"password": {"botpassword123"}}); code != http.StatusGone {
		t.Fatalf("a password through the bot's old reset link: %d, want 410", code)
	}
	hash, err := hashPassword("botpassword123")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.ChangePassword(context.Background(), w.bot.ID, hash, 0); err != nil {
		t.Fatal(err)
	}
	resp := post(t, w.srv, "/signin", "192.0.2.9", url.Values{"name": {"Heron"}, "password": {"botpassword123"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || newSession(resp) != "" {
		t.Fatalf("signing in as the bot with the password it was given: %d, session %t; want 401 and none", resp.StatusCode, newSession(resp) != "")
	}
	session, _, err := w.auth.newSession(r, personSessions, w.bot.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := as(t, w.srv, "GET", "/account", session, nil); code != http.StatusSeeOther {
		t.Fatalf("the account page with a session of the bot's: %d, want 303 to sign in", code)
	}
	if code, _, body := as(t, w.srv, "GET", "/rooms", session, nil); strings.Contains(body, "ops") {
		t.Fatalf("the rooms with a session of the bot's: %d %s, want its private room not among them", code, body)
	}
	// The bot's token still works: it is how a bot speaks.
	if code, _, body := w.asBot(t, "GET", "/rooms", "", nil); code != http.StatusOK || !strings.Contains(body, "ops") {
		t.Fatalf("the bot's token after all this: %d %s", code, body)
	}
}
