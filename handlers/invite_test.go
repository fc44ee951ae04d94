package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"nochat/chat"
	"nochat/db"
)

var inviteRE = regexp.MustCompile(`(https?)://([^/"]+)/join/([A-Za-z0-9_-]+)`)

// inviteLink reads the invite link off the dashboard an admin session sees.
func inviteLink(t *testing.T, srv *httptest.Server, session string) (scheme, host, code string) {
	t.Helper()
	status, _, page := as(t, srv, "GET", "/admin", session, nil)
	if status != http.StatusOK {
		t.Fatalf("the admin's dashboard: %d", status)
	}
	m := inviteRE.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `<svg class="qr"`) {
		t.Fatalf("the dashboard shows no invite link with a QR code:\n%s", page)
	}
	return m[1], m[2], m[3]
}

// join posts the join form at path from addr and returns the status and
// the new session, if one was set.
func join(t *testing.T, srv *httptest.Server, path, addr, name, password string) (int, string) {
	t.Helper()
	resp := post(t, srv, path, addr, url.Values{"name": {name}, "password": {password}}, nil)
	return resp.StatusCode, newSession(resp)
}

func TestInviteLinkIsTheDashboardsHostAndResetEndsIt(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Boss": db.RoleAdmin})
	admin := signInAs(t, srv, "Boss", "password of Boss", "test")
	scheme, host, old := inviteLink(t, srv, admin)
	if want := strings.TrimPrefix(srv.URL, "http://"); scheme != "http" || host != want {
		t.Fatalf("invite link at %s://%s, want http://%s", scheme, host, want)
	}
	if len(old) != tokenChars {
		t.Fatalf("invite code %q: %d characters, want %d (256 bits)", old, len(old), tokenChars)
	}
	if _, _, again := inviteLink(t, srv, admin); again != old {
		t.Fatal("the invite link changed without a reset")
	}
	if status, _, _ := as(t, srv, "GET", "/join/"+old, "", nil); status != http.StatusOK {
		t.Fatalf("GET the invite link: %d, want 200", status)
	}

	status, to, _ := as(t, srv, "POST", "/admin/invite/reset", admin, url.Values{})
	if status != http.StatusSeeOther || !strings.HasPrefix(to, "/admin") {
		t.Fatalf("reset: %d to %q, want 303 to the dashboard", status, to)
	}
	_, _, code := inviteLink(t, srv, admin)
	if code == old {
		t.Fatal("reset kept the old code")
	}
	status, _, page := as(t, srv, "GET", "/join/"+old, "", nil)
	if status != http.StatusNotFound || !strings.Contains(page, "This invite link does not work") {
		t.Fatalf("GET the old link: %d, want 404 and a page saying so:\n%s", status, page)
	}
	if status, session := join(t, srv, "/join/"+old, "192.0.2.20", "Eve", "long enough"); status != http.StatusNotFound || session != "" {
		t.Fatalf("joining by the old link: %d (session %q), want 404 and none", status, session)
	}
	for _, wrong := range []string{"x", strings.Repeat("A", tokenChars), code + "A"} {
		if status, _, _ := as(t, srv, "GET", "/join/"+wrong, "", nil); status != http.StatusNotFound {
			t.Fatalf("GET /join/%s: %d, want 404", wrong, status)
		}
	}
	if status, session := join(t, srv, "/join/"+code, "192.0.2.21", "Dora", "long enough"); status != http.StatusSeeOther || session == "" {
		t.Fatalf("joining by the new link: %d (session %q), want 303 and a session", status, session)
	}

	// Behind a TLS proxy, the link is https.
	_, page = request(t, srv, "GET", "/admin", nil, map[string]string{"Cookie": personCookie + "=" + admin, "X-Forwarded-Proto": "https"})
	if m := inviteRE.FindStringSubmatch(page); m == nil || m[1] != "https" {
		t.Fatalf("invite link behind a TLS proxy: %v, want https", m)
	}
}

