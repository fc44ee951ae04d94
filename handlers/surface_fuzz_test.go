package handlers_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"nochat/chat"
	"nochat/db"
	"nochat/handlers"
	"nochat/static"
)

// FuzzSurface drives the whole HTTP surface, as a client on the network
// would: the fuzzer chooses the method, the request target, the headers
// (Host, Origin, cookies, Content-Type, X-Forwarded-For, the WebSocket
// handshake, HX-Request, anything) and the body; the request goes as raw
// bytes over a real TCP connection to the real handler (handlers.New over a
// real SQLite file and a real hub), so upgrades really hijack and run a
// session. It fails on any panic, recovered or not, on any answer that does
// not come within surfaceDeadline, and on any 5xx but the one a shutdown
// explains (see surfaceFuzzer.check).
//
// The input is: mode (bit 0: send to the server whose hub is shut down;
// bit 1: send the body chunked; bit 2: hold the body back and, if the
// server upgrades, send it as the socket's first text frame), method,
// target, header and body. header is
// "Name: value" lines; "$HOST" in it stands for the server's host:port,
// "$SESSION" for a logged-in admin's cookie value and "$USER" for a
// signed-in member's (who is in the private room "den" and the direct room
// "dm-fuzz", and may join the open room "hall"). A line-less Host gets
// the server's. The harness owns the framing: it removes CR and LF from the
// request line and the headers (or the fuzzer would write its own
// requests), drops Transfer-Encoding (net/http answers an unknown one with
// 501, before NoChat sees it), and pads or cuts the body to a fuzzed
// Content-Length up to 1 MiB (a body shorter than announced would only
// make the server wait for the rest: that is the body timeout's test, not
// this one's).
//
//	go test -run '^$' -fuzz '^FuzzSurface$' -fuzztime 20s ./handlers
func FuzzSurface(f *testing.F) {
	for _, s := range surfaceSeeds(static.New()) {
		f.Add(s.mode, s.method, s.target, s.header, []byte(s.body))
	}
	fz := newSurfaceFuzzer(f)
	f.Fuzz(func(t *testing.T, mode uint8, method, target, header string, body []byte) {
		fz.check(t, mode, method, target, header, body)
	})
}

// surfaceDeadline bounds each fuzzed exchange. A loopback answer that takes
// longer is a server stuck on its input.
const surfaceDeadline = 10 * time.Second

// maxFuzzContentLength is the largest fuzzed Content-Length the harness
// pads a body to; a larger one is replaced by the body's own length.
const maxFuzzContentLength = 1 << 20

type surfaceSeed struct {
	mode                         uint8
	method, target, header, body string
}

