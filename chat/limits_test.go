package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
)

func TestMessageRateLimitPerConnection(t *testing.T) {
	r := newRoom(t, chat.Options{MsgRate: 1, MsgBurst: 3})
	c := r.dial(t, "nochat.v1", "")
	for i := range 5 {
		c.say("m", string(rune('a'+i)))
	}
	var acks, limited int
	for acks+limited < 5 {
		f, raw := c.next()
		switch f.Type {
		case "ack":
			acks++
		case "error":
			if !strings.Contains(raw, `"rate_limited"`) {
				t.Fatalf("got %s", raw)
			}
			limited++
		}
	}
	if acks != 3 || limited != 2 {
		t.Fatalf("%d acks and %d rate_limited for 5 quick sends with a burst of 3", acks, limited)
	}
	if msgs, _ := r.store.Latest(context.Background(), 10); len(msgs) != 3 {
		t.Fatalf("%d stored, want the 3 allowed", len(msgs))
	}
	if errs := r.hub.Snapshot(10).Errors; len(errs) == 0 || errs[0].Kind != chat.KindRateLimited {
		t.Fatalf("error log %+v, want a rate-limited entry", errs)
	}
}

// An address's guests share its limit, three sockets' worth: a hundred
// sockets send no faster than three (one address filled 2 MB of disk a
// second with 100 sockets sending at each one's limit), and one guest
// sending flat out leaves room for the others behind the address.
func TestGuestsOfOneAddressShareTheMessageLimit(t *testing.T) {
	r := newRoom(t, chat.Options{MsgRate: 0.01, MsgBurst: 3}) // no token comes back during the test
	var socks []*wsClient
	for range 4 {
		socks = append(socks, r.dial(t, "nochat.v1", ""))
	}
	for i, c := range socks {
		for j := range 3 { // within each socket's own burst
			c.say(fmt.Sprintf("socket %d line %d", i, j), fmt.Sprintf("c%d-%d", i, j))
		}
	}
	var acks, limited int
	for _, c := range socks {
		for n := 0; n < 3; {
			f, raw := c.next()
			switch f.Type {
			case "ack":
				acks++
				n++
			case "error":
				if !strings.Contains(raw, `"rate_limited"`) {
					t.Fatalf("got %s", raw)
				}
				limited++
				n++
			}
		}
	}
	if acks != 9 || limited != 3 {
		t.Fatalf("%d acks and %d rate_limited for 12 sends over 4 guest sockets of one address, burst 3 each, 9 the address", acks, limited)
	}
	if msgs, _ := r.store.Latest(context.Background(), 20); len(msgs) != 9 {
		t.Fatalf("%d stored, want the address's 9", len(msgs))
	}
}

// A guest's name changes are limited too: each is looked up among the
// members' names, and one socket sending them as fast as it could kept
// more than a core busy. A burst (a page sending what it queued offline,
// a nick before each line under another name) still goes through.
func TestNameChangesAreLimited(t *testing.T) {
	r := newRoom(t, chat.Options{MsgRate: -1})
	c := r.dial(t, "nochat.v1", "")
	const sent = 40
	for i := range sent {
		c.send(map[string]any{"type": "nick", "data": map[string]any{"user": fmt.Sprint("guest ", i)}})
	}
	c.say("after the names", "c1") // acked once every nick before it is handled
	limited := 0
	for {
		f, raw := c.next()
		if f.Type == "ack" {
			break
		}
		if f.Type == "error" {
			if !strings.Contains(raw, `"rate_limited"`) {
				t.Fatalf("got %s", raw)
			}
			limited++
		}
	}
	// A burst of 10, and 2 a second after it.
	if limited < sent-15 || limited > sent-10 {
		t.Fatalf("%d of %d quick name changes refused as too fast, want all but the burst of 10", limited, sent)
	}
}