func TestJoinRefusesATakenNameInAnySpelling(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ann": db.RoleMember})
	code, err := auth.InviteCode(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"Ann", "ann", "ANN", "\u0410nn" /* Cyrillic А */, " Ann "} {
		status, session := join(t, srv, "/join/"+code, "192.0.2."+string(rune('1'+i)), name, "long enough")
		if status != http.StatusConflict || session != "" {
			t.Fatalf("joining as %q beside Ann: %d (session %q), want 409 and none", name, status, session)
		}
	}
	// Invisible characters are refused outright, as names are everywhere.
	if status, session := join(t, srv, "/join/"+code, "192.0.2.30", "A\u200Bnn", "long enough"); status != http.StatusBadRequest || session != "" {
		t.Fatalf("joining as A<ZWSP>nn: %d (session %q), want 400 and none", status, session)
	}
	if status, _ := join(t, srv, "/join/"+code, "192.0.2.31", "Bea", "short"); status != http.StatusBadRequest {
		t.Fatalf("a short password: %d, want 400", status)
	}
	// The form says why above the name, where the focus is, with the
	// name kept.
	_, page := request(t, srv, "POST", "/join/"+code, url.Values{"name": {"ann"}, "password": {"long enough"}}, map[string]string{"X-Forwarded-For": "192.0.2.32"})
	why, field := strings.Index(page, `class="problem"`), strings.Index(page, `<label for="name">`)
	if why < 0 || field < 0 || why > field || !strings.Contains(page, `value="ann"`) {
		t.Fatalf("the join form after a taken name: the reason at %d, the name's field at %d; want the reason first, and the name kept:\n%s", why, field, page)
	}
}

func TestJoinedMemberSignsInAfterARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nochat.db")
	srv, _, auth, stop := testServer{path: path}.start(t)
	code, err := auth.InviteCode(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	status, session := join(t, srv, "/join/"+code, "192.0.2.40", "Zoë", "zoë's long password")
	if status != http.StatusSeeOther || session == "" {
		t.Fatalf("join: %d (session %q), want 303 and a session", status, session)
	}
	status, _, page := as(t, srv, "GET", "/account", session, nil)
	if status != http.StatusOK || !strings.Contains(page, "Zoë") || !strings.Contains(page, "(member)") {
		t.Fatalf("the new member's own page: %d, want 200 naming Zoë, a member:\n%s", status, page)
	}
	if status, _, _ := as(t, srv, "GET", "/admin", session, nil); status != http.StatusForbidden {
		t.Fatalf("a joined member's GET /admin: %d, want 403", status)
	}
	stop()

	srv, _, auth, _ = testServer{path: path}.start(t)
	if again, err := auth.InviteCode(context.Background()); err != nil || again != code {
		t.Fatalf("invite code after a restart: %q, %v; want the same one", again, err)
	}
	if status, _, page := as(t, srv, "GET", "/account", session, nil); status != http.StatusOK || !strings.Contains(page, "Zoë") {
		t.Fatalf("the joined session after a restart: %d, want 200", status)
	}
	if got := signIn(t, srv, "192.0.2.41", "zoë", "zoë's long password"); got != http.StatusSeeOther {
		t.Fatalf("signing in as the joined member after a restart: %d, want 303", got)
	}
}

