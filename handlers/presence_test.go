package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
)

// openGuest opens the page's socket without a session, under a name.
func openGuest(t *testing.T, srv *httptest.Server, name string) *websocket.Conn {
	t.Helper()
	return dialPage(t, srv, "/?user="+name, "")
}

type presenceFrame struct {
	Online int      `json:"online"`
	Users  []string `json:"users"`
	People []struct {
		User    string `json:"user"`
		UserID  *int64 `json:"user_id"`
		Role    string `json:"role"`
		Guest   bool   `json:"guest"`
		Devices int    `json:"devices"`
	} `json:"people"`
}

// String is the frame as a test compares it: "ann 2, carol (guest) 1 | 3
// online: ann carol".
func (p presenceFrame) String() string {
	var b strings.Builder
	for i, e := range p.People {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.User)
		if e.Guest != (e.UserID == nil) || e.Guest != (e.Role == "guest") {
			b.WriteString(" (inconsistent)")
		}
		if e.Guest {
			b.WriteString(" (guest)")
		}
		fmt.Fprintf(&b, " %d", e.Devices)
	}
	fmt.Fprintf(&b, " | %d online: %s", p.Online, strings.Join(p.Users, " "))
	return b.String()
}

type wsFrame struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// readFrame reads c's next frame.
func readFrame(t *testing.T, c *websocket.Conn) wsFrame {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var f wsFrame
	if err := c.ReadJSON(&f); err != nil {
		t.Fatalf("read: %v", err)
	}
	return f
}

// waitPresence reads c until a presence frame reads want.
func waitPresence(t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	last := "none"
	for range 200 {
		f := readFrame(t, c)
		if f.Type != "presence" {
			continue
		}
		var p presenceFrame
		if err := json.Unmarshal(f.Data, &p); err != nil {
			t.Fatal(err)
		}
		if last = p.String(); last == want {
			return
		}
	}
	t.Fatalf("presence never read %q; last %q", want, last)
}

// Two tabs and a phone of one account are one person in presence, with
// three devices; each one closed takes one device away. Guests go by
// their name. The fields the page read before (online, users) still
// count connections and list each name once.
func TestPresenceCountsAPersonOnceWithTheirDevices(t *testing.T) {
	srv, _, _, _ := testServer{hub: chat.Options{}, accounts: map[string]string{"ann": db.RoleMember, "bob": db.RoleMember}}.start(t)
	laptop := signInAs(t, srv, "ann", "password of ann", firefox)
	phoneSession := signInAs(t, srv, "ann", "password of ann", phone)
	bob := openSocket(t, srv, signInAs(t, srv, "bob", "password of bob", firefox))
	waitPresence(t, bob, "bob 1 | 1 online: bob")

	tab1 := openSocket(t, srv, laptop)
	tab2 := openSocket(t, srv, laptop)
	waitPresence(t, bob, "ann 2, bob 1 | 3 online: ann bob")
	onPhone := openSocket(t, srv, phoneSession)
	waitPresence(t, bob, "ann 3, bob 1 | 4 online: ann bob")
	waitPresence(t, tab1, "ann 3, bob 1 | 4 online: ann bob")

	openGuest(t, srv, "carol")
	openGuest(t, srv, "carol")
	waitPresence(t, bob, "ann 3, bob 1, carol (guest) 2 | 6 online: ann bob carol")

	onPhone.Close()
	waitPresence(t, bob, "ann 2, bob 1, carol (guest) 2 | 5 online: ann bob carol")
	tab2.Close()
	waitPresence(t, bob, "ann 1, bob 1, carol (guest) 2 | 4 online: ann bob carol")
	tab1.Close()
	waitPresence(t, bob, "bob 1, carol (guest) 2 | 3 online: bob carol")
}

