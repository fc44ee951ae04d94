package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"nochat/db"
)

// roomIDs makes a room as session's person and returns its id and slug.
func roomIDs(t *testing.T, srv *httptest.Server, session, body string) (int64, string) {
	t.Helper()
	r := createRoom(t, srv, session, body, http.StatusCreated)
	return r.ID, r.Slug
}

// sendIn posts a message to a room as session's person; it returns the
// status and body.
func sendIn(t *testing.T, srv *httptest.Server, session, slug, text string) (int, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"message": text})
	return call(t, srv, "POST", "/rooms/"+slug+"/messages", session, string(b), nil)
}

// roomRowOf is the dashboard's row of room id, or "" if it has none.
func roomRowOf(page string, id int64) string {
	m := regexp.MustCompile(`(?s)<tr data-room-id="` + fmt.Sprint(id) + `".*?</tr>`).FindString(page)
	return m
}

func roomURL(id int64, action string) string {
	return fmt.Sprintf("/admin/rooms/%d/%s", id, action)
}

func TestDashboardListsRoomsButNotTheirMessages(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Ann": db.RoleMember, "Bob": db.RoleMember, "Cy": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	admin := signInAs(t, srv, "Ada", "password of Ada", firefox)
	secret, _ := roomIDs(t, srv, ann, `{"name": "Secret plans", "kind": "private", "members": ["Bob", "Cy"]}`)
	direct, dslug := roomIDs(t, srv, ann, `{"kind": "direct", "members": ["Bob"]}`)
	const privateText, directText = "the gate code is 4711", "meet me at the bakery"
	if code, body := sendIn(t, srv, ann, "secret-plans", privateText); code != http.StatusCreated {
		t.Fatalf("Ann's message in her private room: %d %s", code, body)
	}
	if code, body := sendIn(t, srv, ann, dslug, directText); code != http.StatusCreated {
		t.Fatalf("Ann's direct message: %d %s", code, body)
	}
	// Ann has the page open: her connection is in her rooms.
	openSocket(t, srv, ann)

	for _, path := range []string{"/admin", "/admin/live"} {
		t.Run(path, func(t *testing.T) {
			var page string
			deadline := time.Now().Add(10 * time.Second)
			for {
				code, _, body := as(t, srv, "GET", path, admin, nil)
				if code != http.StatusOK {
					t.Fatalf("GET %s: %d", path, code)
				}
				page = body
				if strings.Contains(page, `class="rooms" title="Lobby, Secret plans, direct: Ann, Bob"`) || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			row := roomRowOf(page, secret)
			for _, want := range []string{"Secret plans", "/r/<!-- -->secret-plans", ">private<", "3 members", ">Ann<", ">Bob<", ">Cy<", "Online now </span>1<", "Messages </span>1<"} {
				want = strings.ReplaceAll(want, "<!-- -->", "")
				if !strings.Contains(strings.ReplaceAll(row, "<!-- -->", ""), want) {
					t.Errorf("the private room's row lacks %q:\n%s", want, row)
				}
			}
			drow := roomRowOf(page, direct)
			for _, want := range []string{">direct<", "2 members", "Messages </span>1<"} {
				if !strings.Contains(drow, want) {
					t.Errorf("the direct room's row lacks %q:\n%s", want, drow)
				}
			}
			for _, text := range []string{privateText, directText} {
				if strings.Contains(page, text) {
					t.Errorf("the dashboard shows %q, a message of a room its admin is not in", text)
				}
			}
			// The connection list names Ann's rooms.
			if !strings.Contains(page, `class="rooms" title="Lobby, Secret plans, direct: Ann, Bob"`) {
				t.Errorf("Ann's connection does not list her rooms (Lobby, Secret plans, the direct room): %s", regexp.MustCompile(`<td class="rooms"[^>]*>[^<]*`).FindAllString(page, -1))
			}
		})
	}
}

func TestAdminArchivesARoomFromTheDashboard(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Ann": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	admin := signInAs(t, srv, "Ada", "password of Ada", firefox)
	id, slug := roomIDs(t, srv, ann, `{"name": "Garden", "kind": "open"}`)
	if code, body := sendIn(t, srv, ann, slug, "tomatoes are in"); code != http.StatusCreated {
		t.Fatalf("before archiving: %d %s, want 201", code, body)
	}
	if code, loc, body := as(t, srv, "POST", roomURL(id, "archive"), admin, url.Values{}); code != http.StatusSeeOther || loc != "/admin" {
		t.Fatalf("archiving: %d %q %s, want 303 to /admin", code, loc, body)
	}
	code, body := sendIn(t, srv, ann, slug, "anyone there?")
	if code != http.StatusForbidden || !strings.Contains(body, "archived") {
		t.Fatalf("a member's send to the archived room: %d %s, want 403 saying archived", code, body)
	}
	if _, _, page := as(t, srv, "GET", "/admin", admin, nil); !strings.Contains(roomRowOf(page, id), "Unarchive") {
		t.Errorf("the archived room's row offers no Unarchive:\n%s", roomRowOf(page, id))
	}
	if code, _, body := as(t, srv, "POST", roomURL(id, "unarchive"), admin, url.Values{}); code != http.StatusSeeOther {
		t.Fatalf("unarchiving: %d %s, want 303", code, body)
	}
	if code, body := sendIn(t, srv, ann, slug, "back again"); code != http.StatusCreated {
		t.Fatalf("after unarchiving: %d %s, want 201", code, body)
	}
	t.Run("the default room cannot be archived", func(t *testing.T) {
		code, _, body := as(t, srv, "POST", roomURL(db.DefaultRoom, "archive"), admin, url.Values{})
		if code != http.StatusForbidden || !strings.Contains(body, "cannot be archived") {
			t.Fatalf("archiving the default room: %d %s, want 403 saying it cannot be archived", code, body)
		}
	})
	t.Run("htmx gets the live part", func(t *testing.T) {
		resp, body := request(t, srv, "POST", roomURL(id, "archive"), url.Values{}, map[string]string{"Cookie": personCookie + "=" + admin, "HX-Request": "true"})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="live"`) || !strings.Contains(roomRowOf(body, id), "archived") {
			t.Fatalf("an htmx archive: %d, want 200 with the live part showing the room archived:\n%s", resp.StatusCode, roomRowOf(body, id))
		}
	})
	want := []string{"Ada archive room Garden (/r/garden)", "Ada unarchive room Garden (/r/garden)", "Ada archive room Garden (/r/garden)"}
	got := auditOf(t, auth)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("audit: %q, want %q", got, want)
	}
}

func TestAdminRemovesAMemberFromTheDashboard(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Ann": db.RoleMember, "Bob": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	admin := signInAs(t, srv, "Ada", "password of Ada", firefox)
	id, slug := roomIDs(t, srv, ann, `{"name": "Secret", "kind": "private", "members": ["Bob"]}`)
	if code, _ := call(t, srv, "GET", "/rooms/"+slug, bob, "", nil); code != http.StatusOK {
		t.Fatalf("Bob's GET /rooms/%s before: %d, want 200", slug, code)
	}
	bobID := accountID(t, auth, "Bob")
	remove := roomURL(id, fmt.Sprintf("members/%d/remove", bobID))
	if code, _, body := as(t, srv, "POST", remove, admin, url.Values{}); code != http.StatusSeeOther {
		t.Fatalf("removing Bob: %d %s, want 303", code, body)
	}
	if code, body := call(t, srv, "GET", "/rooms/"+slug, bob, "", nil); code != http.StatusNotFound {
		t.Fatalf("Bob's GET /rooms/%s after: %d %s, want 404", slug, code, body)
	}
	if code, _, body := as(t, srv, "POST", remove, admin, url.Values{}); code != http.StatusNotFound {
		t.Fatalf("removing Bob again: %d %s, want 404", code, body)
	}
	t.Run("nobody leaves the default room", func(t *testing.T) {
		code, _, body := as(t, srv, "POST", roomURL(db.DefaultRoom, fmt.Sprintf("members/%d/remove", bobID)), admin, url.Values{})
		if code != http.StatusForbidden || !strings.Contains(body, "cannot be left") {
			t.Fatalf("removing Bob from the default room: %d %s, want 403 saying it cannot be left", code, body)
		}
	})
	if got, want := auditOf(t, auth), []string{"Ada remove member Secret (/r/secret)"}; !slices.Equal(got, want) {
		t.Fatalf("audit: %q, want %q", got, want)
	}
}

func TestRoomActionsAreForAdminsOnly(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Ann": db.RoleMember, "Bob": db.RoleMember})
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	bob := signInAs(t, srv, "Bob", "password of Bob", firefox)
	admin := signInAs(t, srv, "Ada", "password of Ada", firefox)
	// Ann created the room: she may archive it over /rooms, but the
	// dashboard's routes are an admin's.
	id, slug := roomIDs(t, srv, ann, `{"name": "Secret", "kind": "private", "members": ["Bob"]}`)
	bobID := accountID(t, auth, "Bob")
	for _, path := range []string{roomURL(id, "archive"), roomURL(id, fmt.Sprintf("members/%d/remove", bobID))} {
		t.Run(path, func(t *testing.T) {
			for who, session := range map[string]string{"its creator, a member,": ann, "a guest": ""} {
				if code, _, body := as(t, srv, "POST", path, session, url.Values{}); code == http.StatusOK || code == http.StatusSeeOther || code/100 != 4 {
					t.Errorf("%s POST %s: %d %s, want refused", who, path, code, body)
				}
			}
			resp, body := request(t, srv, "POST", path, url.Values{}, map[string]string{
				"Cookie": personCookie + "=" + admin, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site",
			})
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("another site's POST %s with an admin's cookie: %d %s, want 403", path, resp.StatusCode, body)
			}
		})
	}
	if code, body := sendIn(t, srv, bob, slug, "still here"); code != http.StatusCreated {
		t.Fatalf("Bob's send after the refused actions: %d %s, want 201 (not archived, still a member)", code, body)
	}
	if lines := auditOf(t, auth); len(lines) != 0 {
		t.Fatalf("audit after refused actions: %q, want none", lines)
	}
}

func TestRoomActionsNeedAnAdminAccount(t *testing.T) {
	// The admin password of a NoChat from before accounts opens the
	// dashboard but is nobody in the rooms: it is refused, saying why.
	srv, _, _, _ := testServer{password: "the old admin password"}.start(t)
	resp := post(t, srv, "/admin/login", "192.0.2.1", url.Values{"password": {"the old admin password"}}, nil)
	var cookies []string
	for _, c := range resp.Cookies() {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	if resp.StatusCode != http.StatusSeeOther || len(cookies) == 0 {
		t.Fatalf("logging in with the admin password: %d, cookies %q", resp.StatusCode, cookies)
	}
	resp, body := request(t, srv, "POST", roomURL(db.DefaultRoom, "unarchive"), url.Values{}, map[string]string{"Cookie": strings.Join(cookies, "; ")})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "admin account") {
		t.Fatalf("the admin password's POST: %d %s, want 403 asking for an admin account", resp.StatusCode, body)
	}
}
