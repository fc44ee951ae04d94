package handlers_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
	"nochat/handlers"
	"nochat/static"
)

type app struct {
	srv     *httptest.Server
	store   *db.Store
	hub     *chat.Hub
	metrics *handlers.Metrics
}

const adminPassword = "correct horse battery staple"

// newApp serves the real handlers over a real database file.
func newApp(t *testing.T) *app {
	t.Helper()
	return newAppWith(t, nil)
}

// newAppWith is newApp with its Deps changed by change.
func newAppWith(t *testing.T, change func(*handlers.Deps)) *app {
	t.Helper()
	store, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	metrics := handlers.NewMetrics()
	hub, err := chat.New(store, chat.Options{Observer: metrics})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := handlers.NewAuth(context.Background(), store, adminPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	deps := handlers.Deps{
		Store: store, Hub: hub, Assets: static.New(), Auth: auth, Metrics: metrics, Version: "test",
		SendRate: 1000, SendBurst: 1000,
	}
	if change != nil {
		change(&deps)
	}
	srv := httptest.NewServer(handlers.New(deps))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Close(ctx)
		store.Close()
	})
	return &app{srv: srv, store: store, hub: hub, metrics: metrics}
}

// serveStore serves the handlers, with a hub and default options, over s.
// The hub and s are closed when the test or benchmark ends.
func serveStore(tb testing.TB, s *db.Store) http.Handler {
	tb.Helper()
	hub, err := chat.New(s, chat.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Close(ctx)
		s.Close()
	})
	// example.com is the host of httptest.NewRequest's requests.
	return handlers.New(handlers.Deps{Store: s, Hub: hub, Assets: static.New(), AllowHosts: []string{"example.com"}})
}

type response struct {
	status int
	header http.Header
	body   string
}

func (a *app) do(t *testing.T, method, path, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	client := a.srv.Client()
	if len(body) > 64<<10 {
		// A body the server refuses unread: asked for first, as curl does,
		// or its write can meet the reset of the closed connection before
		// the refusal is read (broken pipe, seen in TestJSONSend).
		req.Header.Set("Expect", "100-continue")
		asks := client.Transport.(*http.Transport).Clone()
		asks.ExpectContinueTimeout = 10 * time.Second
		client = &http.Client{Transport: asks}
	}
	return roundTrip(t, client, req)
}

// roundTrip sends req with client and reads the whole answer.
func roundTrip(t *testing.T, client *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

func (a *app) send(t *testing.T, texts ...string) {
	t.Helper()
	for _, text := range texts {
		if _, err := a.hub.Send(context.Background(), "ann", text); err != nil {
			t.Fatal(err)
		}
	}
}

func decodeMessages(t *testing.T, r response) []db.Message {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	var msgs []db.Message
	if err := json.Unmarshal([]byte(r.body), &msgs); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return msgs
}

func joined(msgs []db.Message) string {
	var s []string
	for _, m := range msgs {
		s = append(s, m.Message)
	}
	return strings.Join(s, ",")
}

func TestLatest(t *testing.T) {
	a := newApp(t)
	if r := a.do(t, "GET", "/discussion/latest/5", ""); r.status != 200 || strings.TrimSpace(r.body) != "[]" {
		t.Fatalf("empty room: %d %q, want 200 []", r.status, r.body)
	}
	a.send(t, "a", "b", "c", "d")
	r := a.do(t, "GET", "/discussion/latest/3", "")
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	msgs := decodeMessages(t, r)
	if got, want := joined(msgs), "b,c,d"; got != want {
		t.Fatalf("latest 3 = %q, want %q (oldest first)", got, want)
	}
	var raw []map[string]any
	json.Unmarshal([]byte(r.body), &raw)
	for _, field := range []string{"id", "user", "message", "timestamp"} {
		if _, ok := raw[0][field]; !ok {
			t.Errorf("message lacks %q: %s", field, r.body)
		}
	}
	for _, n := range []string{"0", "-1", "abc", "501", "100000", "1e9", "2.5", strings.Repeat("9", 10000)} {
		t.Run("n="+n[:min(len(n), 10)], func(t *testing.T) {
			r := a.do(t, "GET", "/discussion/latest/"+n, "")
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", r.status)
			}
			var e struct{ Error string }
			if json.Unmarshal([]byte(r.body), &e); e.Error == "" {
				t.Fatalf("body %q, want {\"error\": ...}", r.body)
			}
		})
	}
}