// surfaceSeeds start the fuzzer on every route, each one way it is meant to
// be used and a few ways it is not.
func surfaceSeeds(assets *static.Assets) []surfaceSeed {
	const (
		host     = "Host: $HOST\n"
		v1       = host + "Connection: Upgrade\nUpgrade: websocket\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Protocol: nochat.v1\n"
		echo     = host + "Connection: keep-alive, Upgrade\nUpgrade: WebSocket\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\nSec-WebSocket-Protocol: echo-protocol\n"
		session  = "Cookie: nochat_admin=$SESSION\n"
		user     = "Cookie: nochat_session=$USER\n"
		jsonPost = host + "Content-Type: application/json\n"
		form     = host + "Content-Type: application/x-www-form-urlencoded\n"
		htmx     = host + session + "HX-Request: true\nOrigin: http://$HOST\nSec-Fetch-Site: same-origin\n"
		asUser   = jsonPost + user
	)
	return []surfaceSeed{
		// The page and the socket.
		{0, "GET", "/", host + "Accept: text/html\nCookie: a=b; nochat_admin=x\n", ""},
		{0, "HEAD", "/", host, ""},
		{4, "GET", "/?after=0&user=ann", v1 + "Origin: http://$HOST\n", `{"type":"send","message":"hi","cid":"c1"}`},
		{4, "GET", "/", echo, "hello from the tutorial"},
		{4, "GET", "/", echo, "\xff\xfe not UTF-8"},
		{0, "GET", "/", echo, "data before the handshake is complete"},
		{0, "GET", "/?after=abc", v1, ""},
		{0, "GET", "/?user=" + strings.Repeat("n", 40), v1, ""},
		{0, "GET", "/", v1 + "Origin: https://evil.example\n", ""},
		{0, "GET", "/", strings.Replace(v1, "nochat.v1", "nochat.v2, chat", 1), ""},
		{4, "GET", "/", v1 + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\n", `{"type":"typing"}`},
		{0, "GET", "/", strings.Replace(v1, "13", "8", 1), ""},
		{0, "GET", "/", strings.Replace(v1, "dGhlIHNhbXBsZSBub25jZQ==", "short", 1), ""},
		{0, "POST", "/", v1, ""},
		{1, "GET", "/", v1, ""},
		{4, "GET", "/", v1 + "X-Forwarded-For: 203.0.113.7, 10.0.0.1\n", `{"type":"nick","user":"zoe"}`},
		{4, "GET", "/", v1 + "Cookie: nochat_admin=$SESSION\n", `{"type":"t0"}`},
		// The tutorial's REST routes.
		{0, "GET", "/discussion/latest/5", host + "Origin: https://other.example\n", ""},
		{0, "GET", "/discussion/latest/0", host, ""},
		{0, "GET", "/discussion/latest/%2F", host, ""},
		{0, "GET", "/discussion?before=3&limit=2", host, ""},
		{0, "GET", "/discussion?before=x&limit=2&limit=3", host, ""},
		{0, "POST", "/discussion/hello%20world?user=bob", host + "X-Forwarded-For: 198.51.100.1\n", ""},
		{0, "POST", "/discussion/%20", host, ""},
		{0, "POST", "/discussion", jsonPost + "Idempotency-Key: k-1\n", `{"user":"ann","message":"hi"}`},
		{0, "POST", "/discussion", jsonPost + "Origin: https://evil.example\n", `{"message":"from elsewhere"}`},
		{0, "POST", "/discussion", jsonPost, `{"message":` + strings.Repeat("[", 500)},
		{2, "POST", "/discussion", jsonPost, `{"message":"chunked"}`},
		{0, "POST", "/discussion", jsonPost + "Expect: 100-continue\n", `{"message":"continued"}`},
		{0, "POST", "/discussion", jsonPost + "Content-Length: 70000\n", `{"message":"`},
		{0, "POST", "/discussion", jsonPost + "Content-Length: +5\n", `{"message":"x"}`},
		{1, "POST", "/discussion", jsonPost, `{"message":"while shutting down"}`},
		{1, "POST", "/discussion/shutting%20down", host, ""},
		{0, "PUT", "/discussion", jsonPost, `{}`},
		{0, "OPTIONS", "/discussion", host + "Origin: https://other.example\nAccess-Control-Request-Method: POST\n", ""},
		// The rooms' routes, as a member and as a guest.
		{0, "GET", "/rooms", host + user, ""},
		{0, "GET", "/rooms?include=open", host + user, ""},
		{0, "GET", "/rooms?include=open&include=x", host, ""},
		{0, "POST", "/rooms", asUser, `{"name":"3D printers!","kind":"open","topic":"PLA","post":"members","guests":true}`},
		{0, "POST", "/rooms", asUser, `{"name":"!!!","kind":"private","members":["nobody"]}`},
		{0, "POST", "/rooms", asUser, `{"kind":"direct","members":["fuzzer","fuzzer"]}`},
		{0, "POST", "/rooms", asUser, `{"name":"a\u202eb","kind":"open"}{}`},
		{0, "POST", "/rooms", jsonPost, `{"name":"guest","kind":"open"}`},
		{0, "POST", "/rooms", host + user + "Content-Type: text/plain\n", `{"name":"x","kind":"open"}`},
		{1, "POST", "/rooms", asUser, `{"name":"while shutting down","kind":"open"}`},
		{0, "GET", "/rooms/den", host + user, ""},
		{0, "GET", "/rooms/den", host, ""},
		{0, "GET", "/rooms/%2F..%2Fden", host + user, ""},
		{0, "GET", "/rooms/" + strings.Repeat("%C3%A9", 300), host + user, ""},
		{0, "PATCH", "/rooms/den", asUser, `{"name":"Den 2","topic":"t","post":"admins","guests":true,"archived":false}`},
		{0, "PATCH", "/rooms/lobby", asUser, `{"archived":true}`},
		{0, "PATCH", "/rooms/lobby", jsonPost + session, `{"archived":false}`},
		{0, "POST", "/rooms/hall/join", asUser, `{}`},
		{0, "POST", "/rooms/hall/leave", asUser + "Origin: https://evil.example\n", `{}`},
		{0, "POST", "/rooms/lobby/leave", asUser, `{}`},
		{0, "POST", "/rooms/den/members", asUser, `{"user":"fuzzer"}`},
		{0, "POST", "/rooms/dm-fuzz/members", asUser, `{"user":"fuzzer"}`},
		{0, "GET", "/rooms/den/messages/latest/3", host + user, ""},
		{0, "GET", "/rooms/dm-fuzz/messages/latest/99999999999999999999", host + user, ""},
		{0, "GET", "/rooms/den/messages?before=2&limit=1", host + user, ""},
		{0, "GET", "/rooms/hall/messages?before=-1&limit=0", host, ""},
		{0, "POST", "/rooms/den/messages", asUser + "Idempotency-Key: r-1\n", `{"message":"in the den"}`},
		{0, "POST", "/rooms/hall/messages", jsonPost, `{"message":"a guest"}`},
		{1, "POST", "/rooms/den/messages", asUser, `{"message":"while shutting down"}`},
		{2, "PATCH", "/rooms/den", asUser, `{"topic":"chunked"}`},
		{4, "GET", "/?after=0", v1 + user, `{"type":"send","data":{"room":2,"message":"hi","cid":"c"}}`},
		{4, "GET", "/", v1 + user, `{"type":"read","data":{"room":2,"id":1}}`},
		{4, "GET", "/", v1 + user, `{"type":"typing","data":{"room":9223372036854775807}}`},
		{4, "GET", "/", v1, `{"type":"read","data":{"room":-1,"id":0}}`},
		{0, "DELETE", "/rooms/den/members/-9223372036854775808", host + user, ""},
		{0, "DELETE", "/rooms/hall/members/1", host + user, ""}, // last of the rooms': the member leaves
		// Health, static files, metrics.
		{0, "GET", "/healthz", host, ""},
		{0, "GET", "/healthz", host + "Content-Length: 3\n", "abc"},
		{0, "GET", assets.URL("app.js"), host + "Range: bytes=0-10\n", ""},
		{0, "GET", assets.URL("style.css"), host + "If-None-Match: \"x\"\n", ""},
		{0, "GET", "/static/../go.mod", host, ""},
		{0, "GET", "/static/", host, ""},
		{0, "GET", "/metrics", host + "Accept: application/openmetrics-text\n", ""},
		// The admin dashboard, without and with a session.
		{0, "GET", "/admin", host + "Accept: text/html\n", ""},
		{0, "GET", "/admin/", host, ""},
		{0, "GET", "/admin/live", host + "HX-Request: true\n", ""},
		{0, "GET", "/admin", host + session, ""},
		{0, "GET", "/admin/live", htmx, ""},
		{0, "GET", "/admin/login", host, ""},
		{0, "POST", "/admin/login", form + "X-Forwarded-For: 192.0.2.9\n", "password=wrong"},
		{0, "POST", "/admin/login", form + "Origin: https://evil.example\nSec-Fetch-Site: cross-site\n", "password=x"},
		{0, "POST", "/admin/login", form, "password=" + url.QueryEscape(adminPassword)},
		{0, "POST", "/admin/logout", host + "Cookie: nochat_admin=" + strings.Repeat("v", 4000) + "\n", ""},
		{0, "POST", "/admin/sessions/abc/disconnect", htmx, ""},
		{0, "POST", "/admin/nodes/n1/sessions/abc/disconnect", htmx, ""},
		{0, "POST", "/admin/messages/1/delete", htmx, ""},
		{0, "POST", "/admin/messages/-1/delete", host + session, ""},
		{0, "POST", "/admin/errors/clear", htmx, ""},
		{0, "POST", "/admin/errors/clear", host, ""},
		{1, "POST", "/admin/messages/2/delete", htmx, ""},
		{0, "GET", "/admin/nothing", host + session, ""},
		{0, "POST", "/admin/logout", host + session, ""}, // last: today a new login in the same second gets the same, revoked, cookie
		// Not routes, and not requests.
		{0, "GET", "/nothing/here", host, ""},
		{0, "GET", "//discussion/../admin", host, ""},
		{0, "GET", "http://$HOST/discussion/latest/1", "Host: other.example\n", ""},
		{0, "OPTIONS", "*", host, ""},
		{0, "BREW", "/", host, ""},
		{0, "GET", "/", "", ""},
		{0, "GET", "/", host + "Host: second.example\n", ""},
		{0, "GET", "/", host + "X: " + strings.Repeat("h", 8000) + "\n", ""},
		{0, "GET", "/%zz", host, ""},
	}
}

// surfaceFuzzer is the server under fuzzing, set up once per fuzzing
// process: one store, a live hub and one already shut down, each behind
// the whole handler on a real listener.
type surfaceFuzzer struct {
	live, closed *httptest.Server
	panics       *atomic.Int64 // panics recovered anywhere in either hub or handler

	session atomic.Value // the admin cookie value "$SESSION" stands for
	person  atomic.Value // the member's cookie value "$USER" stands for
	logins  atomic.Int64 // logins so far: each comes from its own address
}

// panicCounter is the hubs' Observer: it counts the recovered panics the
// hub files in its error log (a handler's, through recoverPanics, or a
// session's), which the client may never see.
type panicCounter struct {
	*handlers.Metrics
	n *atomic.Int64
}

func (p panicCounter) Error(kind string) {
	if kind == chat.KindPanic {
		p.n.Add(1)
	}
	p.Metrics.Error(kind)
}

func newSurfaceFuzzer(f *testing.F) *surfaceFuzzer {
	f.Helper()
	store, err := db.Open(context.Background(), filepath.Join(f.TempDir(), "nochat.db"), db.Options{Durability: db.Normal})
	if err != nil {
		f.Fatal(err)
	}
	drafts := make([]db.Draft, 20)
	for i := range drafts {
		drafts[i] = db.Draft{User: "ann", Message: fmt.Sprint("m", i+1)}
	}
	if _, err := store.Insert(context.Background(), drafts); err != nil {
		f.Fatal(err)
	}
	// The member "$USER" signs in as, in rooms of each kind, made before
	// the hubs load the rooms.
	hash, err := bcrypt.GenerateFromPassword([]byte(fuzzUserPassword), bcrypt.MinCost)
	if err != nil {
		f.Fatal(err)
	}
	key, _ := chat.NameKey(fuzzUser)
	member, err := store.CreateAccount(context.Background(), db.Account{Name: fuzzUser, NameKey: key, PasswordHash: string(hash), Role: db.RoleMember, Created: time.Now()})
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range []db.Room{
		{Slug: "den", Name: "Den", Kind: db.KindPrivate, CreatedBy: member.ID},
		{Slug: "hall", Name: "Hall", Kind: db.KindOpen, Guests: true},
		{Slug: "dm-fuzz", Kind: db.KindDirect, CreatedBy: member.ID},
	} {
		var in []int64
		if r.Kind != db.KindOpen {
			in = []int64{member.ID}
		}
		if _, _, err := store.CreateRoom(context.Background(), r, in); err != nil {
			f.Fatal(err)
		}
	}
	fz := &surfaceFuzzer{panics: new(atomic.Int64)}
	serve := func(shutDown bool) *httptest.Server {
		metrics := handlers.NewMetrics()
		hub, err := chat.New(store, chat.Options{Observer: panicCounter{metrics, fz.panics}, TrustProxy: true})
		if err != nil {
			f.Fatal(err)
		}
		auth, err := handlers.NewAuth(context.Background(), store, adminPassword, nil)
		if err != nil {
			f.Fatal(err)
		}
		closeHub := func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			hub.Close(ctx)
		}
		if shutDown {
			closeHub()
		}
		// The limits as the binary sets them (-msg-rate 10), behind a
		// proxy so that X-Forwarded-For is an input too.
		srv := httptest.NewServer(handlers.New(handlers.Deps{
			Store: store, Hub: hub, Assets: static.New(), Auth: auth, Metrics: metrics, Version: "fuzz",
			TrustProxy: true, AllowOrigins: []string{"https://other.example"}, SendRate: 10, SendBurst: 20,
		}))
		f.Cleanup(func() {
			srv.Close()
			closeHub()
		})
		return srv
	}
	fz.live = serve(false)
	fz.closed = serve(true)
	f.Cleanup(func() { store.Close() })
	fz.session.Store("")
	fz.person.Store("")
	fz.login(f)
	fz.signIn(f)
	if fz.person.Load().(string) == "" {
		f.Fatal("the member could not sign in: $USER would fuzz as a guest")
	}
	return fz
}

