package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"nochat/db"
)

// Search and permalinks (issue 14, items 8 and 9), on the real server.

type searchAnswer struct {
	ID        int64  `json:"id"`
	Room      int64  `json:"room"`
	User      string `json:"user"`
	Message   string `json:"message"`
	Timestamp int64  `json:"timestamp"`
	Snippet   string `json:"snippet"`
	Slug      string `json:"slug"`
	URL       string `json:"url"`
}

// searchAs is GET /search?q= through call; it fails unless the status is 200.
func searchAs(t *testing.T, call func(path string) (int, string), q string) []searchAnswer {
	t.Helper()
	code, body := call("/search?q=" + url.QueryEscape(q))
	if code != http.StatusOK {
		t.Fatalf("search %q: %d %s", q, code, body)
	}
	var out []searchAnswer
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("search %q: %s: %v", q, body, err)
	}
	return out
}

func texts(ms []searchAnswer) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Message)
	}
	slices.Sort(out)
	return out
}

// A search never returns a message of a room the person may not see, and
// a permalink never opens one: private and direct rooms stay their
// members', for other members, admins and guests alike.
func TestSearchKeepsToRoomsOneMaySee(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember, "Bob": db.RoleMember, "Cid": db.RoleMember, "Ada": db.RoleAdmin})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	cid := signInAs(t, srv, "Cid", "password of Cid", firefox)
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)

	secret := createRoom(t, srv, ann, `{"name": "Secret plans", "kind": "private", "members": ["Bob"]}`, http.StatusCreated)
	direct := createRoom(t, srv, ann, `{"kind": "direct", "members": ["Bob"]}`, http.StatusCreated)
	garden := createRoom(t, srv, ann, `{"name": "Garden", "kind": "open"}`, http.StatusCreated)
	secretID := sendTo(t, srv, ann, secret.Slug, "zebra in the secret room")
	sendTo(t, srv, ann, direct.Slug, "zebra in the direct room")
	sendTo(t, srv, ann, garden.Slug, "zebra in the garden")
	lobbyID := sendTo(t, srv, ann, "lobby", "zebra in the lobby")

	as := func(session string) func(string) (int, string) {
		return func(path string) (int, string) { return call(t, srv, "GET", path, session, "", nil) }
	}
	all := []string{"zebra in the direct room", "zebra in the garden", "zebra in the lobby", "zebra in the secret room"}
	open := []string{"zebra in the garden", "zebra in the lobby"}
	for _, c := range []struct {
		who     string
		session string
		want    []string
	}{
		{"Bob, in every room", bob, all},
		{"Ann, in every room", ann, all},
		{"Cid, in none of them", cid, open},
		{"Ada, an admin in none of them", ada, open},
		{"a guest", "", []string{"zebra in the lobby"}},
	} {
		t.Run(c.who, func(t *testing.T) {
			if got := texts(searchAs(t, as(c.session), "zeb")); !slices.Equal(got, c.want) {
				t.Fatalf("found %q, want %q", got, c.want)
			}
			// Without a word, a filter lists what it keeps: the same
			// rooms' messages, no others.
			if got := texts(searchAs(t, as(c.session), "from:ann")); !slices.Equal(got, c.want) {
				t.Fatalf("from:ann alone listed %q, want %q", got, c.want)
			}
			if code, body := as(c.session)("/search?q=in:" + secret.Slug); (c.session == bob || c.session == ann) != (code == http.StatusOK) ||
				(code == http.StatusOK) != strings.Contains(body, "secret room") {
				t.Fatalf("in:%s alone: %d %s", secret.Slug, code, body)
			}
			// Asked for by name, a room one may not see answers as one
			// that does not exist.
			code, body := as(c.session)("/search?q=zebra+in:" + secret.Slug)
			_, none := as(c.session)("/search?q=zebra+in:no-such-room")
			if c.session == bob || c.session == ann {
				if code != http.StatusOK || !strings.Contains(body, "secret room") {
					t.Fatalf("in:%s: %d %s", secret.Slug, code, body)
				}
			} else if code != http.StatusNotFound || body != none {
				t.Fatalf("in:%s: %d %s, want the 404 of a room that does not exist (%s)", secret.Slug, code, body, none)
			}
			// The permalink and the history around it likewise.
			code, _ = as(c.session)(fmt.Sprintf("/rooms/%s/messages?around=%d", secret.Slug, secretID))
			page, pageBody := as(c.session)(fmt.Sprintf("/r/%s/%d", secret.Slug, secretID))
			if c.session == bob || c.session == ann {
				if code != http.StatusOK || page != http.StatusOK || !strings.Contains(pageBody, `class="msg focus"`) {
					t.Fatalf("member's permalink: around %d, page %d", code, page)
				}
			} else if code != http.StatusNotFound || page == http.StatusOK || strings.Contains(pageBody, "secret room") {
				t.Fatalf("outsider's permalink: around %d, page %d %s", code, page, pageBody)
			}
			// A message of another room through a room one sees: 404,
			// never its text.
			code, body = as(c.session)(fmt.Sprintf("/rooms/lobby/messages?around=%d", secretID))
			page, pageBody = as(c.session)(fmt.Sprintf("/r/lobby/%d", secretID))
			if code != http.StatusNotFound || page != http.StatusNotFound || strings.Contains(body+pageBody, "secret room") {
				t.Fatalf("secret message through the lobby: %d %s, page %d", code, body, page)
			}
		})
	}

	// A match carries what the page shows and where it opens.
	got := searchAs(t, as(cid), "zebra lobby")
	if len(got) != 1 {
		t.Fatalf("zebra lobby: %+v", got)
	}
	m := got[0]
	if m.ID != lobbyID || m.Room != db.DefaultRoom || m.User != "Ann" || m.Timestamp == 0 || m.Slug != "lobby" ||
		m.URL != fmt.Sprintf("/r/lobby/%d", lobbyID) || m.Snippet != "<mark>zebra</mark> in the <mark>lobby</mark>" {
		t.Fatalf("match = %+v", m)
	}
	// Filters: from, a date range, the room as a parameter.
	if got := searchAs(t, as(bob), "zebra from:ann in:"+garden.Slug); len(got) != 1 || got[0].Message != "zebra in the garden" {
		t.Fatalf("from:ann in:garden: %+v", got)
	}
	if got := searchAs(t, as(bob), "zebra from:bob"); len(got) != 0 {
		t.Fatalf("from:bob: %+v", got)
	}
	if got := searchAs(t, as(bob), "zebra before:2000-01-01"); len(got) != 0 {
		t.Fatalf("before:2000-01-01: %+v", got)
	}
	if got := searchAs(t, as(bob), "zebra after:2000-01-01"); len(got) != 4 {
		t.Fatalf("after:2000-01-01: %+v", got)
	}
	if code, body := as(bob)("/search?q=zebra&room=" + garden.Slug); code != http.StatusOK || strings.Count(body, `"id"`) != 1 {
		t.Fatalf("room=garden: %d %s", code, body)
	}
	// The page's permalink opens the room around the message, marked.
	code, body := as(cid)(fmt.Sprintf("/r/lobby/%d", lobbyID))
	if code != http.StatusOK || !strings.Contains(body, fmt.Sprintf(`data-focus="%d"`, lobbyID)) ||
		!strings.Contains(body, fmt.Sprintf(`href="/r/lobby/%d"`, lobbyID)) {
		t.Fatalf("permalink page: %d", code)
	}
	for _, path := range []string{"/r/lobby/0", "/r/lobby/x", "/r/lobby/99999999"} {
		if code, _ := as(cid)(path); code != http.StatusNotFound {
			t.Fatalf("%s: %d, want 404", path, code)
		}
	}
}

