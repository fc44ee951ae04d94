package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"nochat/handlers"
)

// An address's REST send limit holds over both ways to send: switching
// between POST /discussion/{message} and POST /discussion does not double it.
func TestRESTSendLimitCoversBothRoutes(t *testing.T) {
	a := newAppWith(t, func(d *handlers.Deps) { d.SendRate, d.SendBurst = 0.001, 2 })
	if r := a.do(t, "POST", "/discussion/one", ""); r.status != http.StatusOK {
		t.Fatalf("first send: %d %s", r.status, r.body)
	}
	if r := a.do(t, "POST", "/discussion", `{"user":"ann","message":"two"}`); r.status != http.StatusCreated {
		t.Fatalf("second send: %d %s", r.status, r.body)
	}
	for _, path := range []string{"/discussion/three", "/discussion"} {
		r := a.do(t, "POST", path, `{"user":"ann","message":"three"}`)
		if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "too fast") {
			t.Fatalf("third send on %s: %d %s, want 429: the burst of 2 is spent", path, r.status, r.body)
		}
	}
	msgs, err := a.store.Latest(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("%d messages stored, want the 2 allowed", len(msgs))
	}
}
