package handlers_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/chat"
	"nochat/db"
)

// Bad input over HTTP. Every case checks the answer, that nothing was stored,
// and that a WebSocket client watching the room sees nothing but the good
// message sent after the bad request.

// watcher is a nochat.v1 client of the app that reads every message.
type watcher struct {
	a      *app
	conn   *websocket.Conn
	before int64 // the newest id when the case began
	seen   int64 // the newest id the watcher has read
}

func (a *app) watch(t *testing.T) *watcher {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"nochat.v1"}, HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(a.srv.URL, "http")+"/?user=watcher", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	w := &watcher{a: a, conn: conn}
	// The first frame, hello, says how far the room is.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var hello struct {
		Type string
		Data struct {
			LatestID int64 `json:"latest_id"`
		}
	}
	if err := conn.ReadJSON(&hello); err != nil || hello.Type != "hello" {
		t.Fatalf("first frame %+v (%v), want hello", hello, err)
	}
	w.seen = hello.Data.LatestID
	w.mark(t)
	return w
}

// nextMessage reads the watcher's next message frame, skipping the others
// (hello, presence).
func (w *watcher) nextMessage(t *testing.T) db.Message {
	t.Helper()
	for {
		w.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var f struct {
			Type string
			Data json.RawMessage
		}
		if err := w.conn.ReadJSON(&f); err != nil {
			t.Fatalf("watcher: %v", err)
		}
		if f.Type == "message" {
			var m db.Message
			json.Unmarshal(f.Data, &m)
			w.seen = m.ID
			return m
		}
	}
}

// mark records the newest id before a case, first reading what the watcher
// has not read yet, so that one failed case does not fail the next.
func (w *watcher) mark(t *testing.T) {
	t.Helper()
	id, err := w.a.store.LatestID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for w.seen < id {
		w.nextMessage(t)
	}
	w.before = id
}

// unharmed checks that nothing was stored since mark and that the room
// still takes and delivers a message, which is the watcher's next.
func (w *watcher) unharmed(t *testing.T) {
	t.Helper()
	defer w.mark(t)
	if id, err := w.a.store.LatestID(context.Background()); err != nil || id != w.before {
		t.Fatalf("newest id is %d (%v), was %d: the refused request stored something", id, err, w.before)
	}
	// Through the hub, as the REST send does, but without counting
	// against the test client's own send rate.
	if _, err := w.a.hub.Send(context.Background(), "check", "still fine after "+t.Name()); err != nil {
		t.Fatalf("a good send after the bad request: %v", err)
	}
	if m := w.nextMessage(t); m.ID != w.before+1 || m.Message != "still fine after "+t.Name() {
		t.Fatalf("watcher got %+v next, want the good message", m)
	}
}

// isJSONError checks a refusal: the status, JSON content, and an
// {"error": "..."} body that says something.
func isJSONError(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (body %q)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error == "" {
		t.Fatalf("body %q, want {\"error\": \"...\"}", r.body)
	}
}

