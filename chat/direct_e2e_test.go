package chat_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"nochat/chat"
)

// A client with nothing on its way gets a message written by the
// broadcaster itself, without a hand-over to melody's write goroutine; what
// it reads is the same frame, whatever its size or protocol, and frames
// written through melody (the hello, acks) keep their places around them.
func TestAnIdleClientGetsItsMessageWrittenDirectly(t *testing.T) {
	r := newRoom(t, chat.Options{MaxMessageLen: 60000, MaxFrameBytes: 1 << 20})
	ann := r.dial(t, "nochat.v1", "?user=ann")
	bob := r.dial(t, "nochat.v1", "?batch=1")
	echo := r.dial(t, "echo-protocol", "")

	for i, text := range []string{
		"short",
		strings.Repeat("medium ", 30) + "end",   // a two-byte length
		strings.Repeat("long ", 11_000) + "end", // more than gorilla's buffer; a 64-bit length on nochat.v1
	} {
		ann.say(text, "c"+string(rune('0'+i)))
		if ack := ann.expect("ack"); ack.CID != "c"+string(rune('0'+i)) {
			t.Fatalf("ack %+v", ack)
		}
		if m := ann.expect("message"); m.Message != text {
			t.Fatalf("ann got %.20q (%d bytes), want %d bytes", m.Message, len(m.Message), len(text))
		}
		if m := bob.expect("message"); m.Message != text {
			t.Fatalf("bob got %.20q (%d bytes), want %d bytes", m.Message, len(m.Message), len(text))
		}
		if got := echo.expectText(); got != text {
			t.Fatalf("the echo client got %.20q (%d bytes), want %d bytes", got, len(got), len(text))
		}
	}
	if n := chat.DirectWrites(r.hub); n < 3 {
		t.Fatalf("%d frames written directly of 9 messages to idle clients", n)
	}
}

// A large room's quiet messages are written by the broadcaster and, on a
// machine of several cores, a second lane, each to half of the clients:
// every client still gets every message once, in order, on both
// protocols.
func TestALargeRoomGetsEveryQuietMessageInOrder(t *testing.T) {
	r := newRoom(t, chat.Options{})
	var clients []*wsClient
	for i := range 80 {
		proto, query := "echo-protocol", ""
		if i%2 == 1 {
			proto, query = "nochat.v1", "?batch=1"
		}
		clients = append(clients, r.dial(t, proto, query))
	}
	const n = 30
	for i := range n {
		// One at a time: each send is a commit of its own, a quiet chat's.
		if _, err := r.hub.Send(context.Background(), "curl", fmt.Sprintf("quiet %02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for k, c := range clients {
		var got []string
		for len(got) < n {
			if c.proto == "echo-protocol" {
				got = append(got, c.expectText())
				continue
			}
			// A "messages" frame is as good: a send that found the
			// broadcaster busy (a slow machine, the race detector) left a
			// backlog, which a batching client gets in one frame.
			f, _ := c.next()
			for _, m := range messagesIn(t, f) {
				got = append(got, m.Message)
			}
		}
		for i, m := range got {
			if want := fmt.Sprintf("quiet %02d", i); m != want {
				t.Fatalf("client %d (%s), message %d: got %q, want %q", k, c.proto, i, m, want)
			}
		}
	}
	if d := chat.DirectWrites(r.hub); d < n {
		t.Fatalf("%d of %d deliveries written directly", d, n*len(clients))
	}
}
