package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"nochat/chat"
	"nochat/db"
)

// An address's guests share one message limit over their sockets and
// their REST sends: once the sockets have spent it, a REST send from the
// same address is refused too (before, REST had a bucket of its own, and
// one address sent over both). Another address, and a signed-in person
// at the same one, send on.
func TestGuestsShareTheirLimitOverSocketsAndREST(t *testing.T) {
	srv, _, _, _ := testServer{hub: chat.Options{MsgRate: 0.01, MsgBurst: 2}, accounts: map[string]string{"Ann": db.RoleMember}}.start(t)
	const addr = "203.0.113.5"
	for i := range 3 { // the address's share: 3 sockets' bursts of 2
		c := dialFrom(t, srv.URL, addr, fmt.Sprint("guest ", i))
		frame(t, c, "hello")
		for j := range 2 {
			if err := c.WriteJSON(map[string]any{"type": "send", "data": map[string]any{"message": fmt.Sprint("line ", i, j), "cid": fmt.Sprint("c", j)}}); err != nil {
				t.Fatal(err)
			}
			frame(t, c, "ack")
		}
	}
	resp, body := request(t, srv, "POST", "/discussion/one%20more", nil, map[string]string{"X-Forwarded-For": addr})
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "too fast") {
		t.Fatalf("a REST send from the address whose guests spent their share: %d %s, want 429", resp.StatusCode, body)
	}
	if code, body := postStatusAs(t, srv, "/discussion/from%20elsewhere", "198.51.100.5"); code != http.StatusOK {
		t.Fatalf("a REST send from another address: %d %s", code, body)
	}
	resp = post(t, srv, "/signin", addr, url.Values{"name": {"Ann"}, "password": {"password of Ann"}}, nil)
	ann := newSession(resp)
	resp, body = request(t, srv, "POST", "/discussion/Ann%20here", nil, map[string]string{"X-Forwarded-For": addr, "Cookie": personCookie + "=" + ann})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Ann's REST send from the same address: %d %s, want 200 (her limit is her own)", resp.StatusCode, body)
	}
}
