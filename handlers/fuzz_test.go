package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"nochat/chat"
	"nochat/db"
)

// Fuzz targets for the REST parameters, driving the real handler (real
// routes, real SQLite file) without a network. The seed corpus is in
// testdata/fuzz; .ci/fuzz runs each target for a while:
//
//	go test -run '^$' -fuzz '^FuzzLatest$' -fuzztime 20s ./handlers

// fuzzRoomSize is how many messages the fuzzed room holds: ids 1 to 30.
const fuzzRoomSize = 30

// newFuzzHandler is the whole HTTP surface over a room of fuzzRoomSize
// messages. Fuzzing runs it in every worker process.
func newFuzzHandler(f *testing.F) (http.Handler, *db.Store) {
	f.Helper()
	store, err := db.Open(context.Background(), filepath.Join(f.TempDir(), "nochat.db"), db.Options{Durability: db.Normal})
	if err != nil {
		f.Fatal(err)
	}
	drafts := make([]db.Draft, fuzzRoomSize)
	for i := range drafts {
		drafts[i] = db.Draft{User: "ann", Message: fmt.Sprint("m", i+1)}
	}
	if _, err := store.Insert(context.Background(), drafts); err != nil {
		f.Fatal(err)
	}
	return serveStore(f, store), store
}

// serve runs one request through h and checks what every REST answer must
// be: 200 or 400 (or a redirect to the cleaned path, or the router's 404),
// JSON, and on 400 an {"error": "..."} that says something.
func serve(t *testing.T, h http.Handler, req *http.Request) (int, []db.Message) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	switch w.Code {
	case http.StatusOK:
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s: Content-Type %q", req.URL, ct)
		}
		var msgs []db.Message
		if err := json.Unmarshal(w.Body.Bytes(), &msgs); err != nil || msgs == nil {
			t.Fatalf("%s: 200 with body %q (%v), want a JSON array", req.URL, w.Body, err)
		}
		for i := 1; i < len(msgs); i++ {
			if msgs[i].ID <= msgs[i-1].ID {
				t.Fatalf("%s: ids %d then %d, want oldest first", req.URL, msgs[i-1].ID, msgs[i].ID)
			}
		}
		return w.Code, msgs
	case http.StatusBadRequest:
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s: Content-Type %q", req.URL, ct)
		}
		var e struct{ Error string }
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" || !utf8.ValidString(e.Error) {
			t.Fatalf("%s: 400 with body %q, want {\"error\": \"...\"}", req.URL, w.Body)
		}
		return w.Code, nil
	case http.StatusNotFound:
		// ServeMux answers 404 for a last segment that unescapes to "/"
		// alone (".../latest/%2F"): no route, no handler ran.
		if !strings.HasSuffix(req.URL.Path, "/") {
			t.Fatalf("%s: 404 %q", req.URL, w.Body)
		}
		return w.Code, nil
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		if p := req.URL.Path; path.Clean(p) == p && !strings.HasSuffix(req.URL.EscapedPath(), "/") {
			t.Fatalf("%s: redirected to %q, though the path is clean", req.URL, w.Header().Get("Location"))
		}
		return w.Code, nil
	}
	t.Fatalf("%s: status %d %q, want 200 or 400", req.URL, w.Code, w.Body)
	return 0, nil
}

// wantRange is the ids a history answer must hold: the newest limit ids
// below before, from a room with ids 1 to fuzzRoomSize.
func wantRange(before int64, limit int) (first, last int64) {
	last = min(before-1, fuzzRoomSize)
	first = max(1, last-int64(limit)+1)
	return first, last
}

func checkRange(t *testing.T, req *http.Request, msgs []db.Message, first, last int64) {
	t.Helper()
	if last < first {
		if len(msgs) != 0 {
			t.Fatalf("%s: %d messages, want none", req.URL, len(msgs))
		}
		return
	}
	if int64(len(msgs)) != last-first+1 || msgs[0].ID != first || msgs[len(msgs)-1].ID != last {
		t.Fatalf("%s: %d messages from %d, want ids %d to %d", req.URL, len(msgs), msgs[0].ID, first, last)
	}
}

