package main

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A member's rename, over real sockets against the real server: it is
// refused for a name another has (however it is spelt) or one with
// invisible characters; done, it reaches every open socket of every
// person at once (a person frame, presence again), is what history and
// sign-in know, and a re-send of a cid sent before it is still that send.
// The tutorial's echo-protocol client hears of none of it.

// signedUp makes a member through open sign-up and returns their cookie.
func signedUp(t *testing.T, s *server, name string) string {
	t.Helper()
	p := fetch(t, "POST", s.url+"/join", "", url.Values{"name": {name}, "password": {"correct horse"}})
	if p.cookies["nochat_session"] == "" {
		t.Fatalf("joining as %s: %d %s", name, p.status, p.body)
	}
	return "nochat_session=" + p.cookies["nochat_session"]
}

// memberSocket opens a nochat.v1 socket as the page does: the cookie, the
// page's own origin. It reads the hello.
func memberSocket(t *testing.T, s *server, cookie string) (*websocket.Conn, map[string]any) {
	t.Helper()
	c, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial(wsURL(s.url), http.Header{"Cookie": {cookie}, "Origin": {s.url}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, frame(t, c, "hello")
}

// sendCID sends a message with a cid and returns the id its ack names.
func sendCID(t *testing.T, c *websocket.Conn, text, cid string) float64 {
	t.Helper()
	c.WriteJSON(map[string]any{"type": "send", "data": map[string]any{"message": text, "cid": cid}})
	ack := frame(t, c, "ack")
	if ack["cid"] != cid {
		t.Fatalf("ack = %v, want one for cid %s", ack, cid)
	}
	return ack["id"].(float64)
}

func TestRenameReachesEverySocketAndKeepsResendsOnce(t *testing.T) {
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")})
	_, token := setupLink(t, s)
	p := fetch(t, "POST", s.url+"/setup", "", url.Values{"token": {token}, "name": {"Ann"}, "password": {"correct horse"}})
	ann := "nochat_session=" + p.cookies["nochat_session"]
	if p.cookies["nochat_session"] == "" {
		t.Fatalf("set-up: %d, no session", p.status)
	}
	if p := fetch(t, "POST", s.url+"/admin/join-policy", ann, url.Values{"policy": {"open"}}); p.status != http.StatusSeeOther {
		t.Fatalf("opening sign-up: %d %s", p.status, p.body)
	}
	bob := signedUp(t, s, "Bob")

	echo, _, err := (&websocket.Dialer{Subprotocols: []string{"echo-protocol"}}).Dial(wsURL(s.url), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	tab1, hello := memberSocket(t, s, ann)
	tab2, _ := memberSocket(t, s, ann)
	bobs, _ := memberSocket(t, s, bob)
	guest, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial(wsURL(s.url)+"?user=zed", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer guest.Close()
	frame(t, guest, "hello")
	annID := hello["user_id"]

	first := sendCID(t, tab1, "before the rename", "r1")

	t.Run("refused: a taken name, a look-alike, invisible characters", func(t *testing.T) {
		for _, c := range []struct {
			name, why string
			status    int
			says      string
		}{
			{"BOB", "another's name in capitals", http.StatusConflict, "taken"},
			{"B\u043eb", "another's name with a Cyrillic о", http.StatusConflict, "taken"},
			{"A\u200Bnnie", "a zero-width space", http.StatusBadRequest, "U+200B"},
			{"\u202Einnae", "a right-to-left override", http.StatusBadRequest, "U+202E"},
			{"   ", "nothing", http.StatusBadRequest, "a name is needed"},
			{"Guest", "the name of every nameless guest", http.StatusBadRequest, "guests"},
		} {
			p := fetch(t, "POST", s.url+"/account/name", ann, url.Values{"name": {c.name}})
			if p.status != c.status || !strings.Contains(p.body, c.says) {
				t.Errorf("rename to %q (%s): %d, want %d saying %q", c.name, c.why, p.status, c.status, c.says)
			}
		}
		if p := fetch(t, "POST", s.url+"/account/name", "", url.Values{"name": {"Annie"}}); p.status != http.StatusUnauthorized {
			t.Errorf("rename without a session: %d, want 401", p.status)
		}
		req, _ := http.NewRequest("POST", s.url+"/account/name", strings.NewReader("name=Annie"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", ann)
		req.Header.Set("Origin", "http://evil.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("rename from another site's page: %d, want 403", resp.StatusCode)
		}
		if body := s.get(t, "/discussion/latest/5"); !strings.Contains(body, `"user":"Ann"`) {
			t.Fatalf("after refused renames history shows %s, want Ann still", body)
		}
	})

	p = fetch(t, "POST", s.url+"/account/name", ann, url.Values{"name": {"Annie"}})
	if p.status != http.StatusSeeOther || p.location != "/account" || p.cookies["nochat_done"] != "name" {
		t.Fatalf("rename to Annie: %d to %q with cookies %v, want 303 to the account page saying what was done", p.status, p.location, p.cookies)
	}
	if p := fetch(t, "GET", s.url+p.location, ann+"; nochat_done=name", nil); p.status != http.StatusOK || !strings.Contains(p.body, "Your name is now Annie.") {
		t.Fatalf("the account page after the rename: %d %s", p.status, p.body)
	}
	for who, c := range map[string]*websocket.Conn{"Ann's first tab": tab1, "Ann's second tab": tab2, "Bob": bobs, "the guest": guest} {
		if d := frame(t, c, "person"); d["user_id"] != annID || d["user"] != "Annie" {
			t.Fatalf("%s got person %v, want user_id %v named Annie", who, d, annID)
		}
		// Presence after the rename: Annie once, with two devices.
		var people string
		for range 5 {
			d := frame(t, c, "presence")
			people = presenceLine(d)
			if strings.Contains(people, "Annie") {
				break
			}
		}
		if !strings.Contains(people, "Annie×2") || strings.Contains(people, "Ann×") {
			t.Fatalf("%s sees presence %s, want Annie once with 2 devices", who, people)
		}
	}

	// The send before the rename, again from both tabs (a lost ack): the
	// account is the same sender, so it is the same message.
	if again := sendCID(t, tab1, "before the rename", "r1"); again != first {
		t.Fatalf("re-send after the rename acked as %v, want the first send's %v", again, first)
	}
	if again := sendCID(t, tab2, "before the rename", "r1"); again != first {
		t.Fatalf("re-send from the other tab acked as %v, want %v", again, first)
	}
	if status, body := postStatus(t, s.url+"/discussion/hi%20from%20a%20guest?user=zed"); status != http.StatusOK {
		t.Fatalf("a guest's REST send: %d %s", status, body)
	}
	body := s.get(t, "/discussion/latest/10")
	if n := strings.Count(body, `"message":"before the rename"`); n != 1 {
		t.Fatalf("history holds the re-sent message %d times, want once: %s", n, body)
	}
	if !strings.Contains(body, `"user":"Annie","message":"before the rename"`) || !strings.Contains(body, `"user_id":1,"guest":false`) {
		t.Fatalf("history = %s, want the message under Annie, user_id 1, guest false", body)
	}
	if !strings.Contains(body, `"user":"zed","message":"hi from a guest"`) || !strings.Contains(body, `"user_id":null,"guest":true`) {
		t.Fatalf("history = %s, want the guest's message marked guest true", body)
	}

	// The dashboard's message list marks the guest's message, not Annie's.
	dash := fetch(t, "GET", s.url+"/admin", ann, nil)
	if !guestRow.MatchString(dash.body) || !memberRow.MatchString(dash.body) {
		t.Fatalf("the dashboard's messages (%d) want zed's marked guest and Annie's not:\n%s", dash.status, dash.body)
	}

	// A new tab says hello as Annie; sign-in takes the new name, not the old.
	if _, hello := memberSocket(t, s, ann); hello["user"] != "Annie" {
		t.Fatalf("a new tab's hello = %v, want Annie", hello)
	}
	if p := fetch(t, "POST", s.url+"/signin", "", url.Values{"name": {"annie"}, "password": {"correct horse"}}); p.cookies["nochat_session"] == "" {
		t.Fatalf("sign-in as annie: %d, no session", p.status)
	}
	if p := fetch(t, "POST", s.url+"/signin", "", url.Values{"name": {"Ann"}, "password": {"correct horse"}}); p.cookies["nochat_session"] != "" {
		t.Fatalf("sign-in under the old name Ann worked; want it refused")
	}

	// A tab that resumes from before the rename gets the message replayed
	// under the new name (from the broadcaster's memory, re-encoded).
	resumed, _, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial(wsURL(s.url)+"?after=0", http.Header{"Cookie": {ann}, "Origin": {s.url}})
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Close()
	if m := frame(t, resumed, "message"); m["message"] != "before the rename" || m["user"] != "Annie" || m["guest"] != false {
		t.Fatalf("the replayed message = %v, want Annie's, guest false", m)
	}

	// Renames are limited per account: five at once (one is spent).
	for i, name := range []string{"Annie B", "Annie C", "Annie D", "Annie E", "Annie F"} {
		p := fetch(t, "POST", s.url+"/account/name", ann, url.Values{"name": {name}})
		if want := http.StatusSeeOther; i == 4 {
			if p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "Too many") {
				t.Fatalf("a sixth rename: %d, want 429 saying too many", p.status)
			}
		} else if p.status != want {
			t.Fatalf("rename %d to %s: %d, want %d", i+2, name, p.status, want)
		}
	}

	// The tutorial's client got the two messages' text and nothing else.
	for _, want := range []string{"before the rename", "hi from a guest"} {
		echo.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, b, err := echo.ReadMessage(); err != nil || string(b) != want {
			t.Fatalf("echo client read %q, %v; want %q", b, err, want)
		}
	}
	echo.SetReadDeadline(time.Now().Add(time.Second))
	_, b, err := echo.ReadMessage()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("echo client then read %q, %v; want nothing", b, err)
	}
}

// guestRow is the dashboard's author cell of zed's message, marked guest.
var guestRow = regexp.MustCompile(`<td class="who">zed\s*<span class="tag">guest</span></td>`)

// memberRow is Annie's, unmarked.
var memberRow = regexp.MustCompile(`<td class="who">Annie\s*</td>`)

// presenceLine is a presence frame's people as "name×devices" joined by
// " | ".
func presenceLine(d map[string]any) string {
	people, _ := d["people"].([]any)
	var out []string
	for _, p := range people {
		m, _ := p.(map[string]any)
		name, _ := m["user"].(string)
		n, _ := m["devices"].(float64)
		out = append(out, name+"×"+strconv.Itoa(int(n)))
	}
	return strings.Join(out, " | ")
}
