package chat_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"nochat/chat"
)

// Every way a name reaches NoChat today refuses invisible characters with
// bad_name and says which, rather than storing a name that looks like
// someone else's.
func TestInvisibleNamesAreRefusedOnEveryPath(t *testing.T) {
	r := newRoom(t, chat.Options{})
	w := r.watch(t)
	t.Run("user query with a zero width space", func(t *testing.T) {
		d := websocket.Dialer{Subprotocols: []string{"nochat.v1"}, HandshakeTimeout: readWait}
		conn, resp, err := d.Dial(r.url+"?user=A%E2%80%8Bnn", nil)
		if err == nil {
			conn.Close()
			t.Fatal("upgrade with A\\u200Bnn accepted, want 400")
		}
		if resp == nil || resp.StatusCode != 400 {
			t.Fatalf("upgrade: %v %v, want 400", err, resp)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		if !strings.Contains(string(body), "U+200B") {
			t.Fatalf("reason %q does not name U+200B", body)
		}
	})
	t.Run("nick with a right-to-left override", func(t *testing.T) {
		w.mark(t)
		c := r.dial(t, "nochat.v1", "?user=ann")
		c.send(map[string]any{"type": "nick", "data": map[string]any{"user": "\u202Enna"}})
		e := c.expect("error")
		if e.Code != "bad_name" || !strings.Contains(e.Message, "U+202E") {
			t.Fatalf("error %+v, want bad_name naming U+202E", e)
		}
		// The refused nick left the name as it was.
		if got := sendAcked(t, c, "still ann"); got.User != "ann" {
			t.Fatalf("user %q after a refused nick, want ann", got.User)
		}
		w.stored(t, "ann", "still ann")
	})
	t.Run("REST send with a bidi isolate", func(t *testing.T) {
		w.mark(t)
		_, err := r.hub.Send(context.Background(), "ann\u2066", "hi")
		if !isRefusal(err, "bad_name") || !strings.Contains(err.Error(), "U+2066") {
			t.Fatalf("Send: %v, want a bad_name refusal naming U+2066", err)
		}
		w.unharmed(t)
	})
	t.Run("an emoji with its presentation selector is still a name", func(t *testing.T) {
		c := r.dial(t, "nochat.v1", "?user="+queryEscape("ann ❤\ufe0f"))
		if got := sendAcked(t, c, "love"); got.User != "ann ❤\ufe0f" {
			t.Fatalf("user %q, want %q", got.User, "ann ❤\ufe0f")
		}
	})
}