// Whatever is typed, a search answers 200 or a clear 4xx, never a 500.
func TestSearchHostileQueries(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	sendTo(t, srv, ann, "lobby", `alpha "beta" NEAR(gamma) col:umn * ^`)
	for i, q := range []string{
		`"`, `""`, `alpha"`, `*`, `alpha*`, `^alpha`, `NEAR(alpha beta)`, `alpha OR beta`, `alpha AND`, `NOT alpha`,
		`(alpha`, `message:alpha`, `{message}:alpha`, `-alpha`, `alpha:`, `:`, `in:`, `from:`, `'`, `\`, "al\x00pha",
		`in:"lobby"`, `from:'; DROP TABLE messages; --`, `before:2026-13-45`, `after:yesterday`, `in:../admin`, "\uE000alpha\uE001",
		`rank:1`, `messages_fts:alpha`, "%", `<script>`, `alpha before:1`, strings.Repeat("x", 256), strings.Repeat("é", 256),
	} {
		// A guest address each, under the search limit.
		header := map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d", i+1)}
		code, body := call(t, srv, "GET", "/search?q="+url.QueryEscape(q), "", "", header)
		if code != http.StatusOK && code != http.StatusBadRequest && code != http.StatusNotFound {
			t.Errorf("q=%q: %d %s", q, code, body)
		}
		if code != http.StatusOK && !strings.Contains(body, `"error"`) {
			t.Errorf("q=%q: %d %s, want a JSON error", q, code, body)
		}
	}
	for _, c := range []struct{ q, want string }{
		{"", "type a word"},
		{"   ", "type a word"},
		{"*** ^", "type a word"},
		{strings.Repeat("x", 257), "too long"},
		{"alpha before:2026-13-45", "before must be a date"},
		{"alpha after:soon", "after must be a date"},
	} {
		code, body := call(t, srv, "GET", "/search?q="+url.QueryEscape(c.q), ann, "", nil)
		if code != http.StatusBadRequest || !strings.Contains(body, c.want) {
			t.Errorf("q=%q: %d %s, want 400 saying %q", c.q, code, body, c.want)
		}
	}
	if code, _ := call(t, srv, "GET", "/search?q=a&q=b", ann, "", nil); code != http.StatusBadRequest {
		t.Errorf("two q: %d, want 400", code)
	}
	// A script searching flat out is slowed down.
	limited := false
	for range 40 {
		if code, _ := call(t, srv, "GET", "/search?q=alpha", ann, "", nil); code == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("40 searches at once: none refused with 429")
	}
}

