package handlers

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"nochat/chat"
	"nochat/db"
	"nochat/push"
	"nochat/static"
)

// testServer is what the tests' servers differ in. Every one serves the
// real handlers behind a trusted proxy, on a clock moved by hand.
type testServer struct {
	path     string            // the database file; a new one when empty
	password string            // the admin password, as -admin-password gives it
	hub      chat.Options      // the hub's options; TrustProxy is set
	accounts map[string]string // name → role, each with the password "password of NAME"
	deps     func(*Deps)       // changes the handlers' Deps, if set
	push     *push.Options     // Web Push's options; nil: no push
}

// start serves the handlers as ts says; stop ends the server and closes
// the database, and is also run when the test ends.
func (ts testServer) start(t *testing.T) (srv *httptest.Server, clock *handClock, auth *Auth, stop func()) {
	t.Helper()
	ctx := context.Background()
	if ts.path == "" {
		ts.path = filepath.Join(t.TempDir(), "nochat.db")
	}
	store, err := db.Open(ctx, ts.path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, role := range ts.accounts {
		hash, err := bcrypt.GenerateFromPassword([]byte("password of "+name), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		key, _ := chat.NameKey(name)
		if _, err := store.CreateAccount(ctx, db.Account{Name: name, NameKey: key, PasswordHash: string(hash), Role: role, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	ts.hub.TrustProxy = true
	var pusher *push.Sender
	pushCtx, cancelPush := context.WithCancel(context.Background())
	pushDone := make(chan struct{})
	if ts.push != nil {
		if pusher, err = push.New(ctx, store, *ts.push); err != nil {
			t.Fatal(err)
		}
		ts.hub.Pusher = pusher
		go func() { defer close(pushDone); pusher.Run(pushCtx) }()
	} else {
		close(pushDone)
	}
	if ts.hub.Refused == nil {
		// As main wires it: a ban made as a socket opens closes it.
		ts.hub.Refused = func(ip string) bool { return auth.Banned(ip) }
	}
	hub, err := chat.New(store, ts.hub)
	if err != nil {
		t.Fatal(err)
	}
	if auth, err = NewAuth(ctx, store, ts.password, nil); err != nil {
		t.Fatal(err)
	}
	clock = &handClock{t: time.Now()}
	auth.now = clock.now
	deps := Deps{Store: store, Hub: hub, Assets: static.New(), Auth: auth, TrustProxy: true}
	if pusher != nil {
		deps.Push = pusher
	}
	if ts.deps != nil {
		ts.deps(&deps)
	}
	srv = httptest.NewServer(New(deps))
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			hub.Close(ctx)
			cancelPush()
			<-pushDone // its last send done, before the store closes
			store.Close()
		})
	}
	t.Cleanup(stop)
	return srv, clock, auth, stop
}

// peopleServer is a test server over a database with the given accounts
// (name → role), each with the password "password of NAME".
func peopleServer(t *testing.T, accounts map[string]string) (*httptest.Server, *handClock, *Auth) {
	t.Helper()
	srv, clock, auth, _ := testServer{accounts: accounts}.start(t)
	return srv, clock, auth
}

// request sends method path with form (if not nil) and headers straight
// through the transport, so redirects come back as they are, and reads the
// whole answer.
func request(t *testing.T, srv *httptest.Server, method, path string, form url.Values, header map[string]string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Transport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// post sends a form as the client at addr, with extra headers, and returns
// the answer (body read and closed).
func post(t *testing.T, srv *httptest.Server, path, addr string, form url.Values, header map[string]string) *http.Response {
	t.Helper()
	h := map[string]string{"X-Forwarded-For": addr}
	maps.Copy(h, header)
	resp, _ := request(t, srv, "POST", path, form, h)
	return resp
}

func signIn(t *testing.T, srv *httptest.Server, addr, name, password string) int {
	t.Helper()
	return post(t, srv, "/signin", addr, url.Values{"name": {name}, "password": {password}}, nil).StatusCode
}

// The sign-in page says what to do about a forgotten password: there is
// no e-mail to send a link to, an admin makes one.
func TestSignInSaysWhereAForgottenPasswordIsMended(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember})
	resp, page := request(t, srv, "GET", "/signin", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Forgot your password? An admin can give you a link to set a new one.") {
		t.Fatalf("the sign-in page: %d, without a word on a forgotten password", resp.StatusCode)
	}
}

func TestSignInGuessingIsLimitedPerAccountAndPerAddress(t *testing.T) {
	srv, clock, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember})
	for i := range 5 {
		if got := signIn(t, srv, "198.51.100.1", "Ann", "guess"); got != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i+1, got)
		}
	}
	if got := signIn(t, srv, "198.51.100.1", "Ann", "guess"); got != http.StatusTooManyRequests {
		t.Fatalf("a sixth guess from the same address: %d, want 429", got)
	}
	// Another address guessing at the same account is held by the
	// account's own limit, even with the right password.
	if got := signIn(t, srv, "198.51.100.2", "Ann", "password of Ann"); got != http.StatusTooManyRequests {
		t.Fatalf("the account from a second address: %d, want 429", got)
	}
	// A name that is nobody's is answered like a wrong password, after a
	// check that costs the same; the second address is not limited yet.
	clock.add(gateWait(gateFree))
	if got := signIn(t, srv, "198.51.100.2", "Nobody", "guess"); got != http.StatusUnauthorized {
		t.Fatalf("an unknown name: %d, want 401", got)
	}
	// Once the limit refills, the right password signs in.
	clock.add(12 * time.Second)
	if got := signIn(t, srv, "192.0.2.9", "ann", "password of Ann"); got != http.StatusSeeOther {
		t.Fatalf("the right password after the wait: %d, want 303", got)
	}
}