// The member "$USER" stands for.
const (
	fuzzUser         = "fuzzer"
	fuzzUserPassword = "password of the fuzzer"
)

// signIn gets a fresh member session for "$USER", as login does the
// admin's.
func (fz *surfaceFuzzer) signIn(tb testing.TB) {
	n := fz.logins.Add(1)
	form := url.Values{"name": {fuzzUser}, "password": {fuzzUserPassword}}.Encode()
	header := fmt.Sprintf("Host: %s\nContent-Type: application/x-www-form-urlencoded\nX-Forwarded-For: 10.251.%d.%d\n",
		fz.live.Listener.Addr(), byte(n>>8), byte(n))
	resp, _, err := exchange(fz.live, "POST", "/signin", header, []byte(form), nil, false)
	if err != nil {
		tb.Logf("sign in: %v", err)
		return
	}
	for _, c := range resp.Cookies() {
		if c.Name == "nochat_session" && c.Value != "" && c.MaxAge >= 0 {
			fz.person.Store(c.Value)
		}
	}
}

// login gets a fresh admin session for "$SESSION", from an address of its
// own so that the login limit per address does not stand in the way. It is
// best effort: with no session the admin routes are fuzzed logged out.
func (fz *surfaceFuzzer) login(tb testing.TB) {
	n := fz.logins.Add(1)
	form := "password=" + url.QueryEscape(adminPassword)
	header := fmt.Sprintf("Host: %s\nContent-Type: application/x-www-form-urlencoded\nX-Forwarded-For: 10.250.%d.%d\n",
		fz.live.Listener.Addr(), byte(n>>8), byte(n))
	resp, _, err := exchange(fz.live, "POST", "/admin/login", header, []byte(form), nil, false)
	if err != nil {
		tb.Logf("admin login: %v", err)
		return
	}
	for _, c := range resp.Cookies() {
		if c.Name == "nochat_admin" && c.Value != "" {
			fz.session.Store(c.Value)
		}
	}
}