func TestConnectionLimits(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		r := newRoom(t, chat.Options{MaxConnsPerIP: 2})
		r.dial(t, "echo-protocol", "")
		r.dial(t, "echo-protocol", "")
		_, resp, err := (&websocket.Dialer{Subprotocols: []string{"echo-protocol"}}).Dial(r.url, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("third connection from one address: %v %v, want 429", err, resp)
		}
	})
	t.Run("in total", func(t *testing.T) {
		r := newRoom(t, chat.Options{MaxConns: 1})
		first := r.dial(t, "echo-protocol", "")
		_, resp, err := (&websocket.Dialer{Subprotocols: []string{"echo-protocol"}}).Dial(r.url, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("connection over the total: %v %v, want 503", err, resp)
		}
		// A slot frees when a client leaves.
		first.conn.Close()
		deadline := time.Now().Add(readWait)
		for {
			conn, _, err := (&websocket.Dialer{Subprotocols: []string{"echo-protocol"}}).Dial(r.url, nil)
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no slot after the first client left: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func TestOrigins(t *testing.T) {
	r := newRoom(t, chat.Options{AllowOrigins: []string{"https://friends.example"}})
	host := strings.TrimPrefix(r.srv.URL, "http://")
	tests := []struct {
		origin string
		ok     bool
	}{
		{"", true},                        // curl, bots, the tutorial's Node clients
		{"http://" + host, true},          // the page NoChat serves
		{"https://friends.example", true}, // allowed with -allow-origin
		{"https://evil.example", false},
		{"null", false},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.origin != "" {
			h.Set("Origin", tt.origin)
		}
		conn, resp, err := (&websocket.Dialer{Subprotocols: []string{"echo-protocol"}}).Dial(r.url, h)
		if tt.ok {
			if err != nil {
				t.Errorf("origin %q refused: %v", tt.origin, err)
				continue
			}
			conn.Close()
		} else if err == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: %v %v, want 403", tt.origin, err, resp)
		}
	}
	found := false
	for _, e := range r.hub.Snapshot(10).Errors {
		found = found || e.Kind == chat.KindBadOrigin
	}
	if !found {
		t.Fatal("refused origins left no entry in the error log")
	}
}

func TestClientIPTrustsOnlyTheProxysOwnEntry(t *testing.T) {
	r, _ := http.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.2:5555"
	r.Header.Add("X-Forwarded-For", "198.51.100.66, 203.0.113.7") // the client sent 198.51.100.66; the proxy added 203.0.113.7
	if got := chat.ClientIP(r, true); got != "203.0.113.7" {
		t.Fatalf("behind a proxy: %q, want the address the proxy saw", got)
	}
	if got := chat.ClientIP(r, false); got != "127.0.0.2" {
		t.Fatalf("without -trust-proxy: %q, want the peer", got)
	}
}

// A guest's socket named "dave" stops posting under that name once a
// member takes it (a new account, or one renamed so): it was checked only
// when chosen, and the guest's lines read as the member's. It may go on
// under another name.
func TestAGuestLosesANameAMemberTakes(t *testing.T) {
	ctx := context.Background()
	r := newRoom(t, chat.Options{MsgRate: -1})
	dave := r.dial(t, "nochat.v1", "?user=dave")
	erin := r.dial(t, "nochat.v1", "?user=erin")
	if got := sendAcked(t, dave, "before"); got.User != "dave" {
		t.Fatalf("user %q, want dave", got.User)
	}
	refused := func(c *wsClient, text string) {
		t.Helper()
		c.say(text, "c-"+text)
		for {
			f, raw := c.next()
			if f.Type == "ack" || f.Type == "error" && !strings.Contains(raw, `"bad_name"`) {
				t.Fatalf("%q under a member's name: %s, want a bad_name error", text, raw)
			}
			if f.Type == "error" {
				return
			}
		}
	}

	if _, err := r.store.CreateAccount(ctx, db.Account{Name: "Dave", NameKey: "dave", PasswordHash: "x", Role: db.RoleMember, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	refused(dave, "after")
	if got := sendAcked(t, erin, "erin goes on"); got.User != "erin" {
		t.Fatalf("user %q, want erin", got.User)
	}

	// Renamed, an account takes its new name from a guest too.
	bo, err := r.store.CreateAccount(ctx, db.Account{Name: "Bo", NameKey: "bo", PasswordHash: "x", Role: db.RoleMember, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.store.RenameAccount(ctx, bo.ID, "Erin", "erin"); err != nil {
		t.Fatal(err)
	}
	refused(erin, "renamed")

	dave.send(map[string]any{"type": "nick", "data": map[string]any{"user": "not dave"}})
	if got := sendAcked(t, dave, "renamed myself"); got.User != "not dave" {
		t.Fatalf("user %q, want not dave", got.User)
	}
	if msgs, _ := r.store.Latest(ctx, 10); len(msgs) != 3 {
		t.Fatalf("%d stored, want the 3 under names of no member", len(msgs))
	}
}

// A guest refused for a name a member took is still held to the message
// rate: the refusals are counted as sends, and each does not go back to
// the database (the name is looked up once per change of names).
func TestRefusedNamesAreRateLimitedToo(t *testing.T) {
	r := newRoom(t, chat.Options{MsgRate: 1, MsgBurst: 3})
	dave := r.dial(t, "nochat.v1", "?user=dave")
	if _, err := r.store.CreateAccount(context.Background(), db.Account{Name: "Dave", NameKey: "dave", PasswordHash: "x", Role: db.RoleMember, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	const sent = 10
	for i := range sent {
		dave.say("hi", fmt.Sprint("c", i))
	}
	codes := map[string]int{}
	for n := 0; n < sent; {
		f, raw := dave.next()
		if f.Type != "error" {
			continue
		}
		var e struct {
			Data struct{ Code string } `json:"data"`
		}
		json.Unmarshal([]byte(raw), &e)
		codes[e.Data.Code]++
		n++
	}
	if codes["bad_name"] != 3 || codes["rate_limited"] != sent-3 {
		t.Fatalf("refusals %v, want the burst of 3 refused for the name and the rest as too fast", codes)
	}
}

// A frame carries <, > and & as they are: read by JSON.parse, never as
// HTML, it need not escape them, and escaped (\u003c, six bytes for one)
// a message of quote marks took 110 KB a frame for 2 KB typed.
func TestFramesCarryMarkupCharactersAsTheyAre(t *testing.T) {
	r := newRoom(t, chat.Options{})
	c := r.dial(t, "nochat.v1", "")
	text := strings.Repeat(">", 1990) + " <b>&"
	c.say(text, "q1")
	for {
		f, raw := c.next()
		if f.Type != "message" {
			continue
		}
		if !strings.Contains(raw, `"message":"`+text+`"`) || strings.Contains(raw, `\u003c`) || len(raw) > 6*len(text) {
			t.Fatalf("the frame (%d bytes for %d typed) escapes the text: %.200s", len(raw), len(text), raw)
		}
		return
	}
}