func TestBadCountIsRefused(t *testing.T) {
	a := newApp(t)
	a.send(t, "one", "two", "three")
	w := a.watch(t)
	for _, n := range []string{
		"0", "-1", "501", "1e9", "abc", "1.5", "0x10", "1_0", "-0", "5abc",
		"%20", "%205", "5%20", "5%00", "%00", "%F0%9F", "٣", "５",
		"99999999999999999999999", "5%2F5", "5;6", "5,6",
		strings.Repeat("1", 10<<10), // a path of 10 KB
	} {
		t.Run("n="+n[:min(len(n), 12)], func(t *testing.T) {
			w.mark(t)
			isJSONError(t, a.do(t, "GET", "/discussion/latest/"+n, ""), http.StatusBadRequest)
			w.unharmed(t)
		})
	}
	for _, n := range []string{"1", "500", "05"} {
		t.Run("n="+n, func(t *testing.T) {
			r := a.do(t, "GET", "/discussion/latest/"+n, "")
			if r.status != http.StatusOK {
				t.Fatalf("status %d, want 200", r.status)
			}
			want := min(len(decodeMessages(t, a.do(t, "GET", "/discussion/latest/500", ""))), mustAtoi(t, n))
			if got := len(decodeMessages(t, r)); got != want {
				t.Fatalf("%d messages, want %d", got, want)
			}
		})
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBadHistoryQueryIsRefused(t *testing.T) {
	a := newApp(t)
	a.send(t, "one", "two", "three")
	w := a.watch(t)
	for _, q := range []string{
		"before=abc", "before=", "before=1.5", "before=1e3", "before=0x10", "before=-1", "before=0",
		"before=%205", "before=5%00", "before=9223372036854775808", "before=" + strings.Repeat("9", 10<<10),
		"limit=0", "limit=-1", "limit=501", "limit=1e9", "limit=abc", "limit=",
		"before=2&before=3", "limit=1&limit=2", "before=2&limit=1&before=2", "limit=1&limit=1",
	} {
		t.Run(q[:min(len(q), 30)], func(t *testing.T) {
			w.mark(t)
			isJSONError(t, a.do(t, "GET", "/discussion?"+q, ""), http.StatusBadRequest)
			w.unharmed(t)
		})
	}
	// The largest id there is, and parameters NoChat does not know, are fine.
	for _, q := range []string{"before=9223372036854775807", "before=9223372036854775807&limit=500", "x=1&x=2", "after=abc"} {
		t.Run(q, func(t *testing.T) {
			r := a.do(t, "GET", "/discussion?"+q, "")
			if r.status != http.StatusOK {
				t.Fatalf("status %d, want 200", r.status)
			}
			if got := joined(decodeMessages(t, r)); !strings.HasPrefix(got, "one,two,three") {
				t.Fatalf("got %q, want the whole history", got)
			}
		})
	}
}

func TestBadSendsAreRefused(t *testing.T) {
	a := newApp(t)
	w := a.watch(t)
	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"path of 10 KB", "POST", "/discussion/" + strings.Repeat("x", 10<<10), "", 400},
		{"path of 10 KB of NULs", "POST", "/discussion/" + strings.Repeat("%00", 10<<10/3), "", 400},
		{"path of 2,001 escaped characters", "POST", "/discussion/" + strings.Repeat("%E2%82%AC", 2001), "", 400},
		{"invalid UTF-8 in the path", "POST", "/discussion/hi%FF", "", 400},
		{"invalid UTF-8 in the name", "POST", "/discussion/hi?user=%FF", "", 400},
		{"user given twice", "POST", "/discussion/hi?user=ann&user=bob", "", 400},
		{"name too long", "POST", "/discussion/hi?user=" + strings.Repeat("n", 33), "", 400},
		{"controls only", "POST", "/discussion/%00%07%1B", "", 400},
		{"JSON: invalid UTF-8 in the message", "POST", "/discussion", "{\"message\":\"hi \xff\"}", 400},
		{"JSON: invalid UTF-8 in the name", "POST", "/discussion", "{\"user\":\"\xc0\xaf\",\"message\":\"hi\"}", 400},
		{"JSON: invalid UTF-8 outside strings", "POST", "/discussion", "{\"message\":\"hi\"}\xff", 400},
		{"JSON: half a surrogate pair in the message", "POST", "/discussion", `{"message":"a\ud800b"}`, 400},
		{"JSON: a low half alone in the name", "POST", "/discussion", `{"user":"\udc00","message":"hi"}`, 400},
		{"JSON: message null", "POST", "/discussion", `{"message":null}`, 400},
		{"JSON: message an array", "POST", "/discussion", `{"message":["hi"]}`, 400},
		{"JSON: user a number", "POST", "/discussion", `{"user":5,"message":"hi"}`, 400},
		{"JSON: an array", "POST", "/discussion", `[{"message":"hi"}]`, 400},
		{"JSON: null", "POST", "/discussion", `null`, 400},
		{"JSON: empty body", "POST", "/discussion", ``, 400},
		{"JSON: trailing garbage", "POST", "/discussion", `{"message":"hi"} x`, 400},
		{"JSON: too long", "POST", "/discussion", `{"message":"` + strings.Repeat("é", 2001) + `"}`, 400},
		{"JSON: deep nesting", "POST", "/discussion", `{"message":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, 400},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.mark(t)
			isJSONError(t, a.doFrom(t, i, tt.method, tt.path, tt.body), tt.status)
			w.unharmed(t)
		})
	}
}

// doFrom is do from the loopback address 127.0.0.(2+n%200), so that a
// table of sends is a crowd of clients, each within its own send rate
// (on Linux; elsewhere only 127.0.0.1 is configured).
func (a *app) doFrom(t *testing.T, n int, method, path, body string) response {
	t.Helper()
	transport := &http.Transport{DisableKeepAlives: true}
	if runtime.GOOS == "linux" {
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+n%200))}
		transport.DialContext = (&net.Dialer{LocalAddr: local}).DialContext
	}
	client := &http.Client{Transport: transport}
	req, err := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return roundTrip(t, client, req)
}

func TestMethodsNotAllowed(t *testing.T) {
	a := newApp(t)
	w := a.watch(t)
	tests := []struct {
		method, path string
		allow        []string
	}{
		{"POST", "/", []string{"GET", "HEAD"}},
		{"DELETE", "/", []string{"GET", "HEAD"}},
		{"PUT", "/discussion", []string{"GET", "HEAD", "POST"}},
		{"DELETE", "/discussion", []string{"GET", "HEAD", "POST"}},
		{"PATCH", "/discussion/hello", []string{"POST"}},
		{"GET", "/discussion/hello", []string{"POST"}},
		{"PUT", "/discussion/hello", []string{"POST"}},
		{"DELETE", "/discussion/latest/5", []string{"GET", "HEAD"}},
		{"POST", "/discussion/latest/5", []string{"GET", "HEAD"}},
		{"POST", "/healthz", []string{"GET", "HEAD"}},
		{"TRACE", "/healthz", []string{"GET", "HEAD"}},
		{"POST", "/static/app.js", []string{"GET", "HEAD"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			w.mark(t)
			r := a.do(t, tt.method, tt.path, `{"message":"sneaky"}`)
			if r.status != http.StatusMethodNotAllowed {
				t.Fatalf("status %d, want 405", r.status)
			}
			allow := strings.Split(r.header.Get("Allow"), ", ")
			for _, m := range tt.allow {
				if !contains(allow, m) {
					t.Fatalf("Allow %q lacks %s", r.header.Get("Allow"), m)
				}
			}
			if contains(allow, tt.method) {
				t.Fatalf("Allow %q lists the refused %s", r.header.Get("Allow"), tt.method)
			}
			w.unharmed(t)
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestTenMegabyteBodies(t *testing.T) {
	a := newApp(t)
	w := a.watch(t)
	big := `{"user":"ann","message":"` + strings.Repeat("x", 10<<20) + `"}`
	post := func(t *testing.T, path string, body io.Reader, length int64) response {
		t.Helper()
		req, err := http.NewRequest("POST", a.srv.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = length // -1: chunked, the size unknown up front
		return roundTrip(t, a.srv.Client(), req)
	}
	t.Run("JSON send with Content-Length", func(t *testing.T) {
		w.mark(t)
		isJSONError(t, post(t, "/discussion", strings.NewReader(big), int64(len(big))), http.StatusRequestEntityTooLarge)
		w.unharmed(t)
	})
	t.Run("JSON send chunked", func(t *testing.T) {
		w.mark(t)
		isJSONError(t, post(t, "/discussion", io.MultiReader(strings.NewReader(big)), -1), http.StatusRequestEntityTooLarge)
		w.unharmed(t)
	})
	t.Run("JSON send of garbage", func(t *testing.T) {
		w.mark(t)
		garbage := bytes.Repeat([]byte{0xff}, 10<<20)
		r := post(t, "/discussion", bytes.NewReader(garbage), int64(len(garbage)))
		if r.status != http.StatusBadRequest && r.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 400 or 413", r.status)
		}
		isJSONError(t, r, r.status)
		w.unharmed(t)
	})
	t.Run("tutorial send ignores its body", func(t *testing.T) {
		// The text is in the path; a body, however large, is not read. The
		// answer is either the send's (stored once) or a refusal (nothing
		// stored), never a half-stored message.
		w.mark(t)
		r := post(t, "/discussion/"+url.PathEscape("with a big body"), strings.NewReader(big), int64(len(big)))
		switch r.status {
		case http.StatusOK:
			if m := w.nextMessage(t); m.Message != "with a big body" {
				t.Fatalf("stored %q", m.Message)
			}
			w.mark(t)
		case http.StatusRequestEntityTooLarge:
			isJSONError(t, r, r.status)
		default:
			t.Fatalf("status %d %q, want 200 or 413", r.status, r.body)
		}
		w.unharmed(t)
	})
}

// rawRequest sends bytes as they are over a new connection and returns the
// status line and headers of the answer.
func rawRequest(t *testing.T, a *app, req string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(b)
}

func TestBadUpgradesAreRefused(t *testing.T) {
	a := newApp(t)
	w := a.watch(t)
	online := a.hub.Online()
	upgrade := func(headers ...string) string {
		h := map[string]string{
			"Host":                   "localhost",
			"Connection":             "Upgrade",
			"Upgrade":                "websocket",
			"Sec-WebSocket-Version":  "13",
			"Sec-WebSocket-Key":      "dGhlIHNhbXBsZSBub25jZQ==",
			"Sec-WebSocket-Protocol": "nochat.v1",
		}
		for i := 0; i < len(headers); i += 2 {
			h[headers[i]] = headers[i+1]
		}
		var b strings.Builder
		b.WriteString("GET / HTTP/1.1\r\n")
		for k, v := range h {
			if v != "" {
				fmt.Fprintf(&b, "%s: %s\r\n", k, v)
			}
		}
		b.WriteString("\r\n")
		return b.String()
	}
	tests := []struct {
		name string
		req  string
	}{
		{"version 12", upgrade("Sec-WebSocket-Version", "12")},
		{"version 8", upgrade("Sec-WebSocket-Version", "8")},
		{"version not a number", upgrade("Sec-WebSocket-Version", "abc")},
		{"version missing", upgrade("Sec-WebSocket-Version", "")},
		{"key missing", upgrade("Sec-WebSocket-Key", "")},
		{"key not base64 of 16 bytes", upgrade("Sec-WebSocket-Key", "short")},
		{"no subprotocol", upgrade("Sec-WebSocket-Protocol", "")},
		{"unknown subprotocol", upgrade("Sec-WebSocket-Protocol", "nochat.v2")},
		{"bad after", strings.Replace(upgrade(), "GET / ", "GET /?after=abc ", 1)},
		{"negative after", strings.Replace(upgrade(), "GET / ", "GET /?after=-1 ", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.mark(t)
			resp, body := rawRequest(t, a, tt.req)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d %q, want 400", resp.StatusCode, body)
			}
			if strings.TrimSpace(body) == "" {
				t.Fatal("a refused upgrade without a reason")
			}
			if n := a.hub.Online(); n != online {
				t.Fatalf("%d sessions open, want %d: the refused upgrade made one", n, online)
			}
			w.unharmed(t)
		})
	}
	t.Run("upgrade with POST", func(t *testing.T) {
		w.mark(t)
		resp, _ := rawRequest(t, a, strings.Replace(upgrade(), "GET / ", "POST / ", 1))
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("status %d, want 405", resp.StatusCode)
		}
		w.unharmed(t)
	})
}

// xssPayloads are messages and names that would run script if the page
// put them into its HTML unescaped. Each fits the 32-character name limit.
var xssPayloads = []string{
	`<script>alert(1)</script>`,
	`<img src=x onerror=alert(1)>`,
	`"><svg onload=alert(1)>`,
	`'><b onmouseover=alert(1)>x</b>`,
	`</p></li><script>x()</script>`,
	`<a href="javascript:alert(1)">`,
	`&lt;script&gt; &amp; &#60;`,
	`<!-- --><style>*{}</style>`,
	`{{.}} ${alert(1)} <%= 1 %>`,
}

func TestXSSIsShownAsTextOnThePage(t *testing.T) {
	a := newApp(t)
	for i, p := range xssPayloads {
		// Half through the tutorial's path send, half through JSON.
		if i%2 == 0 {
			r := a.do(t, "POST", "/discussion/"+url.PathEscape(p)+"?user="+url.QueryEscape(p), "")
			if r.status != http.StatusOK {
				t.Fatalf("send %q: %d %s", p, r.status, r.body)
			}
		} else {
			body, _ := json.Marshal(map[string]string{"user": p, "message": p})
			if r := a.do(t, "POST", "/discussion", string(body)); r.status != http.StatusCreated {
				t.Fatalf("send %q: %d %s", p, r.status, r.body)
			}
		}
	}
	r := a.do(t, "GET", "/", "")
	if r.status != http.StatusOK {
		t.Fatalf("page: %d", r.status)
	}
	for _, p := range xssPayloads {
		escaped := html.EscapeString(p)
		// Each payload is there as the name, escaped, and as the text, as
		// the renderer shows text (escaped too: see chat's markup tests).
		if !strings.Contains(r.body, escaped) {
			t.Errorf("page lacks the name %q escaped", p)
		}
		if !strings.Contains(r.body, chat.RenderHTML(p)) {
			t.Errorf("page lacks the text %q as rendered: %s", p, chat.RenderHTML(p))
		}
		if strings.Contains(r.body, p) && p != escaped {
			t.Errorf("page contains %q unescaped", p)
		}
	}
	// The page's only script is its own.
	if n := strings.Count(strings.ToLower(r.body), "<script"); n != 1 {
		t.Errorf("page has %d <script elements, want 1 (app.js)", n)
	}
	for _, tag := range []string{"<img src=x", "<svg onload", "<b onmouseover", "<style", "<a href=\"javascript"} {
		if strings.Contains(strings.ToLower(r.body), tag) {
			t.Errorf("page contains the tag %q", tag)
		}
	}

	// Over REST the payloads come back verbatim, as JSON that no browser
	// sniffs into HTML.
	latest := a.do(t, "GET", "/discussion/latest/50", "")
	if got := latest.header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q on JSON, want nosniff", got)
	}
	msgs := decodeMessages(t, latest)
	if len(msgs) != len(xssPayloads) {
		t.Fatalf("%d messages, want %d", len(msgs), len(xssPayloads))
	}
	for i, m := range msgs {
		if m.Message != xssPayloads[i] || m.User != xssPayloads[i] {
			t.Errorf("message %d: %q from %q, want %q from the same", i, m.Message, m.User, xssPayloads[i])
		}
	}
	if strings.Contains(latest.body, "<script>") {
		t.Error("JSON answer carries a literal <script>: encode < as \\u003c")
	}
}

func TestSQLMetacharactersAreStoredAndReturnedVerbatim(t *testing.T) {
	a := newApp(t)
	w := a.watch(t)
	texts := []string{
		"Robert'); DROP TABLE messages;--",
		`" OR ""="`,
		`' OR '1'='1`,
		`1; DELETE FROM messages WHERE 1=1`,
		`100% _sure_ \ back\\slash`,
		`?; ?1 $1 :name @p */ /* --`,
		"'; ATTACH DATABASE '/tmp/x.db' AS x; --",
		"x' UNION SELECT id, cid, cid, 1 FROM messages --",
		"tab\there and ' \" ` quotes",
	}
	names := []string{"Bobby'); DROP TABLE messages;--", `" OR ""="`, "%_\\", "a';--"}
	for i, text := range texts {
		name := names[i%len(names)]
		w.mark(t)
		var r response
		if i%2 == 0 {
			r = a.do(t, "POST", "/discussion/"+url.PathEscape(text)+"?user="+url.QueryEscape(name), "")
		} else {
			body, _ := json.Marshal(map[string]string{"user": name, "message": text})
			r = a.do(t, "POST", "/discussion", string(body))
		}
		if r.status != http.StatusOK && r.status != http.StatusCreated {
			t.Fatalf("send %q: %d %s", text, r.status, r.body)
		}
		if m := w.nextMessage(t); m.Message != text || m.User != name {
			t.Fatalf("broadcast %q from %q, want %q from %q", m.Message, m.User, text, name)
		}
	}
	msgs := decodeMessages(t, a.do(t, "GET", "/discussion/latest/100", ""))
	if len(msgs) != len(texts) {
		t.Fatalf("%d messages, want %d: the table lost or gained rows", len(msgs), len(texts))
	}
	for i, m := range msgs {
		if m.Message != texts[i] || m.User != names[i%len(names)] {
			t.Errorf("message %d: %q from %q, want %q from %q", i, m.Message, m.User, texts[i], names[i%len(names)])
		}
	}
	// Paging around them works too, and the page shows them.
	page := decodeMessages(t, a.do(t, "GET", fmt.Sprintf("/discussion?before=%d&limit=3", msgs[4].ID), ""))
	if joined(page) != strings.Join(texts[1:4], ",") {
		t.Fatalf("page before message 5 = %q", joined(page))
	}
	body := a.do(t, "GET", "/", "").body
	for _, text := range texts {
		if !strings.Contains(body, chat.RenderHTML(text)) {
			t.Errorf("chat page lacks %q as rendered: %s", text, chat.RenderHTML(text))
		}
	}
}
