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
