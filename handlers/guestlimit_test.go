package handlers

import (
	"encoding/json"
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
	// The other way round: REST sends spend an address's share, and its
	// guests' sockets are refused.
	const other = "203.0.113.6"
	for i := range 6 {
		if code, body := postStatusAs(t, srv, fmt.Sprintf("/discussion/rest%%20%d", i), other); code != http.StatusOK {
			t.Fatalf("REST send %d from %s: %d %s", i, other, code, body)
		}
	}
	c := dialFrom(t, srv.URL, other, "guest")
	frame(t, c, "hello")
	if err := c.WriteJSON(map[string]any{"type": "send", "data": map[string]any{"message": "and one by socket", "cid": "s1"}}); err != nil {
		t.Fatal(err)
	}
	if f := frame(t, c, "error"); f["code"] != "rate_limited" {
		t.Fatalf("a socket send after REST spent the share: %v, want rate_limited", f)
	}
	resp = post(t, srv, "/signin", addr, url.Values{"name": {"Ann"}, "password": {"password of Ann"}}, nil)
	ann := newSession(resp)
	resp, body = request(t, srv, "POST", "/discussion/Ann%20here", nil, map[string]string{"X-Forwarded-For": addr, "Cookie": personCookie + "=" + ann})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Ann's REST send from the same address: %d %s, want 200 (her limit is her own)", resp.StatusCode, body)
	}
}

// One address's REST limit holds over every route that sends or changes
// messages: the tutorial's, a room's, an edit (before, each room route
// had a limit of its own, five in all).
func TestOneRESTLimitOverEveryRoute(t *testing.T) {
	srv, _, _, _ := testServer{accounts: map[string]string{"Ann": db.RoleMember}, deps: func(d *Deps) { d.SendRate, d.SendBurst = 0.001, 3 }}.start(t)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	var lastID int64 // the last message stored
	send := func(method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Cookie", personCookie+"="+ann)
		req.Header.Set("X-Forwarded-For", "198.51.100.20")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m struct{ ID int64 }
		json.NewDecoder(resp.Body).Decode(&m)
		if m.ID != 0 {
			lastID = m.ID
		}
		return resp.StatusCode
	}
	if code := send("POST", "/discussion", `{"message":"one"}`); code != http.StatusCreated {
		t.Fatalf("the first send: %d", code)
	}
	if code := send("POST", "/rooms/lobby/messages", `{"message":"two"}`); code != http.StatusCreated {
		t.Fatalf("the second, to a room: %d", code)
	}
	if code := send("PATCH", fmt.Sprintf("/rooms/lobby/messages/%d", lastID), `{"message":"two, edited"}`); code != http.StatusOK {
		t.Fatalf("the third, an edit: %d", code)
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/rooms/lobby/messages", `{"message":"four"}`},
		{"POST", "/discussion", `{"message":"four"}`},
		{"PATCH", fmt.Sprintf("/rooms/lobby/messages/%d", lastID), `{"message":"edited again"}`},
	} {
		if code := send(c.method, c.path, c.body); code != http.StatusTooManyRequests {
			t.Errorf("%s %s after the burst of 3 over the routes: %d, want 429", c.method, c.path, code)
		}
	}
}

// A signed-in person's REST limit is their account's, not their
// address's: a guest sending junk behind the same router does not use up
// their sends, edits and uploads (it did while the limit was the
// address's alone).
func TestAGuestsJunkDoesNotUseUpAMembersLimit(t *testing.T) {
	srv, _, _, _ := testServer{accounts: map[string]string{"Ann": db.RoleMember}, deps: func(d *Deps) { d.SendRate, d.SendBurst = 0.001, 3 }}.start(t)
	const router = "198.51.100.30"
	resp := post(t, srv, "/signin", router, url.Values{"name": {"Ann"}, "password": {"password of Ann"}}, nil)
	ann := newSession(resp)
	codes := map[int]int{}
	for range 6 {
		resp, _ := request(t, srv, "POST", "/discussion", url.Values{"x": {"not json"}}, map[string]string{"X-Forwarded-For": router})
		codes[resp.StatusCode]++
	}
	if codes[http.StatusTooManyRequests] != 3 {
		t.Fatalf("the guest's 6 junk sends: %v, want 3 refused past the burst of 3", codes)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/rooms/lobby/messages", strings.NewReader(`{"message":"Ann, behind the same router"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cookie", personCookie+"="+ann)
	req.Header.Set("X-Forwarded-For", router)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("Ann's send behind the guest's router: %d, want 201", res.StatusCode)
	}
}