func TestPeopleRoutesRefuseWhoMayNotCallThem(t *testing.T) {
	srv, clock, auth := peopleServer(t, map[string]string{"Ann": db.RoleMember})
	link, err := auth.NewSetupLink(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	token := link[strings.Index(link, "token=")+len("token="):]
	crossSite := map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}

	t.Run("another site's page cannot set up, sign in or sign out", func(t *testing.T) {
		for path, form := range map[string]url.Values{
			"/setup":   {"token": {token}, "name": {"Mallory"}, "password": {"long enough"}},
			"/signin":  {"name": {"Ann"}, "password": {"password of Ann"}},
			"/signout": {},
		} {
			resp := post(t, srv, path, "198.51.100.3", form, crossSite)
			if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) > 0 {
				t.Fatalf("cross-site POST %s: %d with cookies %v, want 403 and none", path, resp.StatusCode, resp.Cookies())
			}
		}
	})
	t.Run("the set-up form refuses a guest's default name", func(t *testing.T) {
		resp := post(t, srv, "/setup", "198.51.100.4", url.Values{"token": {token}, "name": {chat.DefaultUser}, "password": {"long enough"}}, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("set-up as %q: %d, want 400", chat.DefaultUser, resp.StatusCode)
		}
	})
	t.Run("a member is not an admin", func(t *testing.T) {
		resp := post(t, srv, "/signin", "198.51.100.5", url.Values{"name": {"Ann"}, "password": {"password of Ann"}}, nil)
		var session string
		for _, c := range resp.Cookies() {
			if c.Name == personCookie {
				session = c.Value
				if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
					t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/", c)
				}
			}
		}
		if session == "" {
			t.Fatalf("sign-in: %d and no session", resp.StatusCode)
		}
		for _, path := range []string{"/admin", "/admin/live"} {
			req, _ := http.NewRequest("GET", srv.URL+path, nil)
			req.Header.Set("Cookie", personCookie+"="+session)
			r, err := srv.Client().Transport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != http.StatusForbidden {
				t.Fatalf("a member's GET %s: %d, want 403", path, r.StatusCode)
			}
		}
		// Behind a TLS proxy the cookie is Secure.
		resp = post(t, srv, "/signin", "198.51.100.5", url.Values{"name": {"Ann"}, "password": {"password of Ann"}}, map[string]string{"X-Forwarded-Proto": "https"})
		for _, c := range resp.Cookies() {
			if c.Name == personCookie && !c.Secure {
				t.Fatalf("session cookie behind a TLS proxy: %+v, want Secure", c)
			}
		}
	})
	t.Run("sign-in goes back only to this site", func(t *testing.T) {
		for next, want := range map[string]string{"/admin": "/admin", "//evil.example/": "/", "https://evil.example/": "/", "/\\evil.example": "/"} {
			clock.add(time.Minute) // past the account's sign-in limit
			resp := post(t, srv, "/signin", "198.51.100.6", url.Values{"name": {"Ann"}, "password": {"password of Ann"}, "next": {next}}, nil)
			if got := resp.Header.Get("Location"); got != want {
				t.Fatalf("next=%q: to %q, want %q", next, got, want)
			}
		}
	})
}

// A form that cannot be read carries no password: it is refused as such
// and counts no attempt, so it cannot close the login gate on the people
// who sign in after it. (A body cut off by the deadline or over the size
// limit takes the same path; a malformed one is the case a test can send
// without racing the server's close of the connection.)
func TestUnreadableSignInFormsCountNoAttempt(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember})
	for i := range 2 * gateFree {
		req, _ := http.NewRequest("POST", srv.URL+"/signin", strings.NewReader("name=Ann&password=%zz"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", 10+i))
		resp, err := srv.Client().Transport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("malformed form %d: %d, want 400", i+1, resp.StatusCode)
		}
	}
	if got := signIn(t, srv, "192.0.2.1", "Ann", "password of Ann"); got != http.StatusSeeOther {
		t.Fatalf("the right password after %d unreadable forms: %d, want 303", 2*gateFree, got)
	}
}

// A refused sign-in shows the form again with the name kept and the
// password field ready to type in; an empty form starts at the name.
func TestSignInRefusedFocusesThePassword(t *testing.T) {
	srv, _, _ := peopleServer(t, map[string]string{"Ann": db.RoleMember})
	resp, body := request(t, srv, "POST", "/signin", url.Values{"name": {"Ann"}, "password": {"not it"}}, map[string]string{"Accept": "text/html"})
	if resp.StatusCode != http.StatusUnauthorized || !regexp.MustCompile(`<input id="password"[^>]* autofocus`).MatchString(body) ||
		regexp.MustCompile(`<input id="name"[^>]* autofocus`).MatchString(body) || !strings.Contains(body, `value="Ann"`) {
		t.Fatalf("a wrong password: %d, want the form with Ann kept and the password focused:\n%s", resp.StatusCode, body)
	}
	_, body = request(t, srv, "GET", "/signin", nil, map[string]string{"Accept": "text/html"})
	if !regexp.MustCompile(`<input id="name"[^>]* autofocus`).MatchString(body) || regexp.MustCompile(`<input id="password"[^>]* autofocus`).MatchString(body) {
		t.Fatalf("the empty form does not start at the name:\n%s", body)
	}
}