func TestWhoMayJoinIsTheAdminsSetting(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Boss": db.RoleAdmin})
	admin := signInAs(t, srv, "Boss", "password of Boss", "test")
	_, _, code := inviteLink(t, srv, admin)
	setPolicy := func(p string) {
		t.Helper()
		if status, _, body := as(t, srv, "POST", "/admin/join-policy", admin, url.Values{"policy": {p}}); status != http.StatusSeeOther {
			t.Fatalf("policy %s: %d %s, want 303", p, status, body)
		}
	}

	// The default: the invite link only.
	status, _, page := as(t, srv, "GET", "/join", "", nil)
	if status != http.StatusForbidden || !strings.Contains(page, "Joining needs an invite") {
		t.Fatalf("GET /join by default: %d, want 403 and a page saying why:\n%s", status, page)
	}
	if status, session := join(t, srv, "/join", "192.0.2.50", "Cat", "long enough"); status != http.StatusForbidden || session != "" {
		t.Fatalf("POST /join by default: %d (session %q), want 403 and none", status, session)
	}

	setPolicy(JoinOpen)
	if status, _, _ := as(t, srv, "GET", "/join", "", nil); status != http.StatusOK {
		t.Fatalf("GET /join with open sign-up: %d, want 200", status)
	}
	if status, session := join(t, srv, "/join", "192.0.2.51", "Cat", "long enough"); status != http.StatusSeeOther || session == "" {
		t.Fatalf("POST /join with open sign-up: %d (session %q), want 303 and a session", status, session)
	}

	setPolicy(JoinClosed)
	// Closed to new accounts is not closed to guests: the dashboard says so.
	if _, _, page := as(t, srv, "GET", "/admin", admin, nil); !strings.Contains(page, "Guests, people without an account, may still post in the Lobby") {
		t.Fatal("the dashboard with joining closed does not say that guests may still post")
	}
	for _, path := range []string{"/join", "/join/" + code} {
		status, _, page := as(t, srv, "GET", path, "", nil)
		if status != http.StatusForbidden || !strings.Contains(page, "Joining is closed") {
			t.Fatalf("GET %s when closed: %d, want 403 and a page saying so:\n%s", path, status, page)
		}
		if status, session := join(t, srv, path, "192.0.2.52", "Dan", "long enough"); status != http.StatusForbidden || session != "" {
			t.Fatalf("POST %s when closed: %d (session %q), want 403 and none", path, status, session)
		}
	}
	if status, _, _ := as(t, srv, "POST", "/admin/join-policy", admin, url.Values{"policy": {"everyone"}}); status != http.StatusBadRequest {
		t.Fatalf("an unknown policy: %d, want 400", status)
	}
	setPolicy(JoinInvite)
	if status, _, _ := as(t, srv, "GET", "/join/"+code, "", nil); status != http.StatusOK {
		t.Fatalf("the invite link once it is allowed again: %d, want 200", status)
	}

	// Where guests may only read, the dashboard has nothing to warn of.
	readOnly, _, _, _ := testServer{accounts: map[string]string{"Boss": db.RoleAdmin}, hub: chat.Options{Guests: chat.GuestsRead}}.start(t)
	boss := signInAs(t, readOnly, "Boss", "password of Boss", "test")
	if code, _, page := as(t, readOnly, "GET", "/admin", boss, nil); code != http.StatusOK || strings.Contains(page, "may still post in the Lobby") {
		t.Fatalf("the dashboard with -guests read: %d, and it says guests may post", code)
	}
	// The empty lobby tells its admin what guests may do: read, here.
	if code, _, page := as(t, readOnly, "GET", "/", boss, nil); code != http.StatusOK || !strings.Contains(page, "may also read here without an account") || strings.Contains(page, "may also read and post here") {
		t.Fatalf("the empty lobby with -guests read: %d, not saying that guests may read (and only read)", code)
	}
	none, _, _, _ := testServer{accounts: map[string]string{"Boss": db.RoleAdmin}, hub: chat.Options{Guests: chat.GuestsOff}}.start(t)
	boss = signInAs(t, none, "Boss", "password of Boss", "test")
	if code, _, page := as(t, none, "GET", "/", boss, nil); code != http.StatusOK || strings.Contains(page, "as a guest") {
		t.Fatalf("the empty lobby with -guests off: %d, speaking of guests", code)
	}
}

func TestInviteRoutesRefuseWhoMayNotCallThem(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Boss": db.RoleAdmin, "Ann": db.RoleMember})
	admin := signInAs(t, srv, "Boss", "password of Boss", "test")
	member := signInAs(t, srv, "Ann", "password of Ann", "test")
	_, _, code := inviteLink(t, srv, admin)
	crossSite := map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Cookie": personCookie + "=" + admin}

	for path, form := range map[string]url.Values{
		"/admin/invite/reset": {},
		"/admin/join-policy":  {"policy": {JoinOpen}},
	} {
		if status, _, _ := as(t, srv, "POST", path, "", form); status != http.StatusUnauthorized {
			t.Fatalf("POST %s without a session: %d, want 401", path, status)
		}
		if status, _, _ := as(t, srv, "POST", path, member, form); status != http.StatusForbidden {
			t.Fatalf("POST %s by a member: %d, want 403", path, status)
		}
		if resp := post(t, srv, path, "192.0.2.60", form, crossSite); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("POST %s from another site with the admin's cookie: %d, want 403", path, resp.StatusCode)
		}
	}
	if _, _, now := inviteLink(t, srv, admin); now != code {
		t.Fatal("a refused reset changed the invite link")
	}
	if status, _, _ := as(t, srv, "GET", "/join", "", nil); status != http.StatusForbidden {
		t.Fatalf("a refused policy change opened sign-up: GET /join %d, want 403", status)
	}
	resp := post(t, srv, "/join/"+code, "192.0.2.61", url.Values{"name": {"Mallory"}, "password": {"long enough"}}, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) > 0 {
		t.Fatalf("a cross-site join: %d with cookies %v, want 403 and none", resp.StatusCode, resp.Cookies())
	}
}