// An edit and a deletion through the API reach the search at once: the
// old text is no longer found, the new one is, and a deleted message is
// found no more.
func TestSearchFollowsEditsAndDeletions(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	id := sendTo(t, srv, ann, "lobby", "meet at the harbuor")
	find := func(q string) int {
		return len(searchAs(t, func(path string) (int, string) { return call(t, srv, "GET", path, ann, "", nil) }, q))
	}
	if find("harbuor") != 1 {
		t.Fatal("the message is not found")
	}
	path := fmt.Sprintf("/rooms/lobby/messages/%d", id)
	if code, body := call(t, srv, "PATCH", path, ann, `{"message": "meet at the harbour"}`, nil); code != http.StatusOK {
		t.Fatalf("edit: %d %s", code, body)
	}
	if got := find("harbuor"); got != 0 {
		t.Fatalf("the text before the edit is found %d times", got)
	}
	if find("harbour") != 1 {
		t.Fatal("the edited text is not found")
	}
	if code, body := call(t, srv, "DELETE", path, ann, "", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, body)
	}
	if got := find("harbour"); got != 0 {
		t.Fatalf("the deleted message is found %d times", got)
	}
}

// An IPv6 /64 is one address to the search limit: a guest rotating
// through its network's addresses is slowed down as one.
func TestSearchLimitKeysIPv6By64(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember})
	limited := false
	for i := range 40 {
		header := map[string]string{"X-Forwarded-For": fmt.Sprintf("2001:db8:7:7::%x", i+1)}
		if code, _ := call(t, srv, "GET", "/search?q=alpha", "", "", header); code == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("40 searches from 40 addresses of one /64: none refused with 429")
	}
}

// A name with a space is searched for in quotes, as the search box's hint
// says: from:"Dad Bob", alone or with words and other filters.
func TestSearchFromANameWithSpaces(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember, "Dad Bob": db.RoleMember, "Dad": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Dad Bob", "password of Dad Bob", firefox)
	dad := signInAs(t, srv, "Dad", "password of Dad", firefox)
	sendTo(t, srv, bob, "lobby", "beans are up")
	sendTo(t, srv, bob, "lobby", "and the peas")
	sendTo(t, srv, dad, "lobby", "beans from the other dad")
	sendTo(t, srv, ann, "lobby", "beans from Ann")
	as := func(path string) (int, string) { return call(t, srv, "GET", path, ann, "", nil) }
	for q, want := range map[string][]string{
		`from:"Dad Bob"`:                {"and the peas", "beans are up"},
		`from:"dad bob" beans`:          {"beans are up"},
		`beans FROM:"Dad Bob" in:lobby`: {"beans are up"},
		`beans from:"Dad Bob`:           {"beans are up"}, // a quote left open runs to the end
		`from:Dad beans`:                {"beans from the other dad"},
		`beans "from" Ann`:              {"beans from Ann"},
	} {
		if got := texts(searchAs(t, as, q)); !slices.Equal(got, want) {
			t.Errorf("search %s: %q, want %q", q, got, want)
		}
	}
}

func TestSearchFields(t *testing.T) {
	for q, want := range map[string][]string{
		`  beans  from:"Dad Bob"  peas `: {"beans", `from:"Dad Bob"`, "peas"},
		`in:"garden club" from:"x`:       {`in:"garden club"`, `from:"x`},
		`a:"b c" "d e"`:                  {`a:"b`, `c"`, `"d`, `e"`}, // a: is no filter; words are words
		`from:""`:                        {`from:""`},
		"":                               nil,
	} {
		if got := searchFields(q); !slices.Equal(got, want) {
			t.Errorf("searchFields(%q) = %q, want %q", q, got, want)
		}
	}
	if got := parseSearch(`beans from:"Dad Bob" in:"#garden"`); got.from != "Dad Bob" || got.room != "garden" || !slices.Equal(got.words, []string{"beans"}) {
		t.Errorf("parseSearch = %+v", got)
	}
}