// check sends one fuzzed request and judges the answer.
func (fz *surfaceFuzzer) check(t *testing.T, mode uint8, method, target, header string, body []byte) {
	srv := fz.live
	if mode&1 != 0 {
		srv = fz.closed
	}
	session, person := fz.session.Load().(string), fz.person.Load().(string)
	header = strings.NewReplacer("$HOST", srv.Listener.Addr().String(), "$SESSION", session, "$USER", person).Replace(header)
	target = strings.ReplaceAll(target, "$HOST", srv.Listener.Addr().String())
	panicsBefore := fz.panics.Load()

	var frame []byte
	if mode&4 != 0 {
		frame, body = body, nil
	}
	resp, got, err := exchange(srv, method, target, header, body, frame, mode&2 != 0)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("%s %q: no answer in %s: %v\nheaders:\n%s", method, target, surfaceDeadline, err, header)
	case err != nil:
		// No answer at all: net/http closes a connection it cannot parse
		// a request from without one in a few cases (a line too long to
		// be a request line). A panic does not end here: it is counted.
		return
	}
	defer func() {
		if t.Failed() {
			t.Logf("request: mode %d %s %q\nheaders:\n%s\nbody: %q", mode, method, target, header, clip(body))
		}
	}()
	if n := fz.panics.Load() - panicsBefore; n > 0 {
		t.Fatalf("%d panic(s) recovered while serving: answered %d %q", n, resp.StatusCode, clip(got))
	}
	if resp.StatusCode >= 500 && !shutdownRefusal(srv == fz.closed, method, target, resp.StatusCode) {
		t.Fatalf("answered %d %q", resp.StatusCode, clip(got))
	}
	// 412 answers a conditional request (If-Match on a static file) as
	// HTTP means it: like 304, it carries no body. 417 is net/http's own
	// answer to an Expect other than 100-continue, sent before any handler
	// runs, with no body.
	if resp.StatusCode >= 400 && resp.StatusCode != http.StatusPreconditionFailed && resp.StatusCode != http.StatusExpectationFailed && method != "HEAD" && len(bytes.TrimSpace(got)) == 0 {
		t.Fatalf("answered %d with no reason", resp.StatusCode)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "nochat.v1" && p != "echo-protocol" {
			t.Fatalf("upgraded to subprotocol %q", p)
		}
		if srv == fz.closed {
			t.Fatal("a hub that is shut down upgraded a socket")
		}
	}
	// A logout ends "$SESSION", a sign-out "$USER": sign in again for the
	// next inputs.
	for _, c := range resp.Cookies() {
		if c.Name == "nochat_admin" && c.MaxAge < 0 && session != "" && strings.Contains(header, session) {
			fz.login(t)
		}
		if c.Name == "nochat_session" && c.MaxAge < 0 && person != "" && strings.Contains(header, person) {
			fz.signIn(t)
		}
	}
}

