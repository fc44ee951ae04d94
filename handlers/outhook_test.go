package handlers

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"nochat/chat"
	"nochat/db"
	"nochat/outhook"
)

// Bots' outgoing webhooks (issue 16, item 4), received by a real HTTP
// server on loopback, which the tests name "receiver.test" (a resolver of
// the test's) and allow as -webhook-allow would.

// testResolver resolves names from its map, and no others.
type testResolver map[string]string

func (r testResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ip, ok := r[host]; ok {
		return []netip.Addr{netip.MustParseAddr(ip)}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// call is one request the receiver had.
type hookCall struct {
	payload outhook.Payload
	problem string // what was wrong with its signature or body; "" if nothing
}

// receiver is a webhook receiver that checks each request as the README
// tells receivers to, and answers as answer says (n counts from 1).
type receiver struct {
	srv   *httptest.Server
	calls chan hookCall
	n     atomic.Int64
}

func newReceiver(t *testing.T, secret *string, answer func(n int64, w http.ResponseWriter, p outhook.Payload)) *receiver {
	t.Helper()
	rc := &receiver{calls: make(chan hookCall, 100)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := rc.n.Add(1)
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var c hookCall
		ts, err := strconv.ParseInt(r.Header.Get(outhook.HeaderTimestamp), 10, 64)
		switch {
		case err != nil:
			c.problem = "no timestamp"
		case time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute:
			c.problem = "stale timestamp"
		case !hmac.Equal([]byte(r.Header.Get(outhook.HeaderSignature)), []byte(outhook.Sign(*secret, ts, body))):
			c.problem = "bad signature"
		case r.Method != "POST" || r.Header.Get("Content-Type") != "application/json":
			c.problem = "not a JSON POST"
		}
		if err := json.Unmarshal(body, &c.payload); err != nil && c.problem == "" {
			c.problem = "body: " + err.Error()
		}
		rc.calls <- c
		if answer != nil {
			answer(n, w, c.payload)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// port is the receiver's port.
func (rc *receiver) port() string {
	_, port, _ := net.SplitHostPort(rc.srv.Listener.Addr().String())
	return port
}

// next is the receiver's next call, checked.
func (rc *receiver) next(t *testing.T) outhook.Payload {
	t.Helper()
	select {
	case c := <-rc.calls:
		if c.problem != "" {
			t.Fatalf("the receiver's check: %s", c.problem)
		}
		return c.payload
	case <-time.After(15 * time.Second):
		t.Fatal("the receiver was not called")
	}
	return outhook.Payload{}
}

// hookWorld is a botWorld whose bot, Heron, has a webhook to url (a
// receiver's), sent by a Sender with opts, resolving receiver.test to
// 127.0.0.1.
type hookWorld struct {
	botWorld
	sender *outhook.Sender
	secret string
}

func newHookWorld(t *testing.T, opts outhook.Options, url func(secret string) string) hookWorld {
	t.Helper()
	var s *outhook.Sender
	w := hookWorld{botWorld: newBotWorld(t, chat.Options{Posted: func(m db.Message) { s.Posted(m) }})}
	if opts.Backoff == 0 {
		opts.Backoff = 20 * time.Millisecond // the tries' waits, not what is tested
	}
	opts.Resolver = testResolver{"receiver.test": "127.0.0.1"}
	s = outhook.New(w.store, opts)
	w.sender = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, w.hub, w.srv.URL) }()
	t.Cleanup(func() { cancel(); <-done })
	w.secret = outhook.NewSecret()
	if err := w.store.SetBotWebhook(context.Background(), w.bot.ID, url(w.secret), w.secret, time.Now()); err != nil {
		t.Fatal(err)
	}
	return w
}

// hookErrors are the recent errors of the bot's webhook, once there are
// (up to 15 s).
func (w hookWorld) hookErrors(t *testing.T) []db.ErrorEntry {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for range 1500 {
		var out []db.ErrorEntry
		for _, e := range w.hub.Snapshot(100).Errors {
			if e.Kind == outhook.KindFailed && strings.Contains(e.Place, "Heron") {
				out = append(out, e)
			}
		}
		if len(out) > 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// history is room's latest messages as Ada reads them.
func (w hookWorld) history(t *testing.T, slug string) []db.Message {
	t.Helper()
	code, body := call(t, w.srv, "GET", "/rooms/"+slug+"/messages/latest/50", w.ada, "", nil)
	if code != 200 {
		t.Fatalf("history: %d %s", code, body)
	}
	var msgs []db.Message
	if err := json.Unmarshal([]byte(body), &msgs); err != nil {
		t.Fatal(err)
	}
	return msgs
}

func TestOutgoingWebhookMentionGetsAReply(t *testing.T) {
	var secret string
	rc := newReceiver(t, &secret, func(_ int64, w http.ResponseWriter, p outhook.Payload) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "pong to %s\n", p.Message.User.Name)
	})
	// One worker: calls come in the order of the messages, so a call
	// that should not have been made would come before the next one.
	w := newHookWorld(t, outhook.Options{Allow: []string{"receiver.test:" + rc.port()}, Workers: 1}, func(s string) string {
		secret = s
		return "http://receiver.test:" + rc.port() + "/hook?k=v"
	})
	ada := openSocket(t, w.srv, w.ada)

	id := sendTo(t, w.srv, w.bob, w.ops.Slug, "@Heron is the NAS up?")
	p := rc.next(t)
	if p.Trigger != "mention" || p.Message.ID != id || p.Message.Text != "@Heron is the NAS up?" || p.Message.User.Name != "Bob" || p.Message.User.Bot ||
		p.Message.Room.Slug != w.ops.Slug || p.Message.Room.ID != w.ops.ID || p.Bot.Name != "Heron" || p.Bot.ID != w.bot.ID ||
		p.ReplyURL != w.srv.URL+"/rooms/"+w.ops.Slug+"/messages" || !strings.Contains(p.Message.HTML, `class="mention"`) {
		t.Fatalf("payload: %+v", p)
	}
	// Ada sees Bob's message, then the bot's answer to it, marked a bot's.
	frames := framesUntil(t, ada, "the bot's reply", isText(t, "pong to Bob"))
	reply, _ := frames[len(frames)-1].message(t)
	if !reply.Bot || reply.User != "Heron" || reply.ReplyTo == nil || reply.ReplyTo.ID != id {
		t.Fatalf("the reply: %+v", reply)
	}

	// Not called: for the bot's own message (its reply above, and one it
	// posts mentioning itself), for an edit and a reaction of the
	// mention, for a message in ops that does not mention it.
	if code, _, body := w.asBot(t, "POST", "/rooms/"+w.ops.Slug+"/messages", `{"message": "@Heron talking to myself"}`, nil); code != 201 && code != 200 {
		t.Fatalf("the bot posts: %d %s", code, body)
	}
	msg := "/rooms/" + w.ops.Slug + "/messages/" + strconv.FormatInt(id, 10)
	if code, body := call(t, w.srv, "PATCH", msg, w.bob, `{"message": "@Heron is the NAS up now?"}`, nil); code != 200 {
		t.Fatalf("edit: %d %s", code, body)
	}
	if code, body := call(t, w.srv, "POST", msg+"/reactions", w.bob, `{"emoji": "👍"}`, nil); code != 200 {
		t.Fatalf("react: %d %s", code, body)
	}
	sendTo(t, w.srv, w.bob, w.ops.Slug, "no one to ping")
	next := sendTo(t, w.srv, w.ada, w.ops.Slug, "@Heron and now?")
	if p := rc.next(t); p.Message.ID != next {
		t.Fatalf("the call after the first is for message %d (%q), want %d", p.Message.ID, p.Message.Text, next)
	}
	framesUntil(t, ada, "the second reply", isText(t, "pong to Ada"))
	if n := rc.n.Load(); n != 2 {
		t.Fatalf("the receiver had %d calls, want 2", n)
	}
}

func TestOutgoingWebhookDirectMessage(t *testing.T) {
	var secret string
	rc := newReceiver(t, &secret, func(_ int64, w http.ResponseWriter, p outhook.Payload) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"text": "you said %s"}`, p.Message.Text)
	})
	w := newHookWorld(t, outhook.Options{Allow: []string{"receiver.test:" + rc.port()}}, func(s string) string {
		secret = s
		return "http://receiver.test:" + rc.port() + "/"
	})
	dm := createRoom(t, w.srv, w.bob, `{"kind": "direct", "members": ["Heron"]}`, http.StatusCreated)
	bob := openSocket(t, w.srv, w.bob)
	id := sendTo(t, w.srv, w.bob, dm.Slug, "hello")
	p := rc.next(t)
	if p.Trigger != "direct" || p.Message.ID != id || p.Message.Room.Kind != db.KindDirect {
		t.Fatalf("payload: %+v", p)
	}
	frames := framesUntil(t, bob, "the bot's reply", isText(t, "you said hello"))
	if m, _ := frames[len(frames)-1].message(t); !m.Bot || m.Room != dm.ID {
		t.Fatalf("the reply: %+v", m)
	}
	// An admin's change of the bot's rooms keeps its conversations.
	if _, _, err := w.hub.GrantRooms(context.Background(), w.bot, nil); err != nil {
		t.Fatal(err)
	}
	sendTo(t, w.srv, w.bob, dm.Slug, "still there?")
	if p := rc.next(t); p.Message.Text != "still there?" {
		t.Fatalf("payload: %+v", p)
	}
}

func TestOutgoingWebhookRetries(t *testing.T) {
	t.Run("503 twice then 200: one reply", func(t *testing.T) {
		var secret string
		rc := newReceiver(t, &secret, func(n int64, w http.ResponseWriter, _ outhook.Payload) {
			if n <= 2 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "done at last")
		})
		w := newHookWorld(t, outhook.Options{Allow: []string{"receiver.test:" + rc.port()}}, func(s string) string {
			secret = s
			return "http://receiver.test:" + rc.port() + "/"
		})
		ada := openSocket(t, w.srv, w.ada)
		id := sendTo(t, w.srv, w.bob, w.ops.Slug, "@Heron backup status")
		for range 3 {
			if p := rc.next(t); p.Message.ID != id {
				t.Fatalf("a try for message %d", p.Message.ID)
			}
		}
		framesUntil(t, ada, "the reply", isText(t, "done at last"))
		replies := 0
		for _, m := range w.history(t, w.ops.Slug) {
			if m.Bot {
				replies++
			}
		}
		if replies != 1 {
			t.Fatalf("%d replies, want 1", replies)
		}
	})
	t.Run("always 500: 4 tries, then a recent error", func(t *testing.T) {
		var secret string
		rc := newReceiver(t, &secret, func(_ int64, w http.ResponseWriter, _ outhook.Payload) {
			http.Error(w, "down", http.StatusInternalServerError)
		})
		w := newHookWorld(t, outhook.Options{Allow: []string{"receiver.test:" + rc.port()}}, func(s string) string {
			secret = s
			return "http://receiver.test:" + rc.port() + "/path/with/receiver-token"
		})
		sendTo(t, w.srv, w.bob, w.ops.Slug, "@Heron anyone?")
		errs := w.hookErrors(t)
		if len(errs) != 1 || !strings.Contains(errs[0].Detail, "after 4 tries") || !strings.Contains(errs[0].Detail, "500") ||
			strings.Contains(errs[0].Detail, "receiver-token") || strings.Contains(errs[0].Detail, w.secret) {
			t.Fatalf("recent errors: %+v", errs)
		}
		if n := rc.n.Load(); n != 4 {
			t.Fatalf("%d tries, want 4", n)
		}
		if _, _, failed := w.sender.Stats(); failed != 1 {
			t.Fatalf("failed = %d, want 1", failed)
		}
	})
	t.Run("404: no second try", func(t *testing.T) {
		var secret string
		rc := newReceiver(t, &secret, func(_ int64, w http.ResponseWriter, _ outhook.Payload) {
			http.NotFound(w, nil)
		})
		w := newHookWorld(t, outhook.Options{Allow: []string{"receiver.test:" + rc.port()}}, func(s string) string {
			secret = s
			return "http://receiver.test:" + rc.port() + "/"
		})
		sendTo(t, w.srv, w.bob, w.ops.Slug, "@Heron where are you?")
		if errs := w.hookErrors(t); len(errs) != 1 || !strings.Contains(errs[0].Detail, "after 1 tries: answered 404") {
			t.Fatalf("recent errors: %+v", errs)
		}
		if n := rc.n.Load(); n != 1 {
			t.Fatalf("%d tries, want 1", n)
		}
	})
}

func TestOutgoingWebhookSSRF(t *testing.T) {
	var secret string
	rc := newReceiver(t, &secret, nil)
	ctx := context.Background()
	loopback := "http://127.0.0.1:" + rc.port() + "/"
	named := "http://receiver.test:" + rc.port() + "/"
	resolver := testResolver{"receiver.test": "127.0.0.1", "meta.test": "169.254.169.254", "lan.test": "192.168.1.20", "v6.test": "::1"}

	t.Run("refused when the URL is set", func(t *testing.T) {
		g := outhook.NewGuard(nil, resolver)
		for _, u := range []string{
			loopback,
			named, // a name that resolves to loopback
			"http://169.254.169.254/latest/meta-data/",
			"http://meta.test/",
			"http://lan.test/",
			"http://10.0.0.1/", "http://[::1]:80/", "http://[fe80::1]/", "http://v6.test/", "http://0.0.0.0/", "http://100.64.0.1/",
			"http://[::ffff:127.0.0.1]/",
		} {
			if err := g.CheckURL(ctx, u); err == nil || !strings.Contains(err.Error(), "-webhook-allow") {
				t.Errorf("%s: %v, want refused", u, err)
			}
		}
		// localhost, as this machine resolves it.
		if err := outhook.NewGuard(nil, nil).CheckURL(ctx, "http://localhost:"+rc.port()+"/"); err == nil || !strings.Contains(err.Error(), "-webhook-allow") {
			t.Errorf("localhost: %v, want refused", err)
		}
		for _, u := range []string{"ftp://receiver.test/", "http://user:pw@receiver.test/", "/relative", "http://" + strings.Repeat("a", 3000)} {
			if err := g.CheckURL(ctx, u); err == nil {
				t.Errorf("%s: accepted", u)
			}
		}
		// Allowed by name and port, the named receiver passes; another port
		// of it, or loopback by address, does not.
		g = outhook.NewGuard([]string{"receiver.test:" + rc.port()}, resolver)
		if err := g.CheckURL(ctx, named); err != nil {
			t.Fatalf("%s allowed: %v", named, err)
		}
		for _, u := range []string{"http://receiver.test:1/", loopback} {
			if err := g.CheckURL(ctx, u); err == nil {
				t.Errorf("%s: accepted with only receiver.test:%s allowed", u, rc.port())
			}
		}
	})

	t.Run("refused when called", func(t *testing.T) {
		for _, u := range []string{loopback, named, "http://169.254.169.254/latest/meta-data/"} {
			t.Run(u, func(t *testing.T) {
				w := newHookWorld(t, outhook.Options{}, func(s string) string { return u })
				sendTo(t, w.srv, w.bob, w.ops.Slug, "@Heron ping")
				if errs := w.hookErrors(t); len(errs) != 1 || !strings.Contains(errs[0].Detail, "after 1 tries") || !strings.Contains(errs[0].Detail, "-webhook-allow") {
					t.Fatalf("recent errors: %+v", errs)
				}
			})
		}
		if n := rc.n.Load(); n != 0 {
			t.Fatalf("the receiver had %d calls, want none", n)
		}
	})

	t.Run("a redirect is not followed", func(t *testing.T) {
		var secret2 string
		target := newReceiver(t, &secret2, nil)
		var secret string
		first := newReceiver(t, &secret, func(_ int64, w http.ResponseWriter, _ outhook.Payload) {
			w.Header().Set("Location", "http://127.0.0.1:"+target.port()+"/")
			w.WriteHeader(http.StatusTemporaryRedirect)
		})
		// Both allowed: the redirect is refused all the same.
		w := newHookWorld(t, outhook.Options{Allow: []string{"receiver.test:" + first.port(), "127.0.0.1:" + target.port()}}, func(s string) string {
			secret = s
			return "http://receiver.test:" + first.port() + "/"
		})
		sendTo(t, w.srv, w.bob, w.ops.Slug, "@Heron follow me")
		first.next(t)
		if errs := w.hookErrors(t); len(errs) != 1 || !strings.Contains(errs[0].Detail, "redirect") {
			t.Fatalf("recent errors: %+v", errs)
		}
		if n := target.n.Load(); n != 0 {
			t.Fatalf("the redirect's target had %d calls", n)
		}
	})
}

// A receiver that does not answer holds up no one: others' messages are
// delivered while it holds the request, which ends at the timeout.
func TestOutgoingWebhookSlowReceiver(t *testing.T) {
	release := make(chan struct{})
	var secret string
	rc := newReceiver(t, &secret, func(_ int64, w http.ResponseWriter, _ outhook.Payload) {
		<-release
	})
	defer close(release) // before the receiver closes (cleanups run after)
	w := newHookWorld(t, outhook.Options{Allow: []string{"receiver.test:" + rc.port()}, Timeout: 200 * time.Millisecond, Attempts: 1}, func(s string) string {
		secret = s
		return "http://receiver.test:" + rc.port() + "/"
	})
	ada := openSocket(t, w.srv, w.ada)
	sendTo(t, w.srv, w.bob, w.ops.Slug, "@Heron take your time")
	rc.next(t) // the receiver holds the request from now on
	sendTo(t, w.srv, w.bob, w.ops.Slug, "meanwhile")
	framesUntil(t, ada, "Bob's next message", isText(t, "meanwhile"))
	if errs := w.hookErrors(t); len(errs) != 1 || !strings.Contains(errs[0].Detail, "after 1 tries") {
		t.Fatalf("recent errors: %+v", errs)
	}
}

// The Bots panel sets a bot's webhook at creation or later, checked by
// the SSRF rules (a refused URL makes no bot), shows its secret once and
// the webhook's host in the list; only admins may.
func TestBotsPanelWebhook(t *testing.T) {
	var store *db.Store
	srv, _, _, _ := testServer{
		hub:      chat.Options{BotRate: -1},
		accounts: map[string]string{"Ada": db.RoleAdmin, "Bob": db.RoleMember},
		deps: func(d *Deps) {
			store = d.Store
			d.Webhooks = outhook.NewGuard([]string{"receiver.test:8123"}, testResolver{"receiver.test": "127.0.0.1", "meta.test": "169.254.169.254", "example.test": "203.0.113.7"})
		},
	}.start(t)
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	secretRe := regexp.MustCompile(outhook.SecretPrefix + `[A-Za-z0-9_-]{43}`)

	for _, u := range []string{"http://127.0.0.1:8123/", "http://meta.test/", "http://169.254.169.254/", "http://receiver.test:9999/", "gopher://example.test/"} {
		code, _, body := as(t, srv, "POST", "/admin/bots", ada, url.Values{"name": {"Kite"}, "webhook": {u}})
		if code != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
			t.Errorf("Kite with webhook %s: %d %s, want 400", u, code, body)
		}
	}
	if bots, _ := store.Bots(context.Background()); len(bots) != 0 {
		t.Fatalf("a refused webhook made a bot: %+v", bots)
	}

	code, _, page := as(t, srv, "POST", "/admin/bots", ada, url.Values{"name": {"Kite"}, "webhook": {"http://receiver.test:8123/kite?key=receivers-own"}})
	secret := secretRe.FindString(page)
	if code != 200 || secret == "" || botTokenRe.FindString(page) == "" {
		t.Fatalf("Ada makes Kite with a webhook: %d, secret %q", code, secret)
	}
	hooks, err := store.BotWebhooks(context.Background())
	if err != nil || len(hooks) != 1 || hooks[0].Secret != secret || hooks[0].URL != "http://receiver.test:8123/kite?key=receivers-own" {
		t.Fatalf("stored: %+v %v", hooks, err)
	}
	_, _, again := as(t, srv, "GET", "/admin", ada, nil)
	if strings.Contains(again, secret) || !strings.Contains(again, "http://receiver.test:8123") {
		t.Fatalf("the dashboard shows the secret again, or not the webhook")
	}
	kite := "/admin/bots/" + strconv.FormatInt(hooks[0].Bot.ID, 10) + "/webhook"

	// Only an admin changes it.
	if code, _, body := as(t, srv, "POST", kite, bob, url.Values{"url": {"http://example.test/"}}); code != http.StatusForbidden {
		t.Errorf("Bob sets Kite's webhook: %d %s, want 403", code, body)
	}
	if code, _, body := as(t, srv, "POST", kite, "", url.Values{"url": {"http://example.test/"}}); code != http.StatusUnauthorized {
		t.Errorf("a guest sets Kite's webhook: %d %s, want 401", code, body)
	}
	if code, _, body := as(t, srv, "POST", kite, ada, url.Values{"url": {"http://meta.test/"}}); code != http.StatusBadRequest {
		t.Errorf("Ada points Kite at the metadata address: %d %s, want 400", code, body)
	}
	code, _, page = as(t, srv, "POST", kite, ada, url.Values{"url": {"https://example.test/hook"}})
	if again := secretRe.FindString(page); code != 200 || again == "" || again == secret {
		t.Fatalf("a new webhook: %d, secret %q", code, again)
	}
	if code, _, _ := as(t, srv, "POST", kite, ada, url.Values{"url": {""}}); code != http.StatusSeeOther && code != 200 {
		t.Fatalf("no webhook: %d", code)
	}
	if hooks, _ := store.BotWebhooks(context.Background()); len(hooks) != 0 {
		t.Fatalf("the webhook is still there: %+v", hooks)
	}
	if code, _, body := as(t, srv, "POST", "/admin/bots/1/webhook", ada, url.Values{"url": {"https://example.test/"}}); code != http.StatusNotFound {
		t.Errorf("a person's webhook: %d %s, want 404", code, body)
	}
}
