package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
)

// A client far behind — a small receive buffer, not reading for seconds
// while thousands of long messages go out, pinging meanwhile as browsers
// and libraries do — gets every message once it reads again, in order,
// over a socket and over TLS, where a write that timed out would break the
// connection for good. (The sender reads what it is sent and keeps a
// window: one that does not is dropped once it owes 1,024 acks, and the
// burst ends there.)
func TestAClientThatPingsWhileBehindGetsEverything(t *testing.T) {
	t.Run("socket", func(t *testing.T) {
		pingWhileBehind(t, newRoom(t, chat.Options{MsgRate: -1}))
	})
	t.Run("TLS", func(t *testing.T) {
		pingWhileBehind(t, newTLSRoom(t, chat.Options{MsgRate: -1}))
	})
}

// smallBufferDialer dials r in proto with a receive buffer of 4 KiB, set
// before connecting: a client that stops reading is behind at once, not
// after the kernel's megabytes.
func smallBufferDialer(r *room, proto string) *websocket.Dialer {
	return &websocket.Dialer{
		Subprotocols:     []string{proto},
		HandshakeTimeout: readWait,
		TLSClientConfig:  r.tls,
		NetDialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			var err error
			c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			return err
		}}).DialContext,
	}
}

func pingWhileBehind(t *testing.T, r *room) {
	sender := r.dial(t, "nochat.v1", "")
	d := smallBufferDialer(r, "echo-protocol")
	conn, _, err := d.Dial(r.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	waitOnline(t, r.hub, 2)

	const n = 5000
	acked := make(chan struct{}, n)
	go countAcks(sender, acked)
	go sendBurst(sender, n, " "+strings.Repeat("x", 1900), acked)
	time.Sleep(2 * time.Second)
	if err := conn.WriteControl(websocket.PingMessage, []byte("still here"), time.Now().Add(time.Second)); err != nil {
		t.Fatalf("ping: %v", err)
	}
	time.Sleep(3 * time.Second)
	for i := range n {
		conn.SetReadDeadline(time.Now().Add(readWait))
		_, b, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if want := fmt.Sprintf("burst %04d ", i); !strings.HasPrefix(string(b), want) {
			t.Fatalf("frame %d: %.20q, want %q…", i, b, want)
		}
	}
}

// A client far behind on long messages, resuming on a "messages" socket
// (512 frames of budget) and reading nothing, holds no more than about a
// round of catchUpBytes (256 KiB) waiting for it (347 KB here; 3 MB before
// the bound, of frames of 11 KB); read again, it gets every message once,
// in order.
func TestACatchUpOfLongMessagesIsBoundedInBytes(t *testing.T) {
	r := newRoom(t, chat.Options{MsgRate: -1, ReplayLimit: 2000})
	const n = 1500
	sender := r.dial(t, "nochat.v1", "")
	acked := make(chan struct{}, n)
	go countAcks(sender, acked)
	sendBurst(sender, n, " "+strings.Repeat("&", 1900), acked) // 9.5 KB of HTML each: "&amp;"
	for range min(n, burstWindow) {
		<-acked
	}
	stored, err := r.store.Latest(context.Background(), n)
	if err != nil || len(stored) != n {
		t.Fatalf("%d stored (%v)", len(stored), err)
	}
	d := smallBufferDialer(r, "nochat.v1")
	conn, _, err := d.Dial(fmt.Sprintf("%s?after=%d&batch=1", r.url, stored[0].ID-1), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	most := 0
	for range 150 { // 3 s, reading nothing: the kernel's buffers fill, then the queue
		most = max(most, chat.WaitingBytes(r.hub))
		time.Sleep(20 * time.Millisecond)
	}
	if most == 0 || most > 1<<20 {
		t.Fatalf("at most %d bytes waited for the client, want some and at most 1 MiB", most)
	}
	next := 0
	for next < n {
		conn.SetReadDeadline(time.Now().Add(readWait))
		_, b, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("after message %d: %v", next, err)
		}
		var f struct {
			Type string
			Data json.RawMessage
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		var msgs []struct{ Message string }
		switch f.Type {
		case "message":
			msgs = make([]struct{ Message string }, 1)
			err = json.Unmarshal(f.Data, &msgs[0])
		case "messages":
			err = json.Unmarshal(f.Data, &msgs)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if want := fmt.Sprintf("burst %04d ", next); !strings.HasPrefix(m.Message, want) {
				t.Fatalf("message %.10q…, want %q…", m.Message, want)
			}
			next++
		}
	}
	t.Logf("at most %d bytes waited", most)
}
