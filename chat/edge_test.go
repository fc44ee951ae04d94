package chat

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"
)

// handshakeOK must agree with the upgrader: a request it passes is taken out
// of the HTTP server, and one the upgrader then refused would have to be
// answered by hand. gorilla, given a ResponseWriter that cannot be hijacked,
// shows which requests pass its checks: those get as far as the hijack (500).
func TestHandshakeOKAgreesWithTheUpgrader(t *testing.T) {
	base := map[string]string{
		"Connection":            "Upgrade",
		"Upgrade":               "websocket",
		"Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Key":     "dGhlIHNhbXBsZSBub25jZQ==",
	}
	tests := []struct {
		name   string
		method string
		set    map[string]string
	}{
		{"valid", "GET", nil},
		{"connection list", "GET", map[string]string{"Connection": "keep-alive, Upgrade"}},
		{"upgrade in lower case", "GET", map[string]string{"Upgrade": "WebSocket"}},
		{"version list", "GET", map[string]string{"Sec-WebSocket-Version": "8, 13"}},
		{"POST", "POST", nil},
		{"no connection upgrade", "GET", map[string]string{"Connection": "keep-alive"}},
		{"no upgrade header", "GET", map[string]string{"Upgrade": ""}},
		{"version 12", "GET", map[string]string{"Sec-WebSocket-Version": "12"}},
		{"version 130", "GET", map[string]string{"Sec-WebSocket-Version": "130"}},
		{"no version", "GET", map[string]string{"Sec-WebSocket-Version": ""}},
		{"no key", "GET", map[string]string{"Sec-WebSocket-Key": ""}},
		{"short key", "GET", map[string]string{"Sec-WebSocket-Key": "c2hvcnQ="}},
		{"key not base64", "GET", map[string]string{"Sec-WebSocket-Key": "not base64 at all!!!!!!="}},
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/", nil)
			for k, v := range base {
				r.Header.Set(k, v)
			}
			for k, v := range tt.set {
				if v == "" {
					r.Header.Del(k)
				} else {
					r.Header.Set(k, v)
				}
			}
			rec := httptest.NewRecorder()
			up.Upgrade(rec, r, nil)
			upgraderPasses := rec.Code == http.StatusInternalServerError
			if got := handshakeOK(r); got != upgraderPasses {
				t.Fatalf("handshakeOK = %v, but the upgrader answered %d", got, rec.Code)
			}
		})
	}
}

// An upgrade refused after ServeWS took the connection from the HTTP server
// (melody closed by a shutdown under way, the one refusal handshakeOK leaves)
// still gets a proper HTTP answer with its reason, then EOF.
func TestRefusedAfterTakeoverAnswersOverTheConnection(t *testing.T) {
	server, client := net.Pipe()
	hj := &hijacked{conn: server, header: http.Header{"X-Frame-Options": {"DENY"}}}
	go func() {
		new(Hub).upgradeFailed(hj, melody.ErrClosed, "192.0.2.1")
		hj.refused()
	}()
	resp, err := http.ReadResponse(bufio.NewReader(client), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || string(body) != "the server is shutting down\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || !resp.Close {
		t.Fatalf("headers %v, close %v: want the handler's headers and Connection: close", resp.Header, resp.Close)
	}
	if _, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the answer: %v, want the connection closed", err)
	}
}

// Once the upgrader has the connection, the writer answers nothing more and
// keeps nothing of the HTTP server's.
func TestHijackedHandsOverOnce(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	brw := bufio.NewReadWriter(bufio.NewReader(server), bufio.NewWriter(server))
	hj := &hijacked{conn: server, brw: brw, header: http.Header{}}
	if _, _, err := hj.Hijack(); err != nil {
		t.Fatalf("first Hijack: %v", err)
	}
	if _, _, err := hj.Hijack(); err != http.ErrHijacked {
		t.Fatalf("second Hijack: %v, want ErrHijacked", err)
	}
	if _, err := hj.Write([]byte("x")); err != http.ErrHijacked {
		t.Fatalf("Write after Hijack: %v, want ErrHijacked", err)
	}
}