// A person typing in two tabs is shown typing once to the others, and not
// at all in their own other tab.
func TestTypingInTwoTabsOfOnePersonShowsOnce(t *testing.T) {
	// An interval no test run outlasts: the second tab's typing comes
	// within it however slow the machine.
	srv, _, _, _ := testServer{hub: chat.Options{TypingInterval: time.Hour}, accounts: map[string]string{"ann": db.RoleMember, "bob": db.RoleMember}}.start(t)
	laptop := signInAs(t, srv, "ann", "password of ann", firefox)
	bob := openSocket(t, srv, signInAs(t, srv, "bob", "password of bob", firefox))
	tab1 := openSocket(t, srv, laptop)
	tab2 := openSocket(t, srv, laptop)
	// A socket is in the broadcaster's live set from its hello on: typing
	// is not in the log, so bob must be there before ann types.
	for _, c := range []*websocket.Conn{bob, tab1, tab2} {
		if f := readFrame(t, c); f.Type != "hello" {
			t.Fatalf("first frame %s, want hello", f.Type)
		}
	}
	// Each tab's frames are handled in order, and its typing reaches the
	// broadcaster before its message's commit does: the message marks
	// that the typing before it has gone out, if it went.
	say := func(c *websocket.Conn, text string) {
		t.Helper()
		c.WriteJSON(map[string]any{"type": "typing", "data": map[string]any{}})
		c.WriteJSON(map[string]any{"type": "send", "data": map[string]any{"message": text, "cid": "c-" + text}})
		for range 100 {
			if f := readFrame(t, c); f.Type == "ack" {
				return
			}
		}
		t.Fatalf("no ack for %q", text)
	}
	say(tab1, "one")
	say(tab2, "two")

	// seen reads c up to the message "two" and returns the typing frames
	// on the way.
	seen := func(c *websocket.Conn) []string {
		t.Helper()
		var typing []string
		for range 200 {
			f := readFrame(t, c)
			switch f.Type {
			case "typing":
				typing = append(typing, string(f.Data))
			case "message":
				if strings.Contains(string(f.Data), `"message":"two"`) {
					return typing
				}
			}
		}
		t.Fatal("never saw the message two")
		return nil
	}
	got := seen(bob)
	if len(got) != 1 || !strings.Contains(got[0], `"user":"ann"`) || !strings.Contains(got[0], `"user_id":`) {
		t.Fatalf("bob saw typing %q, want ann's once, with her user_id", got)
	}
	for _, tab := range []*websocket.Conn{tab1, tab2} {
		if got := seen(tab); len(got) != 0 {
			t.Fatalf("ann's own tab saw typing %q, want none", got)
		}
	}
}

var (
	personGroupRe = regexp.MustCompile(`(?s)<tbody class="person">(.*?)</tbody>`)
	personNameRe  = regexp.MustCompile(`(?s)<span class="name">(.*?)</span>\s*<span class="tag">(.*?)</span>\s*<span class="devices">(.*?)</span>`)
)

// The admin's list of live connections shows each person once, their
// connections under them: an account's devices together, guests by name.
func TestAdminSeesConnectionsGroupedByPerson(t *testing.T) {
	srv, _, _, _ := testServer{hub: chat.Options{}, accounts: map[string]string{"ann": db.RoleAdmin, "bob": db.RoleMember}}.start(t)
	admin := signInAs(t, srv, "ann", "password of ann", firefox)
	sockets := []*websocket.Conn{
		openSocket(t, srv, signInAs(t, srv, "bob", "password of bob", phone)),
		openGuest(t, srv, "carol"),
		openSocket(t, srv, admin),
		openSocket(t, srv, signInAs(t, srv, "bob", "password of bob", firefox)),
	}
	for _, c := range sockets {
		if f := readFrame(t, c); f.Type != "hello" {
			t.Fatalf("first frame %s, want hello", f.Type)
		}
	}
	status, _, body := as(t, srv, "GET", "/admin/live", admin, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /admin/live as an admin: %d", status)
	}
	var got []string
	for _, g := range personGroupRe.FindAllStringSubmatch(body, -1) {
		m := personNameRe.FindStringSubmatch(g[1])
		if m == nil {
			t.Fatalf("a person group without its heading: %s", g[1])
		}
		got = append(got, fmt.Sprintf("%s (%s) %s: %d rows", m[1], m[2], m[3], strings.Count(g[1], "data-session=")))
	}
	want := []string{"ann (admin) 1 device: 1 rows", "bob (member) 2 devices: 2 rows", "carol (guest) 1 connection: 1 rows"}
	if !slices.Equal(got, want) {
		t.Fatalf("connections by person:\n%q\nwant\n%q", got, want)
	}
}
