package chat_test

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/gorilla/websocket"

	"nochat/chat"
)

func TestSessionIDsAre128BitsAndDisconnectTakesTheWholeID(t *testing.T) {
	r := newRoom(t, chat.Options{})
	c := r.dial(t, "nochat.v1", "")
	// A second client shows its own id in its hello.
	other := r.dial(t, "nochat.v1", "")
	id := other.hello.Session
	if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
		t.Fatalf("session id %q: want 128 bits as 32 hex digits", id)
	}
	waitOnline(t, r.hub, 2)
	seen := map[string]bool{}
	for _, conn := range r.hub.Snapshot(0).Connections {
		if seen[conn.ID] {
			t.Fatalf("two sessions share the id %s", conn.ID)
		}
		seen[conn.ID] = true
	}
	if !seen[id] {
		t.Fatalf("the dashboard's connections %v lack the session %s", seen, id)
	}

	// The short form shown on the dashboard names no session: only the
	// whole id disconnects, and only its own session.
	if _, err := r.hub.Disconnect(id[:8], "by prefix"); !errors.Is(err, chat.ErrNoSession) {
		t.Fatalf("Disconnect(%q) = %v, want ErrNoSession", id[:8], err)
	}
	if _, err := r.hub.Disconnect(id, "by an admin"); err != nil {
		t.Fatal(err)
	}
	other.expectClose(websocket.ClosePolicyViolation)
	waitOnline(t, r.hub, 1)
	r.hub.Send(t.Context(), "ann", "still here")
	if m := c.expect("message"); m.Message != "still here" {
		t.Fatalf("the other client got %q", m.Message)
	}
}
