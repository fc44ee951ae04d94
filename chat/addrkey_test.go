package chat_test

import (
	"net/http"
	"testing"

	"github.com/gorilla/websocket"

	"nochat/chat"
)

func TestAddressKey(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"::ffff:203.0.113.7", "203.0.113.7"}, // IPv4 over an IPv6 socket
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"not an address", "not an address"},
	}
	for _, tt := range tests {
		if got := chat.AddressKey(tt.ip); got != tt.want {
			t.Errorf("AddressKey(%q) = %q, want %q", tt.ip, got, tt.want)
		}
	}
}

// The per-address WebSocket cap counts an IPv6 client's whole /64 as one
// address: any address in it is the same person's.
func TestConnectionLimitPerIPv6Network(t *testing.T) {
	r := newRoom(t, chat.Options{MaxConnsPerIP: 1, TrustProxy: true})
	dial := func(from string) (*websocket.Conn, *http.Response, error) {
		return (&websocket.Dialer{Subprotocols: []string{"echo-protocol"}}).Dial(r.url, http.Header{"X-Forwarded-For": {from}})
	}
	first, _, err := dial("2001:db8:1:2::1")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, resp, err := dial("2001:db8:1:2::2"); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second address in the same /64: %v %v, want 429", err, resp)
	}
	other, _, err := dial("2001:db8:1:3::1")
	if err != nil {
		t.Fatalf("an address in another /64: %v", err)
	}
	other.Close()
}