// Two dashboards opened at once on a new database show one link: the
// first code stored is the one both get.
func TestFirstInviteCodeIsOneForEveryone(t *testing.T) {
	_, _, auth := peopleServer(t, nil)
	codes := make(chan string, 8)
	for range cap(codes) {
		go func() {
			code, err := auth.InviteCode(context.Background())
			if err != nil {
				t.Error(err)
			}
			codes <- code
		}()
	}
	first := <-codes
	for range cap(codes) - 1 {
		if code := <-codes; code != first {
			t.Fatalf("invite codes %q and %q from dashboards opened at once, want one", first, code)
		}
	}
	if !auth.inviteValid(context.Background(), first) {
		t.Fatal("the code shown is not the one that works")
	}
}

// The keys in links stay out of what admins and the log see: a join
// refused or rate limited at the invite link, a reset link used twice and
// a webhook's post refused are in the log and the dashboard's errors
// without the invite code, the reset token or the webhook's secret.
func TestKeysInLinksStayOutOfTheLogAndErrors(t *testing.T) {
	var logged bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var hub *chat.Hub
	srv, _, auth, _ := testServer{
		accounts: map[string]string{"Boss": db.RoleAdmin, "Bob": db.RoleMember},
		hub:      chat.Options{Log: logger},
		deps:     func(d *Deps) { d.Log, hub = logger, d.Hub },
	}.start(t)
	admin := signInAs(t, srv, "Boss", "password of Boss", "test")
	_, _, code := inviteLink(t, srv, admin)

	// A join refused (joining closed), then joins past the address's limit.
	if status, _, _ := as(t, srv, "POST", "/admin/join-policy", admin, url.Values{"policy": {JoinClosed}}); status != http.StatusSeeOther {
		t.Fatalf("closing joins: %d", status)
	}
	if status, _ := join(t, srv, "/join/"+code, "192.0.2.60", "Dan", "long enough"); status != http.StatusForbidden {
		t.Fatalf("a join when closed: %d, want 403", status)
	}
	if status, _, _ := as(t, srv, "POST", "/admin/join-policy", admin, url.Values{"policy": {JoinInvite}}); status != http.StatusSeeOther {
		t.Fatalf("opening joins to the link: %d", status)
	}
	limited := false
	for i := range 30 {
		status, _ := join(t, srv, "/join/"+code, "192.0.2.61", "", "x") // refused: no name
		if status == http.StatusTooManyRequests {
			limited = true
			break
		}
		if i == 29 {
			t.Fatalf("30 joins from one address: never 429 (last %d)", status)
		}
	}
	if !limited {
		t.Fatal("no join was rate limited")
	}

	// A reset link used twice: the second is refused.
	status, _, page := as(t, srv, "POST", peopleURL(t, auth, "Bob", "reset-link"), admin, nil)
	m := resetLinkRe.FindStringSubmatch(page)
	if status != http.StatusOK || m == nil {
		t.Fatalf("a reset link for Bob: %d", status)
	}
	token := m[2]
	for range 2 {
		post(t, srv, "/reset/"+token, "192.0.2.62", url.Values{"password": {"a brand new password"}}, nil)
	}

	// A webhook's post refused: an empty one.
	status, _, made := roomCall(t, srv, "POST", "/rooms/lobby/webhooks", admin, `{"name": "Sensor"}`, nil)
	var hook struct{ URL string }
	if err := json.Unmarshal([]byte(made), &hook); status != http.StatusCreated || err != nil {
		t.Fatalf("a webhook: %d %s", status, made)
	}
	u, err := url.Parse(hook.URL)
	if err != nil {
		t.Fatal(err)
	}
	hookPath, secret := u.Path, u.Path[strings.LastIndex(u.Path, "/")+1:]
	if status, _ := hookPost(t, srv, hookPath, "text/plain", ""); status != http.StatusBadRequest {
		t.Fatalf("an empty webhook post: %d, want 400", status)
	}

	errs := fmt.Sprint(hub.Snapshot(100).Errors)
	if !strings.Contains(errs, "POST /join/…") {
		t.Fatalf("the dashboard's errors do not show the refused joins: %s", errs)
	}
	for what, key := range map[string]string{"the invite code": code, "the reset token": token, "the webhook's secret": secret} {
		if strings.Contains(errs, key) {
			t.Errorf("the dashboard's errors show %s: %s", what, errs)
		}
		if strings.Contains(logged.String(), key) {
			t.Errorf("the log shows %s:\n%s", what, logged.String())
		}
	}
}