func TestHistoryPaging(t *testing.T) {
	a := newApp(t)
	a.send(t, "1", "2", "3", "4", "5", "6")
	latest := decodeMessages(t, a.do(t, "GET", "/discussion/latest/6", ""))
	fifth := latest[4].ID

	tests := []struct {
		query  string
		status int
		want   string
	}{
		{"", 200, "1,2,3,4,5,6"},
		{"?limit=2", 200, "5,6"},
		{"?before=" + strconv.FormatInt(fifth, 10) + "&limit=2", 200, "3,4"},
		{"?before=" + strconv.FormatInt(fifth, 10), 200, "1,2,3,4"},
		{"?before=1", 200, ""},
		{"?before=abc", 400, ""},
		{"?before=0", 400, ""},
		{"?before=-5", 400, ""},
		{"?limit=0", 400, ""},
		{"?limit=501", 400, ""},
		{"?limit=x", 400, ""},
		{"?before=5&before=6", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := a.do(t, "GET", "/discussion"+tt.query, "")
			if r.status != tt.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tt.status, r.body)
			}
			if tt.status == 200 {
				if got := joined(decodeMessages(t, r)); got != tt.want {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			}
		})
	}
}

func TestTutorialSend(t *testing.T) {
	a := newApp(t)
	r := a.do(t, "POST", "/discussion/"+url.PathEscape("hello world <b>& 🎉")+"?user=bob", "")
	if r.status != 200 || strings.TrimSpace(r.body) != `{"status":"OK"}` {
		t.Fatalf("got %d %q, want 200 {\"status\":\"OK\"}", r.status, r.body)
	}
	msgs := decodeMessages(t, a.do(t, "GET", "/discussion/latest/1", ""))
	if len(msgs) != 1 || msgs[0].Message != "hello world <b>& 🎉" || msgs[0].User != "bob" {
		t.Fatalf("stored %+v", msgs)
	}
	a.do(t, "POST", "/discussion/anonymous", "")
	if m := decodeMessages(t, a.do(t, "GET", "/discussion/latest/1", "")); m[0].User != "guest" {
		t.Fatalf("user without ?user= = %q, want guest", m[0].User)
	}
	for name, path := range map[string]string{
		"whitespace only": "/discussion/%20%20",
		"too long":        "/discussion/" + strings.Repeat("x", 2001),
		"bad name":        "/discussion/hi?user=" + strings.Repeat("n", 33),
	} {
		if r := a.do(t, "POST", path, ""); r.status != 400 || !strings.Contains(r.body, `"error"`) {
			t.Errorf("%s: %d %q, want 400 with an error", name, r.status, r.body)
		}
	}
}

