//go:build linux

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

// A client that pings while it is behind (it stops reading, the server's
// writes to it fill the socket and wait) still gets every message once it
// reads again. The pong waits for the write under way only as long as
// gorilla would wait for its own lock, and is then dropped: written later,
// past its deadline, it would fail, and over TLS a write that timed out
// breaks the connection for good (the client then read "bad record MAC"
// two thousand frames in, when the backlog was written in line and the
// pong waited for it).
func TestAClientThatPingsWhileBehindGetsEverything(t *testing.T) {
	r := newTLSRoom(t, chat.Options{MsgRate: -1, SessionBuffer: 1024})
	sender := r.dial(t, "nochat.v1", "")
	small := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		// A small receive buffer: the server's writes wait sooner.
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	d := websocket.Dialer{Subprotocols: []string{"echo-protocol"}, HandshakeTimeout: readWait, TLSClientConfig: r.tls, NetDialContext: small.DialContext}
	echo, _, err := d.Dial(r.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	waitOnline(t, r.hub, 2)
	const n = 5000
	body := strings.Repeat("x", 1900)
	go func() {
		for i := range n {
			sender.conn.WriteJSON(map[string]any{"type": "send", "data": map[string]any{"message": fmt.Sprintf("%04d %s", i, body), "cid": fmt.Sprint("c", i)}})
		}
	}()
	go func() { // the sender's acks and messages, unread, would hold it up
		for {
			if _, _, err := sender.conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	time.Sleep(3 * time.Second) // the server's writes to the echo client fill its socket
	if err := echo.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the server reads the ping; its pong waits
	for i := range n {
		echo.SetReadDeadline(time.Now().Add(readWait))
		_, b, err := echo.ReadMessage()
		if err != nil {
			t.Fatalf("frame %d: %v (%d written in line)", i, err, chat.InlineWrites(r.hub))
		}
		if !strings.HasPrefix(string(b), fmt.Sprintf("%04d ", i)) {
			t.Fatalf("frame %d: %.10q", i, b)
		}
	}
	if chat.InlineWrites(r.hub) == 0 {
		t.Error("no frame was written in line: the test no longer covers a pong waiting for one")
	}
}