func FuzzLatest(f *testing.F) {
	for _, n := range []string{"1", "5", "30", "31", "500", "501", "0", "-1", "1e9", "abc", "05", "+5",
		" 5", "5\x00", "٣", "99999999999999999999", "..", ".", "a/b", "%2F", "\xff", ""} {
		f.Add(n)
	}
	h, _ := newFuzzHandler(f)
	f.Fuzz(func(t *testing.T, n string) {
		if n == "" {
			return // "/discussion/latest/" is another route's (none: 404)
		}
		escaped := url.PathEscape(n)
		req := httptest.NewRequest("GET", "/discussion/latest/"+escaped, nil)
		status, msgs := serve(t, h, req)
		if status != http.StatusOK && status != http.StatusBadRequest {
			return // not routed here: a redirect to the cleaned path ("..", "."), or a 404
		}
		want, err := strconv.Atoi(n)
		valid := err == nil && want >= 1 && want <= 500
		if valid != (status == http.StatusOK) {
			t.Fatalf("n=%q: status %d, want %s", n, status, map[bool]string{true: "200", false: "400"}[valid])
		}
		if valid {
			checkRange(t, req, msgs, max(1, fuzzRoomSize-int64(want)+1), fuzzRoomSize)
		}
	})
}

func FuzzHistory(f *testing.F) {
	for _, q := range []string{"", "limit=2", "before=5&limit=2", "before=5", "before=1", "before=abc",
		"before=0", "limit=0", "limit=501", "before=5&before=6", "limit=1&limit=1", "before=9223372036854775807",
		"before=9223372036854775808", "before=%2B5", "limit=5;before=3", "before=5%00", "limit=%205", "x=1&x=2",
		"before=&limit=", "%zz", "before=3&limit=500"} {
		f.Add(q)
	}
	h, _ := newFuzzHandler(f)
	f.Fuzz(func(t *testing.T, q string) {
		req := httptest.NewRequest("GET", "/discussion", nil)
		req.URL.RawQuery = q
		status, msgs := serve(t, h, req)

		// What the handler should make of q, worked out independently.
		vs := req.URL.Query()
		valid, limit, before := true, 50, int64(1<<63-1)
		switch l := vs["limit"]; len(l) {
		case 0:
		case 1:
			n, err := strconv.Atoi(l[0])
			valid = valid && err == nil && n >= 1 && n <= 500
			limit = n
		default:
			valid = false
		}
		switch b := vs["before"]; len(b) {
		case 0:
		case 1:
			n, err := strconv.ParseInt(b[0], 10, 64)
			valid = valid && err == nil && n >= 1
			before = n
		default:
			valid = false
		}
		if valid != (status == http.StatusOK) {
			t.Fatalf("?%s: status %d, want %s", q, status, map[bool]string{true: "200", false: "400"}[valid])
		}
		if valid {
			first, last := wantRange(before, limit)
			checkRange(t, req, msgs, first, last)
		}
	})
}

// FuzzSendJSON sends whatever body through POST /discussion: the answer is
// 201 with the stored message (which is what a reader then sees), or a 4xx
// refusal with nothing stored, never a 5xx.
func FuzzSendJSON(f *testing.F) {
	for _, b := range []string{`{"user":"ann","message":"hi"}`, `{"message":"hi"}`, `{"message":""}`,
		`{"message":null}`, `{"user":5,"message":"x"}`, `{"message":"a"}{"message":"b"}`, `[]`, `null`, ``,
		"{\"message\":\"hi \xff\"}", `{"message":"\u0000\ud800"}`, `{"Message":"case"}`,
		`{"message":"x","message":"dup"}`, `{"user":"` + strings.Repeat("n", 33) + `","message":"x"}`} {
		f.Add([]byte(b))
	}
	h, store := newFuzzHandler(f)
	sender := 0
	f.Fuzz(func(t *testing.T, body []byte) {
		before, err := store.LatestID(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/discussion", strings.NewReader(string(body)))
		// Each input from its own address: this is about parsing, not
		// about one client's send rate.
		sender++
		req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:4000", byte(sender>>16), byte(sender>>8), byte(sender))
		h.ServeHTTP(w, req)
		after, err := store.LatestID(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%q: status %d, Content-Type %q", body, w.Code, ct)
		}
		switch {
		case w.Code == http.StatusCreated:
			var m db.Message
			if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
				t.Fatalf("%q: 201 with body %q", body, w.Body)
			}
			got, err := store.Get(context.Background(), m.ID)
			got.HTML = chat.RenderHTML(got.Message) // the answer shows the stored text as the page does
			if err != nil || !reflect.DeepEqual(got, m) || m.ID != before+1 || after != m.ID {
				t.Fatalf("%q: answered %+v, stored %+v (%v); ids %d -> %d", body, m, got, err, before, after)
			}
			if !utf8.Valid(body) {
				t.Fatalf("%q: invalid UTF-8 stored as %q", body, m.Message)
			}
		case w.Code >= 400 && w.Code < 500:
			var e struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%q: %d with body %q", body, w.Code, w.Body)
			}
			if after != before {
				t.Fatalf("%q: refused with %d but stored id %d", body, w.Code, after)
			}
		default:
			t.Fatalf("%q: status %d %q", body, w.Code, w.Body)
		}
	})
}