func TestJSONSend(t *testing.T) {
	a := newApp(t)
	r := a.do(t, "POST", "/discussion", `{"user":"ann","message":"Robert'); DROP TABLE messages;--"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("status %d %q, want 201", r.status, r.body)
	}
	var m db.Message
	if err := json.Unmarshal([]byte(r.body), &m); err != nil || m.ID == 0 || m.User != "ann" || m.Message != "Robert'); DROP TABLE messages;--" || m.Timestamp == 0 {
		t.Fatalf("body %q: %+v %v", r.body, m, err)
	}
	tests := []struct {
		name, body string
		status     int
	}{
		{"malformed", `{"user":`, 400},
		{"not an object", `"hi"`, 400},
		{"two objects", `{"message":"a"}{"message":"b"}`, 400},
		{"missing message", `{"user":"ann"}`, 400},
		{"message not a string", `{"message":5}`, 400},
		{"empty message", `{"message":""}`, 400},
		{"too large", `{"message":"` + strings.Repeat("x", 100<<10) + `"}`, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.do(t, "POST", "/discussion", tt.body)
			if r.status != tt.status || !strings.Contains(r.body, `"error":`) {
				t.Fatalf("got %d %q, want %d with an error", r.status, r.body, tt.status)
			}
		})
	}
	if got := decodeMessages(t, a.do(t, "GET", "/discussion/latest/10", "")); len(got) != 1 {
		t.Fatalf("%d messages stored, want only the good one", len(got))
	}
}

func TestChatPageRendersHistoryEscaped(t *testing.T) {
	a := newApp(t)
	a.send(t, "first message", "<script>alert(1)</script>")
	r := a.do(t, "GET", "/", "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, Content-Type %q", r.status, r.header.Get("Content-Type"))
	}
	if !strings.Contains(r.body, "first message") {
		t.Fatal("page lacks the stored message")
	}
	if !strings.Contains(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatal("page lacks the escaped script message")
	}
	if strings.Contains(r.body, "<script>alert(1)</script>") {
		t.Fatal("page contains the script message unescaped")
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("Content-Security-Policy = %q", csp)
	}
}

func TestRootUpgradesWebSockets(t *testing.T) {
	a := newApp(t)
	d := websocket.Dialer{Subprotocols: []string{"echo-protocol"}}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(a.srv.URL, "http")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.WriteMessage(websocket.TextMessage, []byte("via the page's route"))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := conn.ReadMessage(); err != nil || string(b) != "via the page's route" {
		t.Fatalf("got %q, %v", b, err)
	}
	// A foreign page may not open a socket for its visitors.
	hdr := http.Header{"Origin": {"http://evil.example"}}
	if _, resp, err := d.Dial("ws"+strings.TrimPrefix(a.srv.URL, "http")+"/", hdr); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin upgrade: %v %v, want 403", err, resp)
	}
}

func TestHealthStaticAndMethods(t *testing.T) {
	a := newApp(t)
	if r := a.do(t, "GET", "/healthz", ""); r.status != 200 || strings.TrimSpace(r.body) != "ok" {
		t.Fatalf("healthz: %d %q", r.status, r.body)
	}
	assets := static.New()
	r := a.do(t, "GET", assets.URL("app.js"), "")
	if r.status != 200 || !strings.Contains(r.header.Get("Cache-Control"), "immutable") {
		t.Fatalf("app.js: %d, Cache-Control %q", r.status, r.header.Get("Cache-Control"))
	}
	for _, p := range []string{"/static/", "/static/nope.js", "/static/../main.go", "/static/%2e%2e/go.mod"} {
		if r := a.do(t, "GET", p, ""); r.status == 200 {
			t.Errorf("GET %s = 200, want an error", p)
		}
	}
	r = a.do(t, "DELETE", "/discussion/latest/5", "")
	if r.status != http.StatusMethodNotAllowed || !strings.Contains(r.header.Get("Allow"), "GET") {
		t.Fatalf("DELETE: %d, Allow %q, want 405 with Allow: GET", r.status, r.header.Get("Allow"))
	}
}

func TestRouterErrorsOnTheAPIAreJSON(t *testing.T) {
	a := newApp(t)
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"PUT", "/discussion", http.StatusMethodNotAllowed},
		{"DELETE", "/discussion/latest/5", http.StatusMethodNotAllowed},
		{"GET", "/discussion/latest/", http.StatusNotFound},
		{"GET", "/discussion/a/b/c", http.StatusNotFound},
	} {
		r := a.do(t, tt.method, tt.path, "")
		var e struct{ Error string }
		if r.status != tt.status || r.header.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(r.body), &e) != nil || e.Error == "" {
			t.Errorf("%s %s: %d %q %q, want %d with a JSON error", tt.method, tt.path, r.status, r.header.Get("Content-Type"), r.body, tt.status)
		}
	}
}