// shutdownRefusal reports whether a 5xx is the one answer a server gives
// while it shuts down: 503 to a request that needs the hub (a socket, a
// send, a room change) once the hub is closed. A live server has no 5xx to give to any
// request: its disk is fine, and the harness never hangs up on it early.
func shutdownRefusal(closedHub bool, method, target string, status int) bool {
	if !closedHub || status != http.StatusServiceUnavailable {
		return false
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return false
	}
	rooms := u.Path == "/rooms" || strings.HasPrefix(u.Path, "/rooms/")
	// Deleting a message is a change in the log, as a send is.
	deletion := method == "POST" && strings.HasPrefix(u.Path, "/admin/messages/") && strings.HasSuffix(u.Path, "/delete")
	return (method == "GET" && u.Path == "/") || (method == "POST" && (u.Path == "/discussion" || strings.HasPrefix(u.Path, "/discussion/"))) ||
		(method != "GET" && method != "HEAD" && rooms) || deletion
}

func clip(b []byte) []byte {
	if len(b) > 300 {
		return append(b[:300:300], "…"...)
	}
	return b
}

// exchange writes one request as raw bytes on a new connection to srv and
// reads the answer (past any 100 Continue). A 101 is answered by sending
// frame, if any, as one WebSocket text frame, then a close.
func exchange(srv *httptest.Server, method, target, header string, body, frame []byte, chunked bool) (*http.Response, []byte, error) {
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(surfaceDeadline))
	// A write cut short is not an error here: the server may answer, and
	// close, before it has read everything (431 for headers too large).
	conn.Write(fuzzedRequest(srv, method, target, header, body, chunked))
	br := bufio.NewReader(conn)
	for range 10 {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return nil, nil, err
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			if len(frame) > 0 {
				conn.Write(maskedFrame(0x1, frame))
			}
			conn.Write(maskedFrame(0x8, []byte{0x03, 0xe8})) // close 1000
			return resp, nil, nil
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			continue
		}
		got, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		resp.Body.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, nil, err
		}
		return resp, got, nil
	}
	return nil, nil, errors.New("ten informational answers in a row")
}

