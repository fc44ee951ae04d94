package chat_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
)

// Under a burst the server sends a connection's waiting frames in one
// write; the frames stay what they were: the tutorial's echo-protocol
// client gets exactly one text frame a message, in order, the text only,
// and a nochat.v1 client every message in order once.
func TestABurstStaysOneFrameAMessage(t *testing.T) {
	r := newRoom(t, chat.Options{MsgRate: -1})
	sender := r.dial(t, "nochat.v1", "")
	reader := r.dial(t, "nochat.v1", "")
	echo := r.dial(t, "echo-protocol", "")
	waitOnline(t, r.hub, 3)
	const n = 500
	go func() {
		for i := range n { // unpaced: the writer's batches fill every queue
			sender.conn.WriteJSON(map[string]any{"type": "send", "data": map[string]any{"message": fmt.Sprintf("burst %03d", i), "cid": fmt.Sprint("b", i)}})
		}
	}()
	for i := range n {
		echo.conn.SetReadDeadline(time.Now().Add(readWait))
		typ, b, err := echo.conn.ReadMessage()
		if err != nil {
			t.Fatalf("echo client, frame %d: %v", i, err)
		}
		if want := fmt.Sprintf("burst %03d", i); typ != websocket.TextMessage || string(b) != want {
			t.Fatalf("echo client, frame %d: type %d %q, want one text frame %q", i, typ, b, want)
		}
	}
	for i := 0; i < n; {
		f, _ := reader.next()
		if f.Type != "message" {
			continue // presence, typing
		}
		var m msgData
		if err := json.Unmarshal(f.Data, &m); err != nil || m.Message != fmt.Sprintf("burst %03d", i) {
			t.Fatalf("v1 client, message %d: %s, want %q", i, f.Data, fmt.Sprintf("burst %03d", i))
		}
		i++
	}
}

// A nochat.v1 client that asks for them (?batch=1) gets the messages that
// wait for it several to a "messages" frame: every one once, in order. One
// that does not ask gets one frame a message, as before.
func TestABurstComesInMessagesFramesToAClientThatAsks(t *testing.T) {
	r := newRoom(t, chat.Options{MsgRate: -1})
	sender := r.dial(t, "nochat.v1", "")
	batched := r.dial(t, "nochat.v1", "?batch=1")
	plain := r.dial(t, "nochat.v1", "")
	waitOnline(t, r.hub, 3)
	const n = 2000
	go func() {
		for i := range n {
			sender.conn.WriteJSON(map[string]any{"type": "send", "data": map[string]any{"message": fmt.Sprintf("burst %04d", i), "cid": fmt.Sprint("b", i)}})
		}
	}()
	read := func(c *wsClient) (frames int) {
		for i := 0; i < n; {
			f, _ := c.next()
			var ms []msgData
			switch f.Type {
			case "message":
				var m msgData
				if err := json.Unmarshal(f.Data, &m); err != nil {
					t.Fatal(err)
				}
				ms = []msgData{m}
			case "messages":
				if err := json.Unmarshal(f.Data, &ms); err != nil || len(ms) < 2 {
					t.Fatalf("messages frame %s: %v, want an array of two or more", f.Data, err)
				}
				frames++
			default:
				continue
			}
			for _, m := range ms {
				if want := fmt.Sprintf("burst %04d", i); m.Message != want || m.ID == 0 {
					t.Fatalf("%s client, message %d: %+v, want %q", c.proto, i, m, want)
				}
				i++
			}
		}
		return frames
	}
	if got := read(batched); got == 0 {
		t.Error("the client that asked got no messages frame: the burst left no backlog to batch")
	}
	if got := read(plain); got != 0 {
		t.Errorf("the client that did not ask got %d messages frames", got)
	}
	for _, q := range []string{"?batch=yes", "?batch=1&batch=1"} {
		_, resp, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial(r.url+q, nil)
		if err == nil || resp == nil || resp.StatusCode != 400 {
			t.Errorf("%s: %v, want 400", q, err)
		}
	}
}
