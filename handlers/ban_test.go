package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
)

// dialFrom opens the chat page's socket as a guest at addr (the server
// trusts X-Forwarded-For), named name.
func dialFrom(t *testing.T, srvURL, addr, name string) *websocket.Conn {
	t.Helper()
	h := http.Header{"Origin": {srvURL}, "X-Forwarded-For": {addr}}
	c, resp, err := (&websocket.Dialer{Subprotocols: []string{"nochat.v1"}}).Dial("ws"+strings.TrimPrefix(srvURL, "http")+"/?user="+url.QueryEscape(name), h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("%s's socket from %s: %v (%d)", name, addr, err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// An admin bans a guest's address from the dashboard: the guest's pages,
// and every other page from that address, close saying why; the address
// is refused until the ban is lifted from the list of bans. Nobody else
// may ban or lift, and bad input is refused with a reason.
func TestBanAGuestsAddress(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Ann": db.RoleMember})
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)
	ann := signInAs(t, srv, "Ann", "password of Ann", firefox)
	store := auth.store.(*db.Store)

	zed := dialFrom(t, srv.URL, "203.0.113.50", "Zed")
	frame(t, zed, "hello")
	yan := dialFrom(t, srv.URL, "203.0.113.50", "Yan") // behind the same router
	frame(t, yan, "hello")
	other := dialFrom(t, srv.URL, "198.51.100.1", "Uma")
	frame(t, other, "hello")

	// A guest tab of the admin's own address is offered no ban: it
	// would be refused.
	frame(t, dialFrom(t, srv.URL, "127.0.0.1", "Ada's guest tab"), "hello")
	if _, _, page := as(t, srv, "GET", "/admin", ada, nil); strings.Count(page, `action="/admin/bans`) != 3 {
		t.Fatalf("the dashboard offers %d address bans, want 3: Zed's, Yan's and Uma's, not the admin's own", strings.Count(page, `action="/admin/bans`))
	}

	ban := url.Values{"address": {"203.0.113.50"}, "name": {"Zed"}}
	for _, path := range []string{"/admin/bans", "/admin/bans/lift"} {
		if code, _, body := as(t, srv, "POST", path, ann, ban); code != http.StatusForbidden {
			t.Errorf("a member's POST %s: %d %s, want 403", path, code, body)
		}
		if code, _, body := as(t, srv, "POST", path, "", ban); code != http.StatusUnauthorized {
			t.Errorf("a guest's POST %s: %d %s, want 401", path, code, body)
		}
		resp, body := request(t, srv, "POST", path, ban, map[string]string{
			"Cookie": personCookie + "=" + ada, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site",
		})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("another site's POST %s with an admin's cookie: %d %s, want 403", path, resp.StatusCode, body)
		}
	}
	for _, c := range []struct {
		form url.Values
		want int
		says string
	}{
		{url.Values{}, http.StatusBadRequest, "IP address"},
		{url.Values{"address": {"zed.example"}}, http.StatusBadRequest, "IP address"},
		{url.Values{"address": {"203.0.113.0/24"}}, http.StatusBadRequest, "IP address"},
		{url.Values{"address": {"2001:db8::/48"}}, http.StatusBadRequest, "IP address"},
		{url.Values{"address": {"203.0.113.50"}, "name": {strings.Repeat("z", maxBanName+1)}}, http.StatusBadRequest, "1 to 64 characters"},
		{url.Values{"address": {"203.0.113.50"}, "name": {"Z\xffd"}}, http.StatusBadRequest, "UTF-8"},
		{url.Values{"address": {"203.0.113.50"}, "name": {"Z\u202Ed"}}, http.StatusBadRequest, "name"},
		{url.Values{"address": {"127.0.0.1"}}, http.StatusForbidden, "your own address"}, // the admin's, here
		{url.Values{"address": {"::1"}}, http.StatusForbidden, "this machine's own address"},
		{url.Values{"address": {"127.0.0.2"}}, http.StatusForbidden, "this machine's own address"},
		{url.Values{"address": {"::"}}, http.StatusForbidden, "this machine's own address"},
	} {
		if code, _, body := as(t, srv, "POST", "/admin/bans", ada, c.form); code != c.want || !strings.Contains(body, c.says) {
			t.Errorf("POST /admin/bans %v: %d %s, want %d saying %q", c.form, code, body, c.want, c.says)
		}
	}
	if refused, err := store.BannedAddresses(t.Context()); err != nil || len(refused) != 0 {
		t.Fatalf("refused after the refused bans: %v, %v; want none", refused, err)
	}

	if code, _, body := as(t, srv, "POST", "/admin/bans", ada, ban); code != http.StatusSeeOther {
		t.Fatalf("ban: %d %s", code, body)
	}
	closedWith(t, zed, chat.CloseAccountEnded, "address was banned", "Zed's page")
	closedWith(t, yan, chat.CloseAccountEnded, "address was banned", "Yan's page, from the same address")
	if err := other.WriteJSON(map[string]any{"type": "send", "data": map[string]any{"message": "still here", "cid": "u1"}}); err != nil {
		t.Fatal(err)
	}
	frame(t, other, "ack")

	resp, body := request(t, srv, "GET", "/", nil, map[string]string{"X-Forwarded-For": "203.0.113.50"})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "banned") {
		t.Fatalf("GET / from the banned address: %d %s, want 403 saying banned", resp.StatusCode, body)
	}
	if code, _ := postStatusAs(t, srv, "/discussion/back%20again", "203.0.113.50"); code != http.StatusForbidden {
		t.Fatalf("a REST send from the banned address: %d, want 403", code)
	}
	if code, _, body := as(t, srv, "POST", "/admin/bans", ada, ban); code != http.StatusConflict || !strings.Contains(body, "banned already") {
		t.Fatalf("the same ban again: %d %s, want 409", code, body)
	}
	// A browser is told in a page, whose style sheet still loads.
	resp, body = request(t, srv, "GET", "/r/lobby", nil, map[string]string{"X-Forwarded-For": "203.0.113.50", "Accept": "text/html,application/xhtml+xml"})
	if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "<h1>This address is banned</h1>") {
		t.Fatalf("a browser at the banned address: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	css := regexp.MustCompile(`href="(/static/[^"]+\.css[^"]*)"`).FindStringSubmatch(body)
	if css == nil {
		t.Fatalf("the banned page has no style sheet:\n%s", body)
	}
	if resp, _ := request(t, srv, "GET", css[1], nil, map[string]string{"X-Forwarded-For": "203.0.113.50"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("the banned page's style sheet: %d, want 200", resp.StatusCode)
	}
	code, _, page := as(t, srv, "GET", "/admin", ada, nil)
	if code != http.StatusOK || !strings.Contains(page, "Banned addresses") || !strings.Contains(page, "203.0.113.50") || !strings.Contains(page, "Zed (a guest)") {
		t.Fatalf("the dashboard after the ban: %d, want the address listed for Zed", code)
	}
	// The refusals are counted on the list, not logged as errors.
	if !regexp.MustCompile(`refused </span>[3-9] times, last`).MatchString(page) || strings.Contains(page, "banned address") {
		t.Fatalf("the dashboard after 3 refused requests: want them counted on the list of bans, and no error for them:\n%s", page)
	}

	// An IPv6 address is banned by its /64, and lifted by it.
	if code, _, body := as(t, srv, "POST", "/admin/bans", ada, url.Values{"address": {"2001:db8:5:6::7"}}); code != http.StatusSeeOther {
		t.Fatalf("ban of an IPv6 address: %d %s", code, body)
	}
	if resp, _ := request(t, srv, "GET", "/", nil, map[string]string{"X-Forwarded-For": "2001:db8:5:6::99"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET / from the same /64: %d, want 403", resp.StatusCode)
	}

	// An IPv4 address written as IPv6 is the IPv4 address.
	if code, _, body := as(t, srv, "POST", "/admin/bans", ada, url.Values{"address": {"::ffff:198.51.100.77"}}); code != http.StatusSeeOther {
		t.Fatalf("ban of an IPv4-mapped address: %d %s", code, body)
	}
	if resp, _ := request(t, srv, "GET", "/", nil, map[string]string{"X-Forwarded-For": "198.51.100.77"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET / from the IPv4 address banned as ::ffff: %d, want 403", resp.StatusCode)
	}

	// Any address of a /64 lifts its ban.
	for _, address := range []string{"203.0.113.50", "2001:db8:5:6::1234", "198.51.100.77"} {
		if code, _, body := as(t, srv, "POST", "/admin/bans/lift", ada, url.Values{"address": {address}}); code != http.StatusSeeOther {
			t.Fatalf("lift %s: %d %s", address, code, body)
		}
	}
	for _, addr := range []string{"203.0.113.50", "2001:db8:5:6::99"} {
		if resp, body := request(t, srv, "GET", "/", nil, map[string]string{"X-Forwarded-For": addr}); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET / from %s after the lift: %d %.200s", addr, resp.StatusCode, body)
		}
	}
	frame(t, dialFrom(t, srv.URL, "203.0.113.50", "Zed"), "hello")
	if code, _, body := as(t, srv, "POST", "/admin/bans/lift", ada, url.Values{"address": {"203.0.113.50"}}); code != http.StatusNotFound || !strings.Contains(body, "no ban") {
		t.Fatalf("lift again: %d %s, want 404", code, body)
	}

	want := []string{
		"Ada lift address ban 198.51.100.77",
		"Ada lift address ban 2001:db8:5:6::/64",
		"Ada lift address ban 203.0.113.50 (Zed)",
		"Ada ban address 198.51.100.77",
		"Ada ban address 2001:db8:5:6::/64",
		"Ada ban address 203.0.113.50 (Zed)",
	}
	if lines := auditOf(t, auth); strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit = %q\nwant %q", lines, want)
	}
	log, _ := store.AuditLog(t.Context(), 6)
	if d := log[5].Detail; d != "2 open pages closed" {
		t.Fatalf("the ban's detail = %q, want 2 open pages closed", d)
	}
}

// Lifting one address of a banned account frees that address only: the
// account stays banned, its other address refused.
func TestLiftOneAddressOfABannedAccount(t *testing.T) {
	srv, _, auth := peopleServer(t, map[string]string{"Ada": db.RoleAdmin, "Bob": db.RoleMember})
	ada := signInAs(t, srv, "Ada", "password of Ada", firefox)
	for _, addr := range []string{"203.0.113.7", "198.51.100.8"} {
		if code := signIn(t, srv, addr, "Bob", "password of Bob"); code != http.StatusSeeOther {
			t.Fatalf("Bob's sign-in from %s: %d", addr, code)
		}
	}
	if code, _, body := as(t, srv, "POST", peopleURL(t, auth, "Bob", "ban"), ada, nil); code != http.StatusSeeOther {
		t.Fatalf("ban: %d %s", code, body)
	}
	code, _, page := as(t, srv, "GET", "/admin", ada, nil)
	if code != http.StatusOK || !strings.Contains(page, "Bob&#39;s ban") {
		t.Fatalf("the dashboard after Bob's ban: %d, want his addresses listed as Bob's ban", code)
	}
	if code, _, body := as(t, srv, "POST", "/admin/bans/lift", ada, url.Values{"address": {"203.0.113.7"}}); code != http.StatusSeeOther {
		t.Fatalf("lift: %d %s", code, body)
	}
	for addr, want := range map[string]int{"203.0.113.7": http.StatusOK, "198.51.100.8": http.StatusForbidden} {
		if resp, _ := request(t, srv, "GET", "/", nil, map[string]string{"X-Forwarded-For": addr}); resp.StatusCode != want {
			t.Errorf("GET / from %s: %d, want %d", addr, resp.StatusCode, want)
		}
	}
	if code := signIn(t, srv, "203.0.113.7", "Bob", "password of Bob"); code != http.StatusForbidden {
		t.Fatalf("Bob's sign-in from the freed address: %d, want 403 (still banned)", code)
	}
	if lines := auditOf(t, auth); len(lines) == 0 || lines[0] != "Ada lift address ban 203.0.113.7 (Bob's ban)" {
		t.Fatalf("audit = %q, want the lift naming Bob's ban first", lines)
	}
}

// racingBans is the store of an admin's ban or lift during which another
// admin's change of the same address runs to its end: between the first
// change's write and its handler's next step.
type racingBans struct {
	*db.Store
	other func() // the other admin's change
}

func (s racingBans) BanAddress(ctx context.Context, address, name string, now time.Time) error {
	err := s.Store.BanAddress(ctx, address, name, now)
	s.other()
	return err
}

func (s racingBans) UnbanAddress(ctx context.Context, address string) error {
	err := s.Store.UnbanAddress(ctx, address)
	s.other()
	return err
}

type closesNothing struct{}

func (closesNothing) CloseAddresses([]string, string) int { return 0 }

// Two admins ban and lift one address at the same instant: whatever order
// the two handlers then go on in, the address is refused exactly when the
// list of bans says it is banned.
func TestABanAndItsLiftRacingLeaveWhatTheDatabaseSays(t *testing.T) {
	_, _, auth := peopleServer(t, nil)
	store := auth.store.(*db.Store)
	log := slog.New(slog.DiscardHandler)
	noAudit := func(*http.Request, string, string, string) {}
	const zed = "203.0.113.50"
	form := url.Values{"address": {zed}, "name": {"Zed"}}
	serve := func(h http.Handler, path string) {
		t.Helper()
		r := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = "192.0.2.1:1234" // the admin's
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusSeeOther {
			t.Fatalf("POST %s: %d %s", path, w.Code, w.Body)
		}
	}
	ban := func(s addressBanStore) http.Handler {
		return handleBanAddress(log, auth, s, closesNothing{}, false, nil, noAudit)
	}
	lift := func(s addressBanStore) http.Handler { return handleUnbanAddress(log, auth, s, nil, noAudit) }
	refused := func() bool {
		_, err := store.AddressBanOf(context.Background(), zed)
		listed := err == nil
		if got := auth.Banned(zed); got != listed {
			t.Fatalf("%s refused: %t, but listed as banned: %t", zed, got, listed)
		}
		return listed
	}

	// A ban, and its lift by the other admin in between: lifted.
	serve(ban(racingBans{store, func() { serve(lift(store), "/admin/bans/lift") }}), "/admin/bans")
	if refused() {
		t.Fatal("lifted, yet banned")
	}
	// A lift, and a new ban by the other admin in between: banned.
	serve(ban(store), "/admin/bans")
	serve(lift(racingBans{store, func() { serve(ban(store), "/admin/bans") }}), "/admin/bans/lift")
	if !refused() {
		t.Fatal("banned again, yet not refused")
	}
}

// A change of the bans made through another node sets this node's list at
// once and reads it back from the database on a goroutine of its own; Wait
// returns once that read has set the list as the database has it, so that
// shutdown closes the store after it, not under it.
func TestBansChangedElsewhereAreReadBackBeforeWaitReturns(t *testing.T) {
	_, _, auth := peopleServer(t, nil)
	store := auth.store.(*db.Store)
	const zed = "203.0.113.51"
	ctx := context.Background()
	if err := store.BanAddress(ctx, chat.AddressKey(zed), "Zed", time.Now()); err != nil {
		t.Fatal(err)
	}
	// The command says lifted; the database, where a later ban landed,
	// says banned.
	auth.BansChanged([]string{chat.AddressKey(zed)}, false)
	auth.Wait()
	if !auth.Banned(zed) {
		t.Fatal("after Wait, the address is not refused though the database bans it: the read back had not run")
	}
}