// fuzzedRequest writes the request as the fuzzer asked, within the framing
// rules in FuzzSurface's comment.
func fuzzedRequest(srv *httptest.Server, method, target, header string, body []byte, chunked bool) []byte {
	oneLine := strings.NewReplacer("\r", "", "\n", "")
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", oneLine.Replace(method), oneLine.Replace(target))
	hasHost, length := false, ""
	for line := range strings.SplitSeq(strings.ReplaceAll(header, "\r", ""), "\n") {
		if line == "" {
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "transfer-encoding":
			continue
		case "content-length":
			length = strings.TrimSpace(value)
			if n, err := strconv.Atoi(length); err == nil && n >= 0 {
				if n > maxFuzzContentLength {
					length = ""
					continue
				}
				if n < len(body) {
					body = body[:n]
				} else {
					body = append(body, bytes.Repeat([]byte{'x'}, n-len(body))...)
				}
			}
		case "host":
			hasHost = true
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	if !hasHost {
		fmt.Fprintf(&b, "Host: %s\r\n", srv.Listener.Addr())
	}
	switch {
	case chunked && length == "":
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		if len(body) > 0 {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(body), body)
		}
		b.WriteString("0\r\n\r\n")
		return b.Bytes()
	case length == "" && (len(body) > 0 || method == "POST" || method == "PUT"):
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// maskedFrame is one final WebSocket frame from a client (masked, as a
// client's must be).
func maskedFrame(opcode byte, payload []byte) []byte {
	b := []byte{0x80 | opcode}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	rand.Read(mask[:])
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}
