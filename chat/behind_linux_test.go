package chat_test

import (
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

func pingWhileBehind(t *testing.T, r *room) {
	sender := r.dial(t, "nochat.v1", "")
	d := websocket.Dialer{
		Subprotocols:     []string{"echo-protocol"},
		HandshakeTimeout: readWait,
		TLSClientConfig:  r.tls,
		NetDialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			var err error
			c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			return err
		}}).DialContext,
	}
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
